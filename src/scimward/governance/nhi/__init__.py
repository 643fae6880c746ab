"""The lifecycle of non-human identities (issue 14, docs/non-human-identities.md): the leaver cascade,
expiry, the hub tokens of leavers and the NHI findings (``lifecycle``), and the actions the command
line takes (``actions``), all through the gate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
    from scimward.governance.nhi.lifecycle import CASCADE, EXPIRY, RoundResult, nhi_round
    from scimward.governance.nhi.model import NHI_TYPES, kind_of, name_of, owners_of, user_types
    from scimward.governance.nhi.schedule import run_nhi_schedule

__all__ = [
    "CASCADE",
    "EXPIRY",
    "NHI_TYPES",
    "RoundResult",
    "kind_of",
    "name_of",
    "nhi_round",
    "owners_of",
    "run_nhi_schedule",
    "user_types",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
