"""Access-review campaigns: start, decide, close, and the default at the due date.

A campaign over groups (a SCIM filter) has one item per (member, group) of their effective
memberships; over a target, one item per account linked there. Each item carries its context and a
recommendation (``reviews.context``). Reviewers decide items ``keep`` or ``revoke``; nobody decides
an item about their own access. A revoke is remediated at once through the gate
(``reviews.remediate``), and the membership is recorded as revoked so that the gate holds a source
that grants it again. Closing a campaign, or reaching its due date, gives undecided items the
campaign's default.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from scimward.governance.groups import governance_of
from scimward.governance.reviews.context import Peers, department_of, item_context, manager_of, recommend
from scimward.governance.reviews.remediate import Removal, remove_members
from scimward.policy import ApprovalError, UnknownSubject, identity_store
from scimward.scim.errors import InvalidValue, ScimError
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import GROUP_TYPE
from scimward.store.database import Database
from scimward.store.governance import reviews as rows
from scimward.store.governance.reviews import CampaignRow, IdentityRow, ItemRow
from scimward.store.identity import IdentityStore
from scimward.store.ids import new_id
from scimward.store.provisioning import TargetRepository
from scimward.store.timeutil import utcnow

log = structlog.get_logger("scimward.governance.reviews")

DECISIONS = ("keep", "revoke")
#: The scope kind of a campaign over one member's memberships (a mover's): it is no group's own review,
#: so it neither stands for a group's last campaign nor keeps its scheduled one from starting.
MEMBER_SCOPE = rows.MEMBER_SCOPE
#: A campaign being written: its items go in a unit at a time (``Reviews.start``).
STARTING = "starting"
#: Who starts the campaigns a group's cadence schedules, and how long their reviewers have.
SCHEDULE_ACTOR = "scimward (review cadence)"
SCHEDULED_DUE = timedelta(days=14)
#: Items built and written together when a campaign starts.
UNIT = 5000
#: How often reviewers with undecided items are reminded (``Reviews.remind``).
REMIND_EVERY = timedelta(days=1)
#: Who decides each item's fate when the campaign's due date passes, or it is closed.
DEFAULT_ACTOR = "scimward (campaign default)"


class ReviewError(ApprovalError):
    """A review action that cannot be done as asked (a self-review, a closed campaign, a decided item)."""


def review_source(campaign: str) -> str:
    return f"review:{campaign}"


@dataclass(frozen=True)
class Decided:
    number: int
    decision: str
    outcome: str | None
    detail: str | None


class Reviews:
    """The campaigns of one database; writes of identities go through ``store`` (a gated store)."""

    def __init__(self, database: Database, store: IdentityStore | None = None) -> None:
        self.db = database
        self.store = store or identity_store(database)
        self._seen = _Seen()

    # -- start ----------------------------------------------------------------------------------

    async def start(
        self,
        name: str,
        *,
        groups: str | None = None,
        target: str | None = None,
        reviewer: str = "owner",
        due: timedelta = timedelta(days=14),
        default: str = "keep",
        actor: str,
        now: datetime | None = None,
        member: str | None = None,
    ) -> CampaignRow:
        """Start a campaign over the groups ``groups`` takes, or the accounts of ``target``; with ``member``
        (an identity's id), over that member's memberships of those groups only (a mover's review)."""
        name = name.strip()
        if not name or len(name) > 128:
            raise InvalidValue("a campaign needs a name of 1 to 128 characters")
        if (groups is None) == (target is None):
            raise InvalidValue("give exactly one of --groups FILTER or --target NAME")
        if default not in DECISIONS:
            raise InvalidValue("--default must be keep or revoke")
        now = now or utcnow()
        async with self.db.read() as conn:
            if await rows.campaign_by_name(conn, name) is not None:
                raise ReviewError(f"a campaign named {name!r} exists already")
            reviewer_key = await self._reviewer_key(conn, reviewer)
        campaign_id = new_id()
        campaign: dict[str, Any] = {
            "id": campaign_id,
            "name": name,
            "scope_kind": "target" if groups is None else MEMBER_SCOPE if member is not None else "groups",
            "scope": groups if groups is not None else target,
            "reviewer": reviewer_key,
            "default_decision": default,
            "status": STARTING,
            "created": now,
            "created_by": actor,
            "due": now + due,
            "closed": None,
            "closed_by": None,
            "items": 0,
        }
        if groups is not None:
            batches = self._group_items(campaign_id, groups, reviewer_key, member)
        else:
            assert target is not None
            batches = self._target_items(campaign_id, target, reviewer_key)
        # The campaign is written as "starting" and its items a unit at a time, each unit in a short
        # transaction of its own (a campaign over 100,000 memberships never holds SQLite's writer for
        # long, nor all its items in memory); it opens once every item is in, or goes if one unit fails.
        first = True

        async def written(conn: Any) -> None:
            """The campaign row, written in the first unit's transaction (a name taken meanwhile refuses it)."""
            nonlocal first
            if first:
                if await rows.campaign_by_name(conn, name) is not None:
                    raise ReviewError(f"a campaign named {name!r} exists already")
                await rows.insert_campaign(conn, campaign)
                first = False

        try:
            async for batch in batches:
                async with self.db.write() as conn:
                    await written(conn)
                    await rows.insert_items(conn, batch)
                campaign["items"] += len(batch)
            async with self.db.write() as conn:
                await written(conn)
                campaign["status"] = "open"
                await rows.open_campaign(conn, campaign_id, campaign["items"])
        except BaseException:
            if not first:
                async with self.db.write() as conn:
                    await rows.delete_campaign(conn, campaign_id)
            raise
        return CampaignRow(**campaign)

    async def _reviewer_key(self, conn: Any, reviewer: str) -> str:
        if reviewer in ("owner", "manager"):
            return reviewer
        user = await rows.user_by_name(conn, reviewer)
        if user is None:
            raise InvalidValue(f"--reviewer must be owner, manager or a userName; no user {reviewer!r}")
        return f"user:{user.name}"

    async def _group_items(
        self, campaign_id: str, text: str, reviewer: str, member: str | None = None
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The items of the groups ``text`` takes (of ``member`` only, if given), by group name then member
        name, a unit at a time."""
        try:
            expr = parse_filter(text)
        except ScimError as exc:
            raise InvalidValue(
                f"--groups takes a SCIM filter over Groups, e.g. 'displayName eq \"{text}\"': {exc.detail}"
            ) from exc
        group_ids: list[str] = []
        async for chunk in IdentityStore(self.db).ids(GROUP_TYPE, expr):
            group_ids += chunk
        async with self.db.read() as conn:
            groups = sorted((await rows.identities_by_id(conn, group_ids)).values(), key=lambda g: g.name.lower())
            members = await rows.members_of(conn, group_ids)
            grants = await rows.grants(conn, group_ids)
            # Names and departments of every member first, for the order and the peers.
            profile = await rows.profiles(conn, [m for pairs in members.values() for m, _ in pairs])
        self._seen = _Seen()
        units: list[tuple[IdentityRow, list[str], Counter[str]]] = []
        size = 0
        numbered = 0
        for group in groups:
            ordered = sorted((m for m, _ in members[group.id] if m in profile), key=lambda m: profile[m][0].lower())
            # The peers are every member's departments; the items, one member's when the campaign is theirs.
            departments = Counter(d for d in (profile[m][1] for m in ordered) if d)
            if member is not None:
                ordered = [m for m in ordered if m == member]
            if not ordered:
                continue
            for start in range(0, len(ordered), UNIT):
                piece = ordered[start : start + UNIT]
                units.append((group, piece, departments))
                size += len(piece)
                if size >= UNIT:
                    batch = await self._unit_items(campaign_id, units, reviewer, grants, profile, numbered)
                    numbered += len(batch)
                    yield batch
                    units, size = [], 0
        if units:
            yield await self._unit_items(campaign_id, units, reviewer, grants, profile, numbered)

    async def _unit_items(
        self,
        campaign_id: str,
        units: Sequence[tuple[IdentityRow, list[str], Counter[str]]],
        reviewer: str,
        grants: dict[tuple[str, str], rows.Grant],
        profile: dict[str, tuple[str, str | None]],
        numbered: int,
    ) -> list[dict[str, Any]]:
        member_ids = list(dict.fromkeys(m for _, piece, _ in units for m in piece))
        group_ids = list(dict.fromkeys(g.id for g, _, _ in units))
        async with self.db.read() as conn:
            held: dict[tuple[str, str], set[int]] = {}
            for g, m, t in await rows.entitlements(conn, group_ids, member_ids):
                held.setdefault((g, m), set()).add(t)
            cache = self._seen
            if len(cache.people) > SEEN_LIMIT:
                self._seen = cache = _Seen()
            missing = [m for m in member_ids if m not in cache.people]
            cache.people.update(await rows.identities_by_id(conn, missing))
            cache.accounts.update(await rows.accounts_of(conn, missing))
            cache.findings.update(await rows.open_findings_of(conn, missing))
            people = {m: cache.people[m] for m in member_ids if m in cache.people}
            governance = {g.id: governance_of(g.id, g.name, g.doc) for g, _, _ in units}
            wanted = {manager_of(p.doc) for p in people.values()}
            wanted |= {o for gov in governance.values() for o in gov.owners}
            cache.people.update(
                await rows.identities_by_id(conn, [w for w in wanted if w is not None and w not in cache.people])
            )
            known = cache.people
            accounts, findings = cache.accounts, cache.findings
        items: list[dict[str, Any]] = []
        peers_of: dict[tuple[str, str | None], Peers] = {}
        for group, piece, departments in units:
            for member_id in piece:
                member = people.get(member_id)
                if member is None:
                    continue  # deleted since
                own = profile[member_id][1]
                peers = peers_of.get((group.id, own))
                if peers is None:  # the other members' departments: the same for every member of one
                    rest = departments.copy()
                    if own:
                        rest[own] -= 1
                        rest = +rest
                    peers = peers_of[(group.id, own)] = Peers.of(rest)
                manager_id = manager_of(member.doc)
                advice = recommend(
                    member, accounts.get(member_id, []), peers, known.get(manager_id) if manager_id else None
                )
                items.append(
                    self._item(
                        campaign_id,
                        numbered + len(items) + 1,
                        "membership",
                        member,
                        group=group,
                        reviewers=_reviewers(reviewer, governance[group.id].owners, manager_id, known),
                        grant=grants.get((group.id, member_id)),
                        advice=advice.decision,
                        reasons=advice.reasons,
                        context=item_context(
                            member,
                            accounts.get(member_id, []),
                            findings.get(member_id, []),
                            held.get((group.id, member_id), set()),
                            peers,
                        ),
                    )
                )
        return items

    async def _target_items(self, campaign_id: str, target: str, reviewer: str) -> AsyncIterator[list[dict[str, Any]]]:
        row = await TargetRepository(self.db).by_name(target)
        items: list[dict[str, Any]] = []
        async with self.db.read() as conn:
            holders = await rows.account_holders(conn, row.id)
            member_ids = [i for i, _ in holders]
            people = await rows.identities_by_id(conn, member_ids)
            wanted = [m for m in (manager_of(p.doc) for p in people.values()) if m and m not in people]
            known = {**await rows.identities_by_id(conn, wanted), **people}
            accounts = await rows.accounts_of(conn, member_ids)
            findings = await rows.open_findings_of(conn, member_ids)
            pushed = await rows.groups_pushed_to(conn, row.id, member_ids)
            departments = Counter(d for d in (_department(p) for p in people.values()) if d)
            for member in sorted(people.values(), key=lambda p: p.name.lower()):
                own = _department(member)
                rest = departments.copy()
                if own:
                    rest[own] -= 1
                    rest = +rest
                peers = Peers.of(rest)
                manager_id = manager_of(member.doc)
                advice = recommend(
                    member,
                    [a for a in accounts.get(member.id, []) if a.target_id == row.id],
                    peers,
                    known.get(manager_id) if manager_id else None,
                )
                context = item_context(member, accounts.get(member.id, []), findings.get(member.id, []), None, peers)
                context["groups_on_target"] = pushed.get(member.id, [])
                items.append(
                    self._item(
                        campaign_id,
                        len(items) + 1,
                        "account",
                        member,
                        target=(row.id, row.name),
                        reviewers=_reviewers(reviewer, [], manager_id, known),
                        grant=None,
                        advice=advice.decision,
                        reasons=advice.reasons,
                        context=context,
                    )
                )
        for start in range(0, len(items), UNIT):
            yield items[start : start + UNIT]

    @staticmethod
    def _item(
        campaign_id: str,
        number: int,
        kind: str,
        member: IdentityRow,
        *,
        group: IdentityRow | None = None,
        target: tuple[int, str] | None = None,
        reviewers: list[str],
        grant: rows.Grant | None,
        advice: str,
        reasons: list[str],
        context: dict[str, Any],
    ) -> dict[str, Any]:
        return {
            "campaign_id": campaign_id,
            "number": number,
            "kind": kind,
            "member_id": member.id,
            "member_name": member.name,
            "group_id": group.id if group else None,
            "group_name": group.name if group else None,
            "target_id": target[0] if target else None,
            "target_name": target[1] if target else None,
            "reviewers": reviewers,
            "granted": grant.at if grant else None,
            "granted_by": grant.source if grant else None,
            "granted_change": grant.change_id if grant else None,
            "context": context,
            "recommendation": advice,
            "reasons": reasons,
            "decision": None,
            "decided_by": None,
            "decided": None,
            "note": None,
            "defaulted": False,
            "outcome": None,
            "outcome_change": None,
            "outcome_detail": None,
        }

    # -- reading --------------------------------------------------------------------------------

    async def campaigns(self, status: str | None = None) -> list[CampaignRow]:
        async with self.db.read() as conn:
            return await rows.campaigns(conn, status)

    async def show(self, name: str) -> tuple[CampaignRow, list[ItemRow]]:
        async with self.db.read() as conn:
            campaign = await self._campaign(conn, name)
            found = await rows.campaigns(conn)
            campaign.counts = next((c.counts for c in found if c.id == campaign.id), {})
            return campaign, await rows.items_of(conn, campaign.id)

    async def page(
        self,
        name: str,
        *,
        after: int = 0,
        undecided: bool = False,
        reviewer: str | None = None,
        limit: int = 100,
    ) -> tuple[CampaignRow, list[ItemRow], bool]:
        """One page of the campaign's items past number ``after`` (undecided ones, ``reviewer``'s own:
        any of the item's reviewers, in any case), read in SQL by number; and whether there are more."""
        me = reviewer.lower() if reviewer is not None else None

        def mine(item: ItemRow) -> bool:
            return me in [r.lower() for r in item.reviewers]

        async with self.db.read() as conn:
            campaign = await self._campaign(conn, name)
            found = await rows.campaigns(conn)
            campaign.counts = next((c.counts for c in found if c.id == campaign.id), {})
            items, more = await rows.items_page(
                conn, campaign.id, after=after, undecided=undecided, keep=mine if me is not None else None, limit=limit
            )
            return campaign, items, more

    @staticmethod
    async def _campaign(conn: Any, name: str, *, lock: bool = False) -> CampaignRow:
        campaign = await rows.campaign_by_name(conn, name, lock=lock)
        if campaign is None:
            raise UnknownSubject(f"no campaign named {name!r}")
        return campaign

    # -- deciding -------------------------------------------------------------------------------

    async def decide(
        self, name: str, numbers: Sequence[int], decision: str, by: str, note: str | None = None
    ) -> list[Decided]:
        """Decide items (all or none: a self-review or an unknown item refuses the whole call), then
        remediate the revokes through the gate."""
        if decision not in DECISIONS:
            raise InvalidValue("a decision is keep or revoke")
        if not numbers:
            raise InvalidValue("name at least one item")
        by = by.strip()
        if not by:
            raise InvalidValue("a decision needs a decider (--as USER)")
        now = utcnow()
        async with self.db.write() as conn:
            campaign = await self._campaign(conn, name, lock=True)
            if campaign.status == STARTING:
                raise ReviewError(f"campaign {name!r} is still starting: its items are being written")
            if campaign.status != "open":
                raise ReviewError(f"campaign {name!r} is {campaign.status}: its decisions are final")
            items = await rows.items_of(conn, campaign.id, numbers)
            missing = sorted(set(numbers) - {i.number for i in items})
            if missing:
                raise UnknownSubject(f"campaign {name!r} has no item {', '.join(map(str, missing[:10]))}")
            for item in items:
                if _is_self(item, by):
                    raise ReviewError(
                        f"item {item.number}: {by!r} cannot review their own access "
                        f"({item.member_name} in {item.group_name or item.target_name}); "
                        "ask another reviewer"
                    )
                if item.decision is not None:
                    raise ReviewError(f"item {item.number} was decided already ({item.decision} by {item.decided_by})")
            await rows.decide_items(conn, campaign.id, [i.number for i in items], decision, by, now, note)
        outcomes = await self._remediate(campaign, [i for i in items if decision == "revoke"], by)
        return [Decided(i.number, decision, *outcomes.get(i.number, (None, None))) for i in items]

    async def close(self, name: str, by: str) -> list[Decided]:
        """Give undecided items the campaign's default, remediate, and close it."""
        async with self.db.read() as conn:
            campaign = await self._campaign(conn, name)
        return await self._close(campaign, by)

    async def apply_due(self, now: datetime | None = None) -> list[str]:
        """Close every open campaign past its due date (undecided items take the default): the
        scheduled pass (``governance.schedule``). Answers the names of the campaigns closed."""
        async with self.db.read() as conn:
            due = await rows.due_campaigns(conn, now or utcnow())
        for campaign in due:
            await self._close(campaign, DEFAULT_ACTOR)
        return [c.name for c in due]

    async def remind(self, now: datetime | None = None, every: timedelta = REMIND_EVERY) -> dict[str, int]:
        """Record a reminder for each reviewer with undecided items in an open campaign, at most once per
        ``every`` (the first one ``every`` after the start). Answers reviewer -> undecided items."""
        now = now or utcnow()
        sent: dict[str, int] = {}
        async with self.db.write() as conn:
            for campaign in await rows.campaigns(conn, "open"):
                last = max((r["sent"] for r in await rows.reminders_of(conn, campaign.id)), default=campaign.created)
                if last + every > now:
                    continue
                waiting = Counter(
                    r
                    for item in await rows.items_of(conn, campaign.id, undecided=True)
                    for r in item.reviewers or ["(no reviewer)"]
                )
                for reviewer, count in sorted(waiting.items()):
                    await rows.record_reminder(conn, campaign.id, reviewer, count, now)
                    log.info("review reminder", campaign=campaign.name, reviewer=reviewer, undecided=count)
                    sent[reviewer] = sent.get(reviewer, 0) + count
        return sent

    async def start_scheduled(self, now: datetime | None = None) -> list[str]:
        """Start the next campaign of every group whose review cadence has passed since its last campaign
        (or since it was made), unless one is open over it: reviewed by its owners, due in
        ``SCHEDULED_DUE``, undecided items kept. Answers the names of the campaigns started."""
        now = now or utcnow()
        async with self.db.read() as conn:
            groups = await rows.all_groups(conn)
            counts = await rows.member_counts(conn)
            last = await rows.last_campaign_of_groups(conn)
            busy = await rows.groups_in_open_campaigns(conn)
            created = await rows.created_of(conn, [g.id for g in groups])
        started = []
        for group in groups:
            cadence = governance_of(group.id, group.name, group.doc).review_cadence
            if cadence is None or group.id in busy or not counts.get(group.id):
                continue
            since = last.get(group.id) or created.get(group.id)
            if since is None or since + timedelta(days=cadence) > now:
                continue
            name = f"{group.name[:100]} review {now:%Y-%m-%d}"
            await self.start(
                name,
                groups=f'id eq "{group.id}"',
                reviewer="owner",
                due=SCHEDULED_DUE,
                default="keep",
                actor=SCHEDULE_ACTOR,
                now=now,
            )
            started.append(name)
        return started

    async def _close(self, campaign: CampaignRow, by: str) -> list[Decided]:
        now = utcnow()
        async with self.db.write() as conn:
            current = await self._campaign(conn, campaign.name, lock=True)
            if current.status != "open":
                raise ReviewError(f"campaign {campaign.name!r} is {current.status} already")
            undecided = await rows.items_of(conn, current.id, undecided=True)
            await rows.decide_items(
                conn,
                current.id,
                [i.number for i in undecided],
                current.default_decision,
                DEFAULT_ACTOR,
                now,
                f"the campaign's default, applied by {by}",
                defaulted=True,
            )
            await rows.close_campaign(conn, current.id, now, by)
        revoke = [i for i in undecided if current.default_decision == "revoke"]
        outcomes = await self._remediate(current, revoke, DEFAULT_ACTOR)
        return [Decided(i.number, current.default_decision, *outcomes.get(i.number, (None, None))) for i in undecided]

    # -- remediation ----------------------------------------------------------------------------

    async def _remediate(
        self, campaign: CampaignRow, items: Sequence[ItemRow], by: str
    ) -> dict[int, tuple[str, str | None]]:
        if not items:
            return {}
        removals: dict[str, list[str]] = {}
        wanted: dict[tuple[str, str], ItemRow] = {}
        for item in items:
            groups = [item.group_id] if item.group_id else list(item.context.get("groups_on_target") or [])
            for group_id in groups:
                removals.setdefault(group_id, []).append(item.member_id)
                wanted[(group_id, item.member_id)] = item
        done = await remove_members(self.db, self.store, removals, source=review_source(campaign.name), actor=by)
        now = utcnow()
        per_item: dict[int, list[Removal]] = {}
        revoked = []
        for key, removal in done.items():
            item = wanted[key]
            per_item.setdefault(item.number, []).append(removal)
            if removal.outcome in ("applied", "held", "gone"):
                revoked.append(
                    {
                        "group_id": key[0],
                        "member_id": key[1],
                        "campaign_id": campaign.id,
                        "campaign_name": campaign.name,
                        "item_number": item.number,
                        "revoked": now,
                        "revoked_by": by,
                    }
                )
        outcomes: dict[int, tuple[str, str | None, str | None]] = {}
        for item in items:
            found = per_item.get(item.number, [])
            if not found:
                outcomes[item.number] = ("gone", "no group puts it on the target", None)
                continue
            worst = max(found, key=lambda r: _SEVERITY[r.outcome])
            detail = "; ".join(f"{r.outcome}: {r.detail}" for r in found if r.detail) or None
            outcomes[item.number] = (worst.outcome, detail, next((r.change_id for r in found if r.change_id), None))
        async with self.db.write() as conn:
            await rows.record_revoked(conn, revoked)
            await rows.record_outcomes(conn, campaign.id, [(n, o, c, d) for n, (o, d, c) in outcomes.items()])
        return {n: (o, d) for n, (o, d, _c) in outcomes.items()}


_SEVERITY = {"gone": 0, "applied": 1, "held": 2, "failed": 3}
#: Members whose rows a campaign's start keeps while it builds items (one who is in many of the groups
#: is read once), about 2 KB each.
SEEN_LIMIT = 20_000


@dataclass
class _Seen:
    """Rows read for earlier units of the same campaign start."""

    people: dict[str, IdentityRow] = field(default_factory=dict)
    accounts: dict[str, list[rows.Account]] = field(default_factory=dict)
    findings: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _department(identity: IdentityRow) -> str | None:
    return department_of(identity.doc)


def _is_self(item: ItemRow, by: str) -> bool:
    """Whether ``by`` (a userName, an id or a token's name) is the member the item is about."""
    return by.lower() in (item.member_name.lower(), item.member_id.lower())


def _reviewers(
    reviewer: str, owners: Sequence[str], manager_id: str | None, known: dict[str, IdentityRow]
) -> list[str]:
    if reviewer == "owner":
        return [known[o].name if o in known else o for o in owners]
    if reviewer == "manager":
        return [known[manager_id].name if manager_id in known else manager_id] if manager_id else []
    return [reviewer.removeprefix("user:")]
