"""Automation coverage: how much of the estate is under automated, governed lifecycle (issue 16, item 2).

Four shares, each a count over a count (docs/evidence.md defines them; a share of nothing is None):

1. **linked accounts**: users' downstream accounts linked to a hub identity (active links) over
   those plus the accounts reconcile found that no hub identity owns (live ``orphaned_account``);
2. **owned and sourced identities**: users and groups with an owner and a lifecycle source (an
   identity provider over SCIM, ``scim:``, or an HR feed, ``hr:``), over all users and groups. A
   group's owners are its governance extension's ``owners`` (``governance.groups``); a user's owner
   is its ``owner`` attribute where it has one (a non-human identity's), else the person's manager;
3. **targets reconciled on schedule**: targets whose latest completed reconcile started within their
   ``reconcile_every`` (a target with reconciling off, quarantined, or never reconciled is not), over
   all targets;
4. **privileged groups reviewed**: privileged groups (``privileged``, or risk tier high or critical)
   whose newest access-review campaign is within their review cadence, over all privileged groups
   (one without a cadence is not reviewed within it).

The figures are pure functions of the rows (``compute``); ``read_estate`` reads the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from scimward.durations import DurationError, parse_every
from scimward.governance.groups import governance_of
from scimward.governance.reviews.context import is_non_human
from scimward.store.database import Database
from scimward.store.governance import evidence
from scimward.store.governance import reviews as review_rows
from scimward.store.governance.evidence import EstateRow, LiveFinding, TargetFacts
from scimward.store.timeutil import utcnow

#: Sources that are a lifecycle feed (an IdP provisioning over SCIM, an HR import), not a hand.
LIFECYCLE_SOURCES = ("scim:", "hr:")
DEFAULT_RECONCILE_EVERY = timedelta(days=1)


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass(frozen=True)
class IdentityFacts:
    """What the figures need of one identity."""

    id: str
    resource_type: str
    name: str
    source: str | None
    owner: str | None
    privileged: bool
    #: A privileged group whose newest review is within its cadence.
    reviewed: bool = False
    non_human: bool = False
    #: A non-human identity's expiry (its ``expires`` attribute), if it has one.
    expires: str | None = None


def _attribute(doc: dict[str, Any], name: str) -> Any:
    """``name`` at the top of the document, else in the first schema extension that has it."""
    if name in doc:
        return doc[name]
    for key, value in doc.items():  # the cheapest test first: most values are not objects
        if isinstance(value, dict) and name in value and key.startswith("urn:"):
            return value[name]
    return None


def owner_of_user(doc: dict[str, Any]) -> str | None:
    """A user's owner: its ``owner`` attribute (a name or ``{"value": ...}``, at the top or in a schema
    extension; a non-human identity's), else the person's manager (``manager.value``)."""
    for candidate in (_attribute(doc, "owner"), (doc.get(ENTERPRISE) or {}).get("manager")):
        value = candidate.get("value") if isinstance(candidate, dict) else candidate
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def facts_of(row: EstateRow, last_review: datetime | None, now: datetime) -> IdentityFacts:
    if row.resource_type == "Group":
        gov = governance_of(row.id, row.name, row.doc)
        cadence = gov.review_cadence
        reviewed = (
            gov.privileged
            and cadence is not None
            and last_review is not None
            and last_review + timedelta(days=cadence) > now
        )
        return IdentityFacts(
            row.id,
            row.resource_type,
            row.name,
            row.source,
            ", ".join(gov.owner_names) or None,
            gov.privileged,
            reviewed,
        )
    expires = _attribute(row.doc, "expires")
    return IdentityFacts(
        row.id,
        row.resource_type,
        row.name,
        row.source,
        owner_of_user(row.doc),
        row.doc.get("privileged") is True,
        non_human=is_non_human(row.doc),
        expires=str(expires) if expires else None,
    )


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
        return {
            "linked_accounts": self.linked_accounts,
            "owned_and_sourced": self.owned_and_sourced,
            "reconciled_on_schedule": self.reconciled_on_schedule,
            "privileged_reviewed": self.privileged_reviewed,
        }

    @property
    def overall(self) -> float | None:
        """The mean of the shares that are defined: one number for a trend line."""
        values = [v for v in (s.value for s in self.shares().values()) if v is not None]
        return sum(values) / len(values) if values else None

    def to_json(self) -> dict[str, Any]:
        overall = self.overall
        return {
            **{k: v.to_json() for k, v in self.shares().items()},
            "overall": None if overall is None else round(overall, 4),
        }


def has_lifecycle_source(source: str | None) -> bool:
    return bool(source) and str(source).startswith(LIFECYCLE_SOURCES)


def reconcile_every(config: dict[str, Any]) -> timedelta | None:
    """A target's reconcile interval (``reconcile_every``: default a day; 0, off or false: never)."""
    try:
        return parse_every(config.get("reconcile_every"), "reconcile_every", DEFAULT_RECONCILE_EVERY)
    except DurationError:
        return None  # a setting the schedule refuses runs no reconcile either


def on_schedule(target: TargetFacts, now: datetime) -> bool:
    every = reconcile_every(target.config)
    return every is not None and not target.quarantined and target.last_ok is not None and target.last_ok + every >= now


def compute(
    identities: Sequence[IdentityFacts],
    linked_accounts: int,
    found: Sequence[LiveFinding],
    targets: Sequence[TargetFacts],
    now: datetime,
) -> Coverage:
    people_and_groups = [i for i in identities if i.resource_type in ("User", "Group")]
    orphaned = sum(1 for f in found if f.kind == "orphaned_account")
    privileged = [i for i in people_and_groups if i.resource_type == "Group" and i.privileged]
    return Coverage(
        linked_accounts=Share(linked_accounts, linked_accounts + orphaned),
        owned_and_sourced=Share(
            sum(1 for i in people_and_groups if i.owner and has_lifecycle_source(i.source)), len(people_and_groups)
        ),
        reconciled_on_schedule=Share(sum(1 for t in targets if on_schedule(t, now)), len(targets)),
        privileged_reviewed=Share(sum(1 for g in privileged if g.reviewed), len(privileged)),
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
    now: datetime

    @property
    def linked_accounts(self) -> int:
        """Users' active accounts on targets (a group on a target is an entitlement's container, not an
        account a person signs in with)."""
        users = {i.id for i in self.identities if i.resource_type == "User"}
        return sum(sum(per.values()) for identity, per in self.accounts.items() if identity in users)

    def coverage(self) -> Coverage:
        return compute(self.identities, self.linked_accounts, self.findings, self.targets, self.now)


async def read_estate(database: Database, now: datetime | None = None) -> Estate:
    now = now or utcnow()
    async with database.read() as conn:
        reviewed = await review_rows.last_campaign_of_groups(conn)
        identities = [facts_of(row, reviewed.get(row.id), now) for row in await evidence.identity_rows(conn)]
        return Estate(
            identities,
            await evidence.accounts(conn),
            await evidence.entitlements_as_member(conn),
            await evidence.entitlements_as_group(conn),
            await evidence.live_findings(conn),
            await evidence.target_facts(conn),
            now,
        )


async def measure(database: Database) -> Coverage:
    return (await read_estate(database)).coverage()
