"""Reading the audit trail back: the chain check over the whole trail, the export, the head.

The check reads every lane's head and then every event in one snapshot (a ``REPEATABLE READ``
transaction on PostgreSQL, one read transaction on SQLite), so events appended meanwhile are neither
seen nor taken for inserted ones. It reads lane by lane in pages on the primary key, so a trail of
millions of events is walked in bounded memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store.database import Database, create_sync_engine
from scimward.store.governance import audit
from scimward.store.tables import audit_events

PAGE = 20_000
_e = audit_events.c
_COLUMNS = (_e.lane, _e.seq, _e.time, _e.kind, _e.actor, _e.subject, _e.data, _e.prev_hash, _e.hash)
_IN_LANE = (_e.lane == sa.bindparam("lane"), _e.seq > sa.bindparam("after"), _e.seq <= sa.bindparam("upto"))
#: Rows as ``audit.hashed_here`` reads them; on SQLite the time as the text it keeps (``audit.stamp_of_stored``).
_PAGE = (
    sa.select(_e.seq, _e.prev_hash, _e.hash, _e.time, _e.kind, _e.actor, _e.subject, _e.data)
    .where(*_IN_LANE)
    .order_by(_e.seq)
)
_PAGE_SQLITE = (
    sa.select(_e.seq, _e.prev_hash, _e.hash, sa.type_coerce(_e.time, sa.Text), _e.kind, _e.actor, _e.subject, _e.data)
    .where(*_IN_LANE)
    .order_by(_e.seq)
)
_LANES_PRESENT = sa.select(_e.lane).distinct().order_by(_e.lane)
_LAST_IN_LANE = sa.select(sa.func.max(_e.seq)).where(_e.lane == sa.bindparam("lane"))


@dataclass(frozen=True)
class TrailStatus:
    """What ``scimward audit verify`` reports: how many events, the head, and the first break."""

    events: int
    head: str
    broken: audit.Break | None

    def to_json(self) -> dict[str, Any]:
        broken = self.broken
        return {
            "events": self.events,
            "head": self.head,
            "intact": broken is None,
            "broken": None
            if broken is None
            else {"lane": broken.lane, "seq": broken.seq, "problem": broken.problem, "message": str(broken)},
        }


@asynccontextmanager
async def _snapshot(database: Database) -> AsyncIterator[AsyncConnection]:
    """One consistent view of the trail for several statements."""
    async with database.engine.connect() as conn:
        if database.dialect == "postgresql":
            conn = await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            yield conn


async def heads(conn: AsyncConnection) -> dict[int, tuple[int, str]]:
    return {int(r[0]): (int(r[1]), str(r[2])) for r in await conn.execute(audit.SELECT_HEADS)}


async def trail_head(database: Database) -> str:
    """The digest of every lane's head (``store.governance.audit.head_digest``): keep it elsewhere to pin the trail."""
    async with database.read() as conn:
        return audit.head_digest(await heads(conn))


async def verify_trail(database: Database, progress: Callable[[int], None] | None = None) -> TrailStatus:
    """Walk the whole chain; the first altered, removed or inserted event, if any.

    The walk runs in a thread on a synchronous connection: a million rows through the asynchronous
    driver cost twice as much, and on SQLite the time is hashed from its stored text, unparsed.
    """
    return await asyncio.to_thread(_verify, database.url, progress)


def _verify(url: str, progress: Callable[[int], None] | None) -> TrailStatus:
    engine = create_sync_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        with engine.connect() as conn:
            if not sqlite:
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                if sqlite:  # the driver begins no transaction for reads: one read snapshot, explicitly
                    conn.exec_driver_sql("BEGIN")
                lanes_heads = {int(r[0]): (int(r[1]), str(r[2])) for r in conn.execute(audit.SELECT_HEADS)}
                check = audit.ChainCheck(lanes_heads)
                lanes = sorted({int(r[0]) for r in conn.execute(_LANES_PRESENT)} | set(lanes_heads))
                problem = _walk(conn, lanes, check, sqlite, progress)
                return TrailStatus(check.events, audit.head_digest(lanes_heads), problem or check.end())
    finally:
        engine.dispose()


def _walk(
    conn: sa.Connection,
    lanes: Sequence[int],
    check: audit.ChainCheck,
    sqlite: bool,
    progress: Callable[[int], None] | None,
) -> audit.Break | None:
    """Every lane, a window of sequence numbers at a time: the same window in each lane, then the next.

    A lane's events are spread through the table among the other lanes' (transactions take the lanes
    in turn, ``audit.next_lane``), so walking one lane to its end and then the next would read every
    page of the table once per lane; the events of one window of every lane lie close together, and are read together.
    """
    ends = {lane: int(conn.execute(_LAST_IN_LANE, {"lane": lane}).scalar() or 0) for lane in lanes}
    window = max(1, PAGE // max(1, sum(1 for end in ends.values() if end)))
    stamped = audit.stamp_of_stored if sqlite else audit.stamp
    checks = {lane: audit.hashed_here(lane, stamped) for lane in lanes}
    page = _PAGE_SQLITE if sqlite else _PAGE
    after, last = 0, max(ends.values(), default=0)
    while after < last:
        upto = after + window
        for lane in lanes:
            if ends[lane] <= after:
                continue
            result = conn.execute(page, {"lane": lane, "after": after, "upto": upto})
            rows = result.cursor.fetchall()  # the driver's tuples, as they come: no row objects
            result.close()
            if (problem := check.follow(lane, rows, checks[lane])) is not None:
                return problem
            if progress is not None:
                progress(len(rows))
        after = upto
    return None


async def export_trail(
    database: Database, since: datetime | None = None, until: datetime | None = None
) -> AsyncIterator[audit.StoredEvent]:
    """Events with ``since <= time < until``, oldest first, streamed (one snapshot, read in pages)."""
    async with _snapshot(database) as conn:
        after: tuple[datetime, int, int] | None = None
        while True:
            query = sa.select(*_COLUMNS).order_by(_e.time, _e.lane, _e.seq).limit(PAGE)
            if since is not None:
                query = query.where(_e.time >= since)
            if until is not None:
                query = query.where(_e.time < until)
            if after is not None:
                query = query.where(
                    sa.tuple_(_e.time, _e.lane, _e.seq)
                    > sa.tuple_(sa.literal(after[0], sa.DateTime()), sa.literal(after[1]), sa.literal(after[2]))
                )
            rows = list(await conn.execute(query))
            events = list(audit.stored_events(rows))
            for event in events:
                yield event
            if len(rows) < PAGE:
                return
            last = events[-1]
            after = (last.time, last.lane, last.seq)
