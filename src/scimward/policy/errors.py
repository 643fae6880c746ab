"""The policy layer's errors: the command line and the admin API map them to one line or a 400/409."""

from __future__ import annotations

from scimward.errors import ScimwardError


class PolicyLayerError(ScimwardError):
    """Something about policy, approvals or breakers that the user can correct; the message says what."""


class ApprovalError(PolicyLayerError):
    """An approval, rejection or release that cannot be done (four eyes, not pending, unknown change)."""


class UnknownSubject(ApprovalError):
    """No change, target or identity by the name given."""
