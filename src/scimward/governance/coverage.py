"""Automation coverage: how much of the estate is under automated, governed lifecycle (issue 16, item 2).

Four shares, each a count over a count (docs/evidence.md defines them; a share of nothing is None):

1. **linked accounts**: downstream accounts linked to a hub identity (active links) over those plus the
   accounts reconcile found that no hub identity owns (live ``orphaned_account`` findings);
2. **owned and sourced identities**: users and groups with an owner (their ``owner`` attribute, else a
   person's manager) *and* a lifecycle source (an identity provider over SCIM, ``scim:``, or an HR
   feed, ``hr:``), over all users and groups;
3. **targets reconciled on schedule**: targets whose latest completed reconcile started within their
   ``reconcile_every`` (a target with reconciling off, quarantined, or never reconciled is not), over
   all targets;
4. **privileged groups reviewed**: privileged groups (``privileged: true``) with a completed access
   review within their cadence, over all privileged groups. Until access reviews exist (issue 15) no
   review is completed, so this share is 0 of the privileged groups (None without any).

The figures are pure functions of the rows (``compute``); ``measure`` reads the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scimward.durations import parse_duration
from scimward.store.database import Database
from scimward.store.governance import evidence
from scimward.store.governance.evidence import IdentityFacts, LiveFinding, TargetFacts
from scimward.store.timeutil import utcnow

#: Sources that are a lifecycle feed (an IdP provisioning over SCIM, an HR import), not a hand.
LIFECYCLE_SOURCES = ("scim:", "hr:")
DEFAULT_RECONCILE_EVERY = timedelta(days=1)


@dataclass(frozen=True)
class Share:
    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None

    def to_json(self) -> dict[str, Any]:
        value = self.value
        return {"part": self.part, "whole": self.whole, "share": None if value is None else round(value, 4)}


@dataclass(frozen=True)
class Coverage:
    linked_accounts: Share
    owned_and_sourced: Share
    reconciled_on_schedule: Share
    privileged_reviewed: Share

    def shares(self) -> dict[str, Share]:
        return {"linked_accounts": self.linked_accounts, "owned_and_sourced": self.owned_and_sourced,
                "reconciled_on_schedule": self.reconciled_on_schedule,
                "privileged_reviewed": self.privileged_reviewed}

    @property
    def overall(self) -> float | None:
        """The mean of the shares that are defined: one number for a trend line."""
        values = [v for v in (s.value for s in self.shares().values()) if v is not None]
        return sum(values) / len(values) if values else None

    def to_json(self) -> dict[str, Any]:
        overall = self.overall
        return {**{k: v.to_json() for k, v in self.shares().items()},
                "overall": None if overall is None else round(overall, 4)}


def has_lifecycle_source(source: str | None) -> bool:
    return bool(source) and str(source).startswith(LIFECYCLE_SOURCES)


def reconcile_every(config: dict[str, Any]) -> timedelta | None:
    """A target's reconcile interval (``reconcile_every``: default a day; 0, off or false: never)."""
    value = config.get("reconcile_every")
    if value is None:
        return DEFAULT_RECONCILE_EVERY
    if value is False or value in (0, "0", "off", "never", ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value) if value > 0 else None
    try:
        every = parse_duration(str(value))
    except ValueError:
        return None  # a setting the schedule refuses runs no reconcile either
    return every or None


def on_schedule(target: TargetFacts, now: datetime) -> bool:
    every = reconcile_every(target.config)
    return (every is not None and not target.quarantined and target.last_ok is not None
            and target.last_ok + every >= now)


def compute(identities: Sequence[IdentityFacts], linked_accounts: int, found: Sequence[LiveFinding],
            targets: Sequence[TargetFacts], reviewed_groups: Collection[str], now: datetime) -> Coverage:
    people_and_groups = [i for i in identities if i.resource_type in ("User", "Group")]
    orphaned = sum(1 for f in found if f.kind == "orphaned_account")
    privileged = [i.id for i in people_and_groups if i.resource_type == "Group" and i.privileged]
    return Coverage(
        linked_accounts=Share(linked_accounts, linked_accounts + orphaned),
        owned_and_sourced=Share(sum(1 for i in people_and_groups if i.owner and has_lifecycle_source(i.source)),
                                len(people_and_groups)),
        reconciled_on_schedule=Share(sum(1 for t in targets if on_schedule(t, now)), len(targets)),
        privileged_reviewed=Share(sum(1 for g in privileged if g in reviewed_groups), len(privileged)),
    )


@dataclass(frozen=True)
class Estate:
    """The rows both figures (coverage and risk) and the report are computed from, read once."""

    identities: list[IdentityFacts]
    accounts: evidence.PerTarget
    as_member: evidence.PerTarget
    as_group: evidence.PerTarget
    findings: list[LiveFinding]
    targets: list[TargetFacts]
    #: Privileged groups whose access review completed within its cadence (none until issue 15).
    reviewed_groups: frozenset[str]
    now: datetime

    @property
    def linked_accounts(self) -> int:
        """Users' active accounts on targets (a group on a target is an entitlement's container, not an
        account a person signs in with)."""
        users = {i.id for i in self.identities if i.resource_type == "User"}
        return sum(sum(per.values()) for identity, per in self.accounts.items() if identity in users)

    def coverage(self) -> Coverage:
        return compute(self.identities, self.linked_accounts, self.findings, self.targets, self.reviewed_groups,
                       self.now)


async def read_estate(database: Database, now: datetime | None = None) -> Estate:
    async with database.read() as conn:
        return Estate(await evidence.identity_facts(conn), await evidence.accounts(conn),
                      await evidence.entitlements_as_member(conn), await evidence.entitlements_as_group(conn),
                      await evidence.live_findings(conn), await evidence.target_facts(conn), frozenset(),
                      now or utcnow())


async def measure(database: Database) -> Coverage:
    return (await read_estate(database)).coverage()
