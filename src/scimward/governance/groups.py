"""Group governance: owners, purpose, privilege, review cadence and membership lifetime of each group.

They live in the group's SCIM extension (``GOVERNANCE_GROUP_SCHEMA``), so an identity provider can
set them with an ordinary SCIM write and the command line sets them with a PATCH: either way a
change through the gate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from scimward.policy import identity_store
from scimward.scim.errors import InvalidValue, NotFound
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource_types import GOVERNANCE_GROUP_SCHEMA, GROUP_TYPE
from scimward.store.database import Database
from scimward.store.governance import reviews as rows
from scimward.store.identity import IdentityStore

EXT = GOVERNANCE_GROUP_SCHEMA
RISK_TIERS = ("low", "medium", "high", "critical")


@dataclass
class GroupGovernance:
    """A group and what its governance extension says."""

    id: str
    name: str
    owners: list[str] = field(default_factory=list)  # owner user ids
    owner_names: list[str] = field(default_factory=list)
    purpose: str | None = None
    privileged: bool = False
    risk_tier: str | None = None
    review_cadence: int | None = None  # days
    membership_expires: int | None = None  # days
    members: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "owners": self.owner_names,
            "owner_ids": self.owners,
            "purpose": self.purpose,
            "privileged": self.privileged,
            "riskTier": self.risk_tier,
            "reviewCadence": self.review_cadence,
            "membershipExpires": self.membership_expires,
            "members": self.members,
        }


def governance_of(group_id: str, name: str, doc: dict[str, Any]) -> GroupGovernance:
    ext = doc.get(EXT)
    ext = ext if isinstance(ext, dict) else {}
    owners = [o for o in ext.get("owners") or [] if isinstance(o, dict) and isinstance(o.get("value"), str)]
    tier = ext.get("riskTier")
    return GroupGovernance(
        group_id,
        name,
        [o["value"] for o in owners],
        [str(o.get("display") or o["value"]) for o in owners],
        ext.get("purpose"),
        ext.get("privileged") is True or tier in ("high", "critical"),
        tier,
        _int(ext.get("reviewCadence")),
        _int(ext.get("membershipExpires")),
    )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


async def list_groups(database: Database, *, unowned: bool = False, privileged: bool = False) -> list[GroupGovernance]:
    async with database.read() as conn:
        groups = await rows.all_groups(conn)
        counts = await rows.member_counts(conn)
    found = []
    for group in groups:
        governance = governance_of(group.id, group.name, group.doc)
        governance.members = counts.get(group.id, 0)
        if (unowned and governance.owners) or (privileged and not governance.privileged):
            continue
        found.append(governance)
    return found


@dataclass(frozen=True)
class GovernanceUpdate:
    """What ``scimward group set`` changes; None leaves an attribute as it is."""

    owners: list[str] | None = None  # userNames
    purpose: str | None = None
    privileged: bool | None = None
    risk_tier: str | None = None
    review_cadence: int | None = None
    membership_expires: int | None = None


async def set_governance(
    database: Database,
    name: str,
    update: GovernanceUpdate,
    actor: str,
    *,
    store: IdentityStore | None = None,
    source: str = "cli",
) -> GroupGovernance:
    """PATCH the group's governance extension through the gate (source ``cli``, by ``actor``)."""
    if update.risk_tier is not None and update.risk_tier not in RISK_TIERS:
        raise InvalidValue(f"the risk tier is one of {', '.join(RISK_TIERS)}, not {update.risk_tier!r}")
    store = store or identity_store(database)
    async with database.read() as conn:
        group = await rows.group_by_name(conn, name)
        if group is None:
            raise NotFound(f"no group named {name!r}")
        owners: list[dict[str, str]] = []
        for owner in update.owners or []:
            user = await rows.user_by_name(conn, owner)
            if user is None:
                raise InvalidValue(f"owner {owner!r}: no user with that userName")
            owners.append({"value": user.id, "display": user.name})
    operations: list[dict[str, Any]] = []

    def replace(attribute: str, value: Any) -> None:
        operations.append({"op": "replace", "path": f"{EXT}:{attribute}", "value": value})

    if update.owners is not None:
        replace("owners", owners)
    if update.purpose is not None:
        replace("purpose", update.purpose)
    if update.privileged is not None:
        replace("privileged", update.privileged)
    if update.risk_tier is not None:
        replace("riskTier", update.risk_tier)
    if update.review_cadence is not None:
        replace("reviewCadence", update.review_cadence)
    if update.membership_expires is not None:
        replace("membershipExpires", update.membership_expires)
    if not operations:
        raise InvalidValue("nothing to set: give --owner, --purpose, --privileged, --review-every, ...")
    stored = await store.patch(
        GROUP_TYPE, group.id, {"schemas": [PATCH_OP_SCHEMA], "Operations": operations}, source=source, actor=actor
    )
    return governance_of(group.id, group.name, stored.doc)
