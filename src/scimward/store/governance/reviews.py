"""Access-review rows: campaigns, items, revoked memberships, and the reads a campaign's context needs
(effective memberships with their members, when each was granted, accounts and findings per target).

Plain SQLAlchemy Core on the database's read and write transactions; the writes of identities that
a review decides go through the gate (``governance.reviews.remediate``), never through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store._direct import decode_json
from scimward.store.chunks import chunks
from scimward.store.governance.changes import dialect_insert
from scimward.store.provisioning.effective import effective_memberships
from scimward.store.tables import (
    changes,
    effective_states,
    findings,
    identities,
    link_members,
    links,
    review_campaigns,
    review_items,
    review_reminders,
    revoked_memberships,
    targets,
)

_c, _i, _rc, _ri, _rm = changes.c, identities.c, review_campaigns.c, review_items.c, revoked_memberships.c
_e, _l, _lm, _f, _t = effective_states.c, links.c, link_members.c, findings.c, targets.c
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: Keys per read: one bound array on PostgreSQL, an IN list on SQLite (far below its limit).
BIG = 5000


def _among(conn: AsyncConnection, column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column`` is one of ``values``."""
    if conn.dialect.name != "postgresql":
        return column.in_(list(values))
    if isinstance(column.type, sa.Integer):
        return column == sa.any_(sa.literal(list(values), postgresql.ARRAY(sa.Integer)))
    # Ids are the hub's own (no commas): one text parameter binds faster than an array of 5,000.
    return column == sa.any_(sa.func.string_to_array(sa.literal(",".join(values), sa.Text), ","))


# -- identities as reviews read them (their effective state) ---------------------------------------


@dataclass
class IdentityRow:
    id: str
    resource_type: str
    name: str
    doc: dict[str, Any]


def _identity(row: Any) -> IdentityRow:
    doc = decode_json(row.effective) if row.overlaid is not None and row.effective is not None else decode_json(row.doc)
    return IdentityRow(row.id, row.resource_type, str(row.user_name or row.display_name or row.id), doc or {})


def _identity_select() -> sa.Select[Any]:
    return sa.select(
        _i.id,
        _i.resource_type,
        _i.user_name,
        _i.display_name,
        _i.doc,
        _e.identity_id.label("overlaid"),
        _e.doc.label("effective"),
    ).select_from(identities.outerjoin(effective_states, _e.identity_id == _i.id))


async def identities_by_id(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, IdentityRow]:
    found: dict[str, IdentityRow] = {}
    for chunk in chunks(list(dict.fromkeys(ids)), BIG):
        for row in await conn.execute(_identity_select().where(_among(conn, _i.id, chunk))):
            found[row.id] = _identity(row)
    return found


async def all_groups(conn: AsyncConnection) -> list[IdentityRow]:
    rows = await conn.execute(_identity_select().where(_i.resource_type == "Group").order_by(_i.display_name_lower))
    return [_identity(row) for row in rows]


async def group_by_name(conn: AsyncConnection, name: str) -> IdentityRow | None:
    rows = list(
        await conn.execute(_identity_select().where(_i.resource_type == "Group", _i.display_name_lower == name.lower()))
    )
    return _identity(rows[0]) if rows else None


async def user_by_name(conn: AsyncConnection, user_name: str) -> IdentityRow | None:
    rows = list(
        await conn.execute(
            _identity_select().where(_i.resource_type == "User", _i.user_name_lower == user_name.lower())
        )
    )
    return _identity(rows[0]) if rows else None


async def active_user_count(conn: AsyncConnection) -> int:
    return int(
        (
            await conn.execute(
                sa.select(sa.func.count()).where(
                    _i.resource_type == "User", sa.or_(_i.active.is_(None), _i.active.is_(True))
                )
            )
        ).scalar_one()
    )


