"""The policy gate (DESIGN.md): rules, approvals, the mass-change breaker, blast radius.

The outer layers use this facade: ``identity_store`` is the only way to get an identity store that
writes, so every write passes the gate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
    from scimward.policy.approvals import Approvals, Outcome
    from scimward.policy.document import Policy, PolicyError, parse_policy
    from scimward.policy.errors import ApprovalError, PolicyLayerError, UnknownSubject
    from scimward.policy.gate import PolicyGate
    from scimward.store.database import Database
    from scimward.store.identity import IdentityStore

__all__ = [
    "ApprovalError",
    "Approvals",
    "Outcome",
    "Policy",
    "PolicyError",
    "PolicyGate",
    "PolicyLayerError",
    "UnknownSubject",
    "identity_store",
    "parse_policy",
]


def identity_store(database: Database, gate: PolicyGate | None = None) -> IdentityStore:
    """An identity store whose writes pass the policy gate (a new gate on ``database`` by default)."""
    from scimward.policy.gate import PolicyGate
    from scimward.store.identity import IdentityStore

    return IdentityStore(database, gate or PolicyGate(database))


if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
