"""Provisioning: the outbox, links, push results, read-back, targets, and the effective state read downstream;
and what the console shows of them (``health``: each target's health, an identity's accounts).

``outbox`` is also public as a module: its statement functions run in a caller's transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
    from scimward.store.provisioning import outbox
    from scimward.store.provisioning.batch_reads import BatchReads
    from scimward.store.provisioning.effective import HubIdentity
    from scimward.store.provisioning.health import AccountLink, TargetHealth, accounts_of, target_health, target_names
    from scimward.store.provisioning.links import Link, LinkStore, log_row
    from scimward.store.provisioning.outbox import ORPHAN, Outbox, OutboxItem, orphan_key, orphan_remote_id
    from scimward.store.provisioning.push_results import PushResults, commit
    from scimward.store.provisioning.readback import Readback
    from scimward.store.provisioning.target_stats import link_counts
    from scimward.store.provisioning.targets import TargetRepository, TargetRow

__all__ = [
    "ORPHAN",
    "AccountLink",
    "BatchReads",
    "HubIdentity",
    "Link",
    "LinkStore",
    "Outbox",
    "OutboxItem",
    "PushResults",
    "Readback",
    "TargetHealth",
    "TargetRepository",
    "TargetRow",
    "accounts_of",
    "commit",
    "link_counts",
    "log_row",
    "orphan_key",
    "orphan_remote_id",
    "outbox",
    "target_health",
    "target_names",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
