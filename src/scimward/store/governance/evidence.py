"""The rows the evidence figures are computed from (``scimward.governance``: coverage, risk, the report).

Each read is one grouped query over the whole estate, not one per identity: the report on 100,000
users reads the same rows the gate's blast radius reads (``gate_rows``: active links, acknowledged
memberships), in bulk. The daily snapshots of the figures live here too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store._direct import decode_json, decode_time
from scimward.store.tables import (
    changes,
    evidence_snapshots,
    findings,
    identities,
    link_members,
    links,
    reconcile_runs,
    targets,
)

_t, _l, _lm, _f, _r, _s = identities.c, links.c, link_members.c, findings.c, reconcile_runs.c, evidence_snapshots.c
#: Chunk of identities read at a time: bounded memory on a large estate.
CHUNK = 5000


@dataclass(frozen=True)
class EstateRow:
    """One identity as the figures read it: its source state and where it came from."""

    id: str
    resource_type: str
    name: str
    source: str | None
    doc: dict[str, Any]
    active: bool
    created: datetime


async def _driver_rows(conn: AsyncConnection, query: sa.Select[Any]) -> list[Any]:
    """The rows as the driver hands them (tuples), without SQLAlchemy's row objects and result types:
    on 100,000 users the estate is a million rows, and the row objects cost more than the database."""
    result = await conn.execute(query)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


async def identity_rows(conn: AsyncConnection) -> list[EstateRow]:
    """Every identity, read in chunks of ``CHUNK`` by id."""
    found: list[EstateRow] = []
    last = ""
    while True:
        rows = await _driver_rows(
            conn,
            sa.select(
                _t.id,
                _t.resource_type,
                sa.func.coalesce(_t.user_name, _t.display_name),
                _t.source,
                _t.doc,
                _t.active,
                _t.created,
            )
            .where(_t.id > last)
            .order_by(_t.id)
            .limit(CHUNK),
        )
        for identity_id, resource_type, name, source, doc, active, created in rows:
            doc = decode_json(doc) if doc is not None else None  # SQLite's text; psycopg has decoded it
            found.append(
                EstateRow(
                    identity_id,
                    resource_type,
                    name or identity_id,
                    source,
                    doc if isinstance(doc, dict) else {},
                    active is None or bool(active),  # SQLite's 0 or 1
                    decode_time(created),
                )
            )
        if len(rows) < CHUNK:
            return found
        last = rows[-1][0]


PerTarget = dict[str, dict[int, int]]


async def _per_target(conn: AsyncConnection, query: sa.Select[Any]) -> PerTarget:
    out: PerTarget = {}
    for key, target_id, count in await _driver_rows(conn, query):
        out.setdefault(str(key), {})[int(target_id)] = int(count)
    return out


async def accounts(conn: AsyncConnection) -> PerTarget:
    """identity -> target -> active accounts (``gate_rows.ACCOUNTS_OF``, for every identity at once).

    A link's key is (target, identity), so an identity has at most one account a target: each row
    counts 1, with no GROUP BY. Grouped, SQLite walked the key's index and looked each link's row up
    for its status, 500,000 lookups on 100,000 users, where this reads the table through once."""
    out: PerTarget = {}
    for target_id, identity_id in await _driver_rows(
        conn, sa.select(_l.target_id, _l.identity_id).where(_l.status == "active")
    ):
        out.setdefault(identity_id, {})[target_id] = 1
    return out


async def entitlements_as_member(conn: AsyncConnection) -> PerTarget:
    """member -> target -> acknowledged memberships (``gate_rows.ENTITLEMENTS_AS_MEMBER``, in bulk).

    Counted here from the rows in key order (target, group, member): grouping by member in SQL makes
    SQLite sort every membership first, and the grouped rows are nearly as many as the memberships."""
    out: PerTarget = {}
    for target_id, member_id in await _driver_rows(conn, sa.select(_lm.target_id, _lm.member_id)):
        per = out.get(member_id)
        if per is None:
            out[member_id] = {target_id: 1}
        else:
            per[target_id] = per.get(target_id, 0) + 1
    return out


async def entitlements_as_group(conn: AsyncConnection) -> PerTarget:
    """group -> target -> acknowledged memberships (``gate_rows.ENTITLEMENTS_AS_GROUP``, in bulk), grouped
    in key order (target, group): no sort."""
    return await _per_target(
        conn, sa.select(_lm.group_id, _lm.target_id, sa.func.count()).group_by(_lm.target_id, _lm.group_id)
    )


@dataclass(frozen=True)
class LiveFinding:
    kind: str
    status: str
    severity: str
    target_id: int | None
    subject: str
    identity_id: str | None


async def live_findings(conn: AsyncConnection) -> list[LiveFinding]:
    rows = await conn.execute(
        sa.select(_f.kind, _f.status, _f.severity, _f.target_id, _f.subject, _f.identity_id).where(
            _f.status != "resolved"
        )
    )
    return [LiveFinding(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


@dataclass(frozen=True)
class TargetFacts:
    id: int
    name: str
    config: dict[str, Any]
    created: datetime
    quarantined: bool
    #: When the latest run that completed (status ok) started, and the latest run of any outcome.
    last_ok: datetime | None
    last_run: datetime | None
    last_status: str | None


async def target_facts(conn: AsyncConnection) -> list[TargetFacts]:
    ok = (
        sa.select(_r.target_id, sa.func.max(_r.started).label("started"))
        .where(_r.status == "ok")
        .group_by(_r.target_id)
        .subquery()
    )
    latest = sa.select(_r.target_id, sa.func.max(_r.id).label("run")).group_by(_r.target_id).subquery()
    last = reconcile_runs.alias("last_run")
    query = (
        sa.select(
            targets.c.id,
            targets.c.name,
            targets.c.config,
            targets.c.created,
            targets.c.quarantined,
            ok.c.started,
            last.c.started,
            last.c.status,
        )
        .outerjoin(ok, ok.c.target_id == targets.c.id)
        .outerjoin(latest, latest.c.target_id == targets.c.id)
        .outerjoin(last, last.c.id == latest.c.run)
        .order_by(targets.c.name)
    )
    return [
        TargetFacts(int(r[0]), str(r[1]), dict(r[2] or {}), r[3], r[4] is not None, r[5], r[6], r[7])
        for r in await conn.execute(query)
    ]


async def breaker_trips(conn: AsyncConnection, since: datetime) -> list[tuple[str, str, datetime, str | None]]:
    """Breaker findings opened since ``since``: (target, status, first seen, detail)."""
    query = (
        sa.select(targets.c.name, _f.status, _f.first_seen, _f.detail)
        .join(targets, targets.c.id == _f.target_id)
        .where(_f.kind == "breaker_open", _f.first_seen >= since)
        .order_by(_f.first_seen.desc())
    )
    return [(str(r[0]), str(r[1]), r[2], r[3]) for r in await conn.execute(query)]


async def change_counts(conn: AsyncConnection, since: datetime) -> dict[str, int]:
    """Changes since ``since`` by status (applied, pending, denied, ...)."""
    query = sa.select(changes.c.status, sa.func.count()).where(changes.c.created >= since).group_by(changes.c.status)
    return {str(r[0]): int(r[1]) for r in await conn.execute(query)}


# -- the daily snapshots -----------------------------------------------------------------------------


async def save_snapshot(conn: AsyncConnection, day: date, taken: datetime, figures: Mapping[str, Any]) -> None:
    """Keep the day's figures: a later snapshot the same day replaces the earlier one."""
    values = {"day": day, "taken": taken, "figures": dict(figures)}
    if conn.dialect.name == "postgresql":
        insert: Any = postgresql.insert(evidence_snapshots).values(values)
    else:
        insert = sqlite.insert(evidence_snapshots).values(values)
    await conn.execute(
        insert.on_conflict_do_update(
            index_elements=[_s.day], set_={"taken": insert.excluded.taken, "figures": insert.excluded.figures}
        )
    )


async def snapshots(conn: AsyncConnection, since: date | None = None) -> list[tuple[date, dict[str, Any]]]:
    query = sa.select(_s.day, _s.figures).order_by(_s.day)
    if since is not None:
        query = query.where(_s.day >= since)
    return [
        (r[0] if isinstance(r[0], date) else date.fromisoformat(str(r[0])), dict(r[1]))
        for r in await conn.execute(query)
    ]
