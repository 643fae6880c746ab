"""What a reviewer sees of one item, and what scimward recommends: pure functions of the rows read.

The recommendation is ``revoke`` when the member is inactive (in the hub, or on a target as the last
push or reconcile saw it), when it is an outlier among the group's members (nobody else shares its
department while several others have one), or when it is a non-human identity without an owner or an
identity whose manager is gone (orphaned); else ``keep``. Every reason is kept with the item.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scimward.scim.resource_types import ENTERPRISE_USER_SCHEMA
from scimward.store.governance.reviews import Account, IdentityRow

#: ``userType`` values of non-human identities (service accounts, bots, agents, workloads).
NON_HUMAN_TYPES = frozenset(
    {
        "service",
        "serviceaccount",
        "service account",
        "service-account",
        "bot",
        "agent",
        "ai agent",
        "ai-agent",
        "machine",
        "workload",
        "application",
        "nhi",
        "api",
    }
)
#: An outlier needs this many other members whose department is known.
OUTLIER_PEERS = 4


def department_of(doc: Mapping[str, Any]) -> str | None:
    ext = doc.get(ENTERPRISE_USER_SCHEMA)
    value = ext.get("department") if isinstance(ext, dict) else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def manager_of(doc: Mapping[str, Any]) -> str | None:
    ext = doc.get(ENTERPRISE_USER_SCHEMA)
    manager = ext.get("manager") if isinstance(ext, dict) else None
    value = manager.get("value") if isinstance(manager, dict) else None
    return value if isinstance(value, str) and value else None


def is_non_human(doc: Mapping[str, Any]) -> bool:
    user_type = doc.get("userType")
    return isinstance(user_type, str) and user_type.strip().lower() in NON_HUMAN_TYPES


def is_active(doc: Mapping[str, Any]) -> bool:
    return doc.get("active") is not False


@dataclass(frozen=True)
class Peers:
    """The departments of a group's *other* members: counted, and the five largest (worked out once
    and shared by every member of the group in the same department)."""

    counts: Mapping[str, int]
    top: dict[str, int]

    @classmethod
    def of(cls, departments: Counter[str]) -> Peers:
        return cls(departments, dict(departments.most_common(5)))

    @property
    def known(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Recommendation:
    decision: str  # keep or revoke
    reasons: list[str]


def recommend(
    member: IdentityRow, accounts: Sequence[Account], peers: Peers, manager: IdentityRow | None
) -> Recommendation:
    reasons: list[str] = []
    doc = member.doc
    if member.resource_type == "User" and not is_active(doc):
        reasons.append("inactive in the hub (active is false)")
    for account in accounts:
        if account.status != "active" or account.active is False:
            reasons.append(
                f"inactive on {account.target} (the account is {account.status}"
                f"{', active false' if account.active is False else ''})"
            )
    department = department_of(doc)
    if department is not None and peers.known >= OUTLIER_PEERS and peers.counts.get(department, 0) == 0:
        top = ", ".join(f"{d} ({n})" for d, n in list(peers.top.items())[:3])
        reasons.append(f"outlier: no other member is in {department}; the others are in {top}")
    manager_id = manager_of(doc)
    if member.resource_type == "User" and is_non_human(doc) and manager_id is None:
        reasons.append("non-human identity without an owner")
    elif manager_id is not None and (manager is None or not is_active(manager.doc)):
        reasons.append("orphaned: its manager " + ("no longer exists" if manager is None else "is inactive"))
    return Recommendation("revoke" if reasons else "keep", reasons)


def item_context(
    member: IdentityRow,
    accounts: Sequence[Account],
    findings: Sequence[dict[str, Any]],
    held_on: set[int] | None,
    peers: Peers,
) -> dict[str, Any]:
    """The item's context as stored: the member, its account on each target (and whether the target
    holds the membership under review), open findings, and the peers' departments."""
    doc = member.doc
    return {
        "member": {
            "type": member.resource_type,
            "active": is_active(doc),
            "department": department_of(doc),
            "userType": doc.get("userType"),
            "nonHuman": is_non_human(doc),
            "manager": manager_of(doc),
        },
        "targets": [
            {
                "target": a.target,
                "status": a.status,
                "active": a.active,
                "acknowledged": a.acknowledged.isoformat(timespec="seconds") + "Z",
                **({"holds_membership": a.target_id in held_on} if held_on is not None else {}),
                "findings": [
                    f"{f['kind']} {f['attribute']}".strip() for f in findings if f["target_id"] == a.target_id
                ],
            }
            for a in accounts
        ],
        "last_activity": None,  # no target reports it over SCIM yet
        "peer_departments": dict(peers.top),
    }
