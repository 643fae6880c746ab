"""Reading the audit trail back: the chain check over the whole trail, the export, the head.

The check reads every lane's head and then every event in one snapshot (a ``REPEATABLE READ``
transaction on PostgreSQL, one read transaction on SQLite), so events appended meanwhile are neither
seen nor taken for inserted ones. It reads lane by lane in pages on the primary key, so a trail of
millions of events is walked in bounded memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store.database import Database
from scimward.store.governance import audit
from scimward.store.tables import audit_events

PAGE = 20_000
_e = audit_events.c
_COLUMNS = (_e.lane, _e.seq, _e.time, _e.kind, _e.actor, _e.subject, _e.data, _e.prev_hash, _e.hash)
_LANE_PAGE = (sa.select(*_COLUMNS).where(_e.lane == sa.bindparam("lane"), _e.seq > sa.bindparam("after"))
              .order_by(_e.seq).limit(sa.bindparam("page")))
_LANES_PRESENT = sa.select(_e.lane).distinct().order_by(_e.lane)


@dataclass(frozen=True)
class TrailStatus:
    """What ``scimward audit verify`` reports: how many events, the head, and the first break."""

    events: int
    head: str
    broken: audit.Break | None

    def to_json(self) -> dict[str, Any]:
        broken = self.broken
        return {"events": self.events, "head": self.head, "intact": broken is None,
                "broken": None if broken is None else {"lane": broken.lane, "seq": broken.seq,
                                                       "problem": broken.problem, "message": str(broken)}}


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
    """Walk the whole chain; the first altered, removed or inserted event, if any."""
    async with _snapshot(database) as conn:
        lanes_heads = await heads(conn)
        check = audit.ChainCheck(lanes_heads)
        lanes = sorted({int(r[0]) for r in await conn.execute(_LANES_PRESENT)} | set(lanes_heads))
        for lane in lanes:
            after = 0
            while True:
                rows = list(await conn.execute(_LANE_PAGE, {"lane": lane, "after": after, "page": PAGE}))
                if not rows:
                    break
                for event in audit.stored_events(rows):
                    if (problem := check.step(event)) is not None:
                        return TrailStatus(check.events, audit.head_digest(lanes_heads), problem)
                after = int(rows[-1][1])
                if progress is not None:
                    progress(len(rows))
                if len(rows) < PAGE:
                    break
        return TrailStatus(check.events, audit.head_digest(lanes_heads), check.end())


async def export_trail(database: Database, since: datetime | None = None,
                 until: datetime | None = None) -> AsyncIterator[audit.StoredEvent]:
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
                query = query.where(sa.tuple_(_e.time, _e.lane, _e.seq) > sa.tuple_(
                    sa.literal(after[0], sa.DateTime()), sa.literal(after[1]), sa.literal(after[2])))
            rows = list(await conn.execute(query))
            events = list(audit.stored_events(rows))
            for event in events:
                yield event
            if len(rows) < PAGE:
                return
            last = events[-1]
            after = (last.time, last.lane, last.seq)
