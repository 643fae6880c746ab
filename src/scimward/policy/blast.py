"""Blast radius: what an identity or a change drives downstream, across targets.

For a user: its accounts on targets and the group memberships those targets acknowledged for it. For
a group: the targets holding it and the memberships acknowledged there. Entitlements of privileged
groups (the governance extension's ``privileged``) weigh more in ``weighted`` (``PRIVILEGED_WEIGHT``).
"""

from __future__ import annotations

from typing import Any

from scimward.scim.resource_types import GOVERNANCE_GROUP_SCHEMA
from scimward.store import Tx
from scimward.store.governance import Change, gate_rows

EMPTY: dict[str, Any] = {"accounts": 0, "entitlements": 0, "targets": 0, "weighted": 0, "per_target": {}}
PRIVILEGED_WEIGHT = 5


async def of_change(tx: Tx, change: Change) -> dict[str, Any]:
    if change.identity_id is None or change.resource_type not in ("User", "Group"):
        return dict(EMPTY)
    privileged = any(is_privileged(doc) for doc in (change.before, change.after))
    return await of_identity(tx, change.resource_type, change.identity_id, privileged)


def is_privileged(doc: dict[str, Any] | None) -> bool:
    """A group its governance extension marks privileged (docs/access-reviews.md)."""
    extension = (doc or {}).get(GOVERNANCE_GROUP_SCHEMA)
    return isinstance(extension, dict) and extension.get("privileged") is True


async def of_identity(tx: Tx, resource_type: str, identity_id: str, privileged: bool = False) -> dict[str, Any]:
    params = {"identity_id": identity_id}
    accounts = {int(t): int(n) for t, n in await tx.rows(gate_rows.ACCOUNTS_OF, params)}
    entitled = gate_rows.ENTITLEMENTS_AS_GROUP if resource_type == "Group" else gate_rows.ENTITLEMENTS_AS_MEMBER
    entitlements = {int(t): int(n) for t, n in await tx.rows(entitled, params)}
    per_target = {
        str(t): {"accounts": accounts.get(t, 0), "entitlements": entitlements.get(t, 0)}
        for t in sorted(set(accounts) | set(entitlements))
    }
    total_entitlements = sum(entitlements.values())
    weight = PRIVILEGED_WEIGHT if privileged else 1
    return {
        "accounts": sum(accounts.values()),
        "entitlements": total_entitlements,
        "targets": len(per_target),
        "weighted": sum(accounts.values()) + weight * total_entitlements,
        "per_target": per_target,
    }