async def member_counts(conn: AsyncConnection) -> dict[str, int]:
    """Effective members per group."""
    em = effective_memberships()
    rows = await conn.execute(sa.select(em.c.group_id, sa.func.count()).group_by(em.c.group_id))
    return {str(g): int(n) for g, n in rows}


async def members_of(conn: AsyncConnection, group_ids: Sequence[str]) -> dict[str, list[tuple[str, str]]]:
    """(member id, member type) of each group's effective members, in member id order."""
    em = effective_memberships()
    found: dict[str, list[tuple[str, str]]] = {g: [] for g in group_ids}
    for chunk in chunks(list(group_ids), BIG):
        rows = await conn.execute(
            sa.select(em.c.group_id, em.c.member_id, em.c.member_type)
            .where(_among(conn, em.c.group_id, chunk))
            .order_by(em.c.group_id, em.c.member_id)
        )
        for group_id, member_id, member_type in rows:
            found[group_id].append((member_id, member_type))
    return found


@dataclass(frozen=True)
class Grant:
    """When and by which source (and change) a membership became effective."""

    at: datetime
    source: str | None
    change_id: str


async def grants(conn: AsyncConnection, group_ids: Sequence[str]) -> dict[tuple[str, str], Grant]:
    """The latest change that made each (group, member) effective, from the changes table."""
    found: dict[tuple[str, str], Grant] = {}
    when = sa.func.coalesce(_c.decided, _c.created)
    for chunk in chunks(list(group_ids), BIG):
        rows = await conn.execute(
            sa.select(_c.identity_id, _c.members_added, _c.source, when.label("at"), _c.id)
            .where(
                _among(conn, _c.identity_id, chunk),
                _c.status.in_(("applied", "approved")),
                _c.members_added.is_not(None),
            )
            .order_by(when, _c.id)
        )
        for group_id, added, source, at, change_id in rows:
            for member in decode_json(added) or []:
                found[(group_id, member)] = Grant(
                    at if isinstance(at, datetime) else datetime.fromisoformat(at), source, change_id
                )
    return found


# -- downstream: accounts, entitlements, findings -------------------------------------------------


@dataclass
class Account:
    target_id: int
    target: str
    status: str
    active: bool | None
    acknowledged: datetime


async def target_names(conn: AsyncConnection) -> dict[int, str]:
    return {int(i): str(n) for i, n in await conn.execute(sa.select(_t.id, _t.name))}


async def accounts_of(conn: AsyncConnection, identity_ids: Sequence[str]) -> dict[str, list[Account]]:
    names = await target_names(conn)
    found: dict[str, list[Account]] = {}
    for chunk in chunks(list(dict.fromkeys(identity_ids)), BIG):
        rows = await conn.execute(
            sa.select(_l.identity_id, _l.target_id, _l.status, _l.state, _l.acknowledged)
            .where(_among(conn, _l.identity_id, chunk))
            .order_by(_l.target_id)
        )
        for identity_id, target_id, status, state, acknowledged in rows:
            doc = decode_json(state) if state is not None else None
            active = doc.get("active") if isinstance(doc, dict) else None
            found.setdefault(identity_id, []).append(
                Account(
                    int(target_id),
                    names.get(int(target_id), str(target_id)),
                    str(status),
                    active if isinstance(active, bool) else None,
                    acknowledged,
                )
            )
    return found


async def entitlements(
    conn: AsyncConnection, group_ids: Sequence[str], member_ids: Sequence[str] | None = None
) -> set[tuple[str, str, int]]:
    """(group, member, target) of every membership (of ``member_ids``) a target acknowledged holding."""
    found: set[tuple[str, str, int]] = set()
    for chunk in chunks(list(group_ids), BIG):
        query = sa.select(_lm.group_id, _lm.member_id, _lm.target_id).where(_among(conn, _lm.group_id, chunk))
        for members in chunks(list(member_ids), BIG) if member_ids is not None else [None]:
            rows = await conn.execute(query if members is None else query.where(_among(conn, _lm.member_id, members)))
            found.update((str(g), str(m), int(t)) for g, m, t in rows)
    return found


