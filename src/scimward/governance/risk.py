"""Propagation risk: how much access an upstream mistake would spread, and how much of it is ungoverned.

For each identity the figure is its blast radius exactly as the gate computes it
(``scimward.policy.blast.of_identity``): its active accounts on targets plus its acknowledged
memberships there, the memberships weighted ``PRIVILEGED_WEIGHT`` when the identity is privileged (a
group by its governance extension, ``governance.groups``; a user by a ``privileged`` attribute).

The organisation's total must count each account and each membership once, so it is a partition:
every user's accounts, every group's accounts plus its memberships (weighted when the group is
privileged), and every account reconcile found that no hub identity owns (``orphaned_account``,
weight 1). Per target the same sum, on that target.

The *ungoverned* part is the share of that total held by identities with a governance gap:

- no owner (its ``owner`` attribute, else a person's manager);
- drifted: a live finding of reconcile about it (the target does not hold what it should);
- review overdue: a privileged group whose newest access review is older than its cadence (or that
  has no cadence);
- orphaned: every orphaned account is ungoverned;
- non-human without expiry: a non-human identity (``userType`` a service account, bot, ...) with no
  ``expires`` attribute.

Top contributors are the identities with the largest blast radius, each with its gaps and what
would lower its figure.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scimward.governance.coverage import Estate, IdentityFacts
from scimward.policy.blast import PRIVILEGED_WEIGHT

#: Finding kinds that mean the identity has drifted on a target (reconcile's).
DRIFT_KINDS = frozenset(
    {
        "missing_account",
        "active_should_be_inactive",
        "attribute_drift",
        "extra_membership",
        "missing_membership",
        "changed_in_app",
    }
)
TOP = 10

_ADVICE = {
    "no owner": "assign an owner",
    "drifted": "repair the drift (scimward reconcile TARGET --repair)",
    "review overdue": "review its members within its cadence (scimward review ...)",
    "non-human without expiry": "give it an expiry",
}


@dataclass(frozen=True)
class Contributor:
    id: str
    resource_type: str
    name: str
    #: The gate's blast radius: accounts, entitlements, targets, weighted.
    accounts: int
    entitlements: int
    targets: int
    weighted: int
    gaps: tuple[str, ...]

    @property
    def ungoverned(self) -> bool:
        return bool(self.gaps)

    def advice(self) -> list[str]:
        """What would lower its figure, or its ungoverned part."""
        advice = [_ADVICE[gap] for gap in self.gaps if gap in _ADVICE]
        if self.targets > 1:
            advice.append(f"narrow the scope of the {self.targets} targets that hold it to those it needs")
        if self.resource_type == "Group" and self.entitlements:
            advice.append("split the group, or push it to fewer targets")
        return advice

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.resource_type,
            "name": self.name,
            "accounts": self.accounts,
            "entitlements": self.entitlements,
            "targets": self.targets,
            "weighted": self.weighted,
            "gaps": list(self.gaps),
            "advice": self.advice(),
        }


@dataclass
class TargetRisk:
    name: str
    total: int = 0
    ungoverned: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "total": self.total, "ungoverned": self.ungoverned}


@dataclass
class Risk:
    total: int = 0
    ungoverned: int = 0
    orphaned_accounts: int = 0
    #: Ungoverned weight by gap (an identity with two gaps counts in both).
    by_gap: dict[str, int] = field(default_factory=dict)
    per_target: dict[int, TargetRisk] = field(default_factory=dict)
    contributors: list[Contributor] = field(default_factory=list)

    @property
    def ungoverned_share(self) -> float | None:
        return self.ungoverned / self.total if self.total else None

    def top(self, count: int = TOP) -> list[Contributor]:
        """The ``count`` largest contributors (a partial sort: there is one per identity with a radius)."""
        if count <= 0:
            return []
        return heapq.nsmallest(count, self.contributors, key=lambda c: (-c.weighted, c.name, c.id))

    def to_json(self, top: int = TOP) -> dict[str, Any]:
        share = self.ungoverned_share
        return {
            "total": self.total,
            "ungoverned": self.ungoverned,
            "ungoverned_share": None if share is None else round(share, 4),
            "orphaned_accounts": self.orphaned_accounts,
            "by_gap": dict(sorted(self.by_gap.items())),
            "per_target": [t.to_json() for _, t in sorted(self.per_target.items(), key=lambda kv: kv[1].name)],
            "top": [c.to_json() for c in self.top(top)],
        }


def gaps_of(identity: IdentityFacts, drifted: frozenset[str]) -> tuple[str, ...]:
    gaps = []
    if identity.owner is None:
        gaps.append("no owner")
    if identity.id in drifted:
        gaps.append("drifted")
    if identity.resource_type == "Group" and identity.privileged and not identity.reviewed:
        gaps.append("review overdue")
    if identity.non_human and identity.expires is None:
        gaps.append("non-human without expiry")
    return tuple(gaps)


def compute(estate: Estate) -> Risk:
    risk = Risk()
    names = {t.id: t.name for t in estate.targets}
    for target_id, name in names.items():
        risk.per_target[target_id] = TargetRisk(name)
    drifted = frozenset(f.identity_id for f in estate.findings if f.kind in DRIFT_KINDS and f.identity_id)
    empty: dict[int, int] = {}
    for identity in estate.identities:
        if identity.resource_type not in ("User", "Group"):
            continue
        accounts = estate.accounts.get(identity.id, empty)
        entitled = (estate.as_group if identity.resource_type == "Group" else estate.as_member).get(identity.id, empty)
        # Its blast radius, as ``policy.blast.of_identity`` computes it (a test proves they agree).
        weight = PRIVILEGED_WEIGHT if identity.privileged else 1
        total_accounts, total_entitlements = sum(accounts.values()), sum(entitled.values())
        weighted = total_accounts + weight * total_entitlements
        gaps = gaps_of(identity, drifted)
        if weighted:
            risk.contributors.append(
                Contributor(
                    identity.id,
                    identity.resource_type,
                    identity.name,
                    total_accounts,
                    total_entitlements,
                    len(accounts.keys() | entitled.keys()),
                    weighted,
                    gaps,
                )
            )
        # The partition: a user brings its accounts, a group its accounts and its memberships.
        if identity.resource_type == "Group" and entitled:
            share = dict(accounts)
            for t, n in entitled.items():
                share[t] = share.get(t, 0) + weight * n
            _add(risk, share, gaps, names)
        else:
            _add(risk, accounts, gaps, names)
    for f in estate.findings:
        if f.kind == "orphaned_account":
            risk.orphaned_accounts += 1
            _add(risk, {f.target_id: 1} if f.target_id is not None else {}, ("orphaned",), names, count=1)
    return risk


def _add(
    risk: Risk, share: Mapping[int, int], gaps: tuple[str, ...], names: Mapping[int, str], count: int | None = None
) -> None:
    amount = sum(share.values()) if count is None else count
    risk.total += amount
    if gaps:
        risk.ungoverned += amount
        for gap in gaps:
            risk.by_gap[gap] = risk.by_gap.get(gap, 0) + amount
    for target_id, n in share.items():
        target = risk.per_target.get(target_id)
        if target is None:
            target = risk.per_target[target_id] = TargetRisk(names.get(target_id, str(target_id)))
        target.total += n
        if gaps:
            target.ungoverned += n