async def profiles(conn: AsyncConnection, ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
    """Per identity: its name and department (the effective state's, else the source's), read in SQL
    without the documents, for ordering a campaign and counting the peers' departments."""

    def department(doc: Any) -> Any:
        return doc[ENTERPRISE]["department"].as_string()

    query = sa.select(
        _i.id,
        sa.func.coalesce(_i.user_name, _i.display_name, _i.id),
        sa.func.coalesce(department(_e.doc), department(_i.doc)),
    ).select_from(identities.outerjoin(effective_states, _e.identity_id == _i.id))
    found: dict[str, tuple[str, str | None]] = {}
    for chunk in chunks(list(dict.fromkeys(ids)), BIG):
        for identity_id, name, dept in await conn.execute(query.where(_among(conn, _i.id, chunk))):
            found[str(identity_id)] = (str(name), dept.strip() if isinstance(dept, str) and dept.strip() else None)
    return found


async def open_findings_of(conn: AsyncConnection, identity_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for chunk in chunks(list(dict.fromkeys(identity_ids)), BIG):
        rows = await conn.execute(
            sa.select(_f.identity_id, _f.target_id, _f.kind, _f.attribute, _f.severity).where(
                _among(conn, _f.identity_id, chunk), _f.status == "open"
            )
        )
        for identity_id, target_id, kind, attribute, severity in rows:
            found.setdefault(identity_id, []).append(
                {"target_id": target_id, "kind": kind, "attribute": attribute, "severity": severity}
            )
    return found


async def account_holders(conn: AsyncConnection, target_id: int) -> list[tuple[str, str]]:
    """(identity id, status) of every User account linked on a target."""
    rows = await conn.execute(
        sa.select(_l.identity_id, _l.status)
        .where(_l.target_id == target_id, _l.resource_type == "User")
        .order_by(_l.identity_id)
    )
    return [(str(i), str(s)) for i, s in rows]


async def groups_pushed_to(conn: AsyncConnection, target_id: int, member_ids: Sequence[str]) -> dict[str, list[str]]:
    """Per member: the groups whose membership the target acknowledged holding for it."""
    found: dict[str, list[str]] = {}
    for chunk in chunks(list(member_ids), BIG):
        rows = await conn.execute(
            sa.select(_lm.member_id, _lm.group_id)
            .where(_lm.target_id == target_id, _among(conn, _lm.member_id, chunk))
            .order_by(_lm.group_id)
        )
        for member_id, group_id in rows:
            found.setdefault(str(member_id), []).append(str(group_id))
    return found


# -- campaigns and items --------------------------------------------------------------------------


@dataclass
class CampaignRow:
    id: str
    name: str
    scope_kind: str
    scope: str
    reviewer: str
    default_decision: str
    status: str
    created: datetime
    created_by: str
    due: datetime
    closed: datetime | None
    closed_by: str | None
    items: int
    #: Items per decision ("keep", "revoke", "undecided"), when read with counts.
    counts: dict[str, int] = field(default_factory=dict)


CAMPAIGN_COLUMNS = (
    "id",
    "name",
    "scope_kind",
    "scope",
    "reviewer",
    "default_decision",
    "status",
    "created",
    "created_by",
    "due",
    "closed",
    "closed_by",
    "items",
)
ITEM_COLUMNS = (
    "campaign_id",
    "number",
    "kind",
    "member_id",
    "member_name",
    "group_id",
    "group_name",
    "target_id",
    "target_name",
    "reviewers",
    "granted",
    "granted_by",
    "granted_change",
    "context",
    "recommendation",
    "reasons",
    "decision",
    "decided_by",
    "decided",
    "note",
    "defaulted",
    "outcome",
    "outcome_change",
    "outcome_detail",
)


@dataclass
class ItemRow:
    campaign_id: str
    number: int
    kind: str
    member_id: str
    member_name: str
    group_id: str | None
    group_name: str | None
    target_id: int | None
    target_name: str | None
    reviewers: list[str]
    granted: datetime | None
    granted_by: str | None
    granted_change: str | None
    context: dict[str, Any]
    recommendation: str
    reasons: list[str]
    decision: str | None
    decided_by: str | None
    decided: datetime | None
    note: str | None
    defaulted: bool
    outcome: str | None
    outcome_change: str | None
    outcome_detail: str | None


def _campaign(row: Any) -> CampaignRow:
    return CampaignRow(**dict(zip(CAMPAIGN_COLUMNS, row, strict=True)))


def _item(row: Any) -> ItemRow:
    values = dict(zip(ITEM_COLUMNS, row, strict=True))
    for name in ("reviewers", "context", "reasons"):
        values[name] = decode_json(values[name]) if values[name] is not None else None
    values["reviewers"] = values["reviewers"] or []
    values["reasons"] = values["reasons"] or []
    values["context"] = values["context"] or {}
    values["defaulted"] = bool(values["defaulted"])
    return ItemRow(**values)


_CAMPAIGN_SELECT = sa.select(*(_rc[c] for c in CAMPAIGN_COLUMNS))
_ITEM_SELECT = sa.select(*(_ri[c] for c in ITEM_COLUMNS))


async def insert_campaign(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(review_campaigns.insert().values(values))


_JSON_ITEM_COLUMNS = frozenset(c for c in ITEM_COLUMNS if isinstance(review_items.c[c].type, sa.JSON))
_COPY_ITEMS = f"COPY review_items ({', '.join(ITEM_COLUMNS)}) FROM STDIN"


async def insert_items(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert items: with ``COPY`` on PostgreSQL (binding 24 values a row costs more than the database's
    own work), ``executemany`` on SQLite."""
    if conn.dialect.name != "postgresql":
        for chunk in chunks(list(rows), 5000):
            await conn.execute(review_items.insert(), chunk)
        return
    from psycopg.types.json import Jsonb  # PostgreSQL only: a command on SQLite never imports psycopg

    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.cursor() as cursor, cursor.copy(_COPY_ITEMS) as copy:
        for row in rows:
            await copy.write_row(
                [Jsonb(row[c]) if c in _JSON_ITEM_COLUMNS and row[c] is not None else row[c] for c in ITEM_COLUMNS]
            )


async def campaign_by_name(conn: AsyncConnection, name: str, *, lock: bool = False) -> CampaignRow | None:
    query = _CAMPAIGN_SELECT.where(_rc.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    rows = list(await conn.execute(query))
    return _campaign(rows[0]) if rows else None


async def campaigns(conn: AsyncConnection, status: str | None = None) -> list[CampaignRow]:
    query = _CAMPAIGN_SELECT.order_by(_rc.created.desc())
    if status is not None:
        query = query.where(_rc.status == status)
    found = [_campaign(row) for row in await conn.execute(query)]
    decision = sa.func.coalesce(_ri.decision, "undecided")
    counts = await conn.execute(
        sa.select(_ri.campaign_id, decision, sa.func.count()).group_by(_ri.campaign_id, decision)
    )
    by_id = {c.id: c for c in found}
    for campaign_id, kind, count in counts:
        if campaign_id in by_id:
            by_id[campaign_id].counts[str(kind)] = int(count)
    return found


async def due_campaigns(conn: AsyncConnection, now: datetime) -> list[CampaignRow]:
    rows = await conn.execute(_CAMPAIGN_SELECT.where(_rc.status == "open", _rc.due <= now).order_by(_rc.due))
    return [_campaign(row) for row in rows]


async def items_of(
    conn: AsyncConnection, campaign_id: str, numbers: Iterable[int] | None = None, undecided: bool = False
) -> list[ItemRow]:
    query = _ITEM_SELECT.where(_ri.campaign_id == campaign_id).order_by(_ri.number)
    if undecided:
        query = query.where(_ri.decision.is_(None))
    if numbers is None:
        return [_item(row) for row in await conn.execute(query)]
    found: list[ItemRow] = []
    for chunk in chunks(sorted(set(numbers)), BIG):
        found += [_item(row) for row in await conn.execute(query.where(_among(conn, _ri.number, chunk)))]
    return found


async def items_page(
    conn: AsyncConnection,
    campaign_id: str,
    *,
    after: int = 0,
    undecided: bool = False,
    keep: Callable[[ItemRow], bool] | None = None,
    limit: int = 100,
) -> tuple[list[ItemRow], bool]:
    """Items numbered past ``after``, in order, that ``keep`` keeps (all: None), at most ``limit``; and
    whether there are more. Read by keyset on the number in batches, so a page of a 100,000-item
    campaign reads about as many items as it shows when most are kept (a reviewer's own inbox)."""
    query = _ITEM_SELECT.where(_ri.campaign_id == campaign_id)
    if undecided:
        query = query.where(_ri.decision.is_(None))
    found: list[ItemRow] = []
    batch = limit + 1
    while True:
        read = [
            _item(row) for row in await conn.execute(query.where(_ri.number > after).order_by(_ri.number).limit(batch))
        ]
        found += [item for item in read if keep is None or keep(item)]
        if len(found) > limit or len(read) < batch:
            return found[:limit], len(found) > limit
        after = read[-1].number
        batch = min(batch * 4, 10_000)


_DECIDE = (
    review_items.update()
    .where(_ri.campaign_id == sa.bindparam("b_campaign"), _ri.number == sa.bindparam("b_number"))
    .values(
        decision=sa.bindparam("decision"),
        decided_by=sa.bindparam("decided_by"),
        decided=sa.bindparam("decided"),
        note=sa.bindparam("note"),
        defaulted=sa.bindparam("defaulted"),
    )
)
_OUTCOME = (
    review_items.update()
    .where(_ri.campaign_id == sa.bindparam("b_campaign"), _ri.number == sa.bindparam("b_number"))
    .values(
        outcome=sa.bindparam("outcome"),
        outcome_change=sa.bindparam("outcome_change"),
        outcome_detail=sa.bindparam("outcome_detail"),
    )
)


async def decide_items(
    conn: AsyncConnection,
    campaign_id: str,
    numbers: Sequence[int],
    decision: str,
    by: str,
    at: datetime,
    note: str | None,
    defaulted: bool = False,
) -> None:
    if not numbers:
        return
    await conn.execute(
        _DECIDE,
        [
            {
                "b_campaign": campaign_id,
                "b_number": n,
                "decision": decision,
                "decided_by": by,
                "decided": at,
                "note": note,
                "defaulted": defaulted,
            }
            for n in numbers
        ],
    )


async def record_outcomes(
    conn: AsyncConnection, campaign_id: str, outcomes: Sequence[tuple[int, str, str | None, str | None]]
) -> None:
    """(item number, outcome, change id, detail) of each remediated item."""
    if outcomes:
        await conn.execute(
            _OUTCOME,
            [
                {"b_campaign": campaign_id, "b_number": n, "outcome": o, "outcome_change": c, "outcome_detail": d}
                for n, o, c, d in outcomes
            ],
        )


async def record_revoked(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Upsert ``revoked_memberships`` rows (group_id, member_id, campaign_id, campaign_name, item_number,
    revoked, revoked_by): the newest review that revoked a membership is the one the gate names."""
    if not rows:
        return
    insert = dialect_insert(conn.dialect.name, revoked_memberships)
    statement = insert.on_conflict_do_update(
        index_elements=[_rm.group_id, _rm.member_id],
        set_={
            name: insert.excluded[name]
            for name in ("campaign_id", "campaign_name", "item_number", "revoked", "revoked_by")
        },
    )
    for chunk in chunks(list(rows), 2000):
        await conn.execute(statement, list(chunk))


async def revoked_rows(conn: AsyncConnection) -> list[dict[str, Any]]:
    rows = await conn.execute(sa.select(revoked_memberships).order_by(_rm.revoked))
    return [dict(row._mapping) for row in rows]


async def open_campaign(conn: AsyncConnection, campaign_id: str, items: int) -> None:
    await conn.execute(review_campaigns.update().where(_rc.id == campaign_id).values(status="open", items=items))


async def delete_campaign(conn: AsyncConnection, campaign_id: str) -> None:
    await conn.execute(review_items.delete().where(_ri.campaign_id == campaign_id))
    await conn.execute(review_campaigns.delete().where(_rc.id == campaign_id))


async def close_campaign(conn: AsyncConnection, campaign_id: str, at: datetime, by: str) -> None:
    await conn.execute(
        review_campaigns.update().where(_rc.id == campaign_id).values(status="closed", closed=at, closed_by=by)
    )


async def record_reminder(conn: AsyncConnection, campaign_id: str, reviewer: str, items: int, at: datetime) -> None:
    await conn.execute(
        review_reminders.insert().values(campaign_id=campaign_id, reviewer=reviewer, items=items, sent=at)
    )


async def reminders_of(conn: AsyncConnection, campaign_id: str) -> list[dict[str, Any]]:
    rr = review_reminders.c
    rows = await conn.execute(
        sa.select(rr.reviewer, rr["items"], rr.sent).where(rr.campaign_id == campaign_id).order_by(rr.sent)
    )
    return [{"reviewer": r, "items": int(n), "sent": s} for r, n, s in rows]


#: A campaign over one member's memberships (a mover's review): no group's own review (``governance.reviews``).
MEMBER_SCOPE = "member"


async def groups_in_open_campaigns(conn: AsyncConnection) -> set[str]:
    rows = await conn.execute(
        sa.select(_ri.group_id)
        .distinct()
        .select_from(review_items.join(review_campaigns, _rc.id == _ri.campaign_id))
        .where(_rc.status.in_(("open", "starting")), _ri.group_id.is_not(None), _rc.scope_kind != MEMBER_SCOPE)
    )
    return {str(g) for (g,) in rows}


async def last_campaign_of_groups(conn: AsyncConnection) -> dict[str, datetime]:
    """Per group: when the newest campaign with an item over it was created."""
    rows = await conn.execute(
        sa.select(_ri.group_id, sa.func.max(_rc.created))
        .select_from(review_items.join(review_campaigns, _rc.id == _ri.campaign_id))
        .where(_ri.group_id.is_not(None), _rc.scope_kind != MEMBER_SCOPE)
        .group_by(_ri.group_id)
    )
    return {str(g): at for g, at in rows}


async def pending_change(conn: AsyncConnection, identity_id: str) -> str | None:
    """The id of the identity's pending (held) change, if it has one."""
    rows = list(
        await conn.execute(
            sa.select(_c.id)
            .where(_c.identity_id == identity_id, _c.status == "pending")
            .order_by(_c.created.desc())
            .limit(1)
        )
    )
    return str(rows[0][0]) if rows else None


async def latest_change_by(conn: AsyncConnection, identity_id: str, source: str) -> str | None:
    """The id of the newest change of an identity from ``source``."""
    rows = list(
        await conn.execute(
            sa.select(_c.id)
            .where(_c.identity_id == identity_id, _c.source == source)
            .order_by(_c.created.desc(), _c.id.desc())
            .limit(1)
        )
    )
    return str(rows[0][0]) if rows else None


async def created_of(conn: AsyncConnection, identity_ids: Sequence[str]) -> dict[str, datetime]:
    found: dict[str, datetime] = {}
    for chunk in chunks(list(identity_ids), BIG):
        found.update(
            {str(i): c for i, c in await conn.execute(sa.select(_i.id, _i.created).where(_among(conn, _i.id, chunk)))}
        )
    return found
