"""The audit trail's hash chain (issue 16, item 5): appended in the caller's transaction, on both
transaction kinds and both dialects; editing, deleting or inserting any row is found and named."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from scimward.store._direct import Direct
from scimward.store.database import Database
from scimward.store.governance import audit, audit_trail
from scimward.store.tables import audit_events

pytestmark = pytest.mark.anyio


async def _verify(db: Database) -> audit.Verdict:
    async with db.read() as conn:
        events = list(audit.stored_events(await conn.execute(audit.SELECT_EVENTS)))
        heads = {int(r[0]): (int(r[1]), str(r[2])) for r in await conn.execute(audit.SELECT_HEADS)}
    return audit.verify_chain(events, heads)


async def _trail(hub_url: str) -> tuple[Database, list[audit.Appended]]:
    db = Database(hub_url)
    appended = []
    for n in range(6):
        async with db.write() as conn:
            appended.append(
                await audit.append(
                    conn, kind="config", actor="alice", subject=f"target-{n}", data={"n": n, "text": "ünïcode\nline"}
                )
            )
        async with Direct(db).transaction() as tx:
            appended.append(await audit.append(tx, kind="change", actor="okta", subject=f"user-{n}", data={"n": n}))
    return db, appended


async def test_an_untouched_trail_verifies(hub_url: str) -> None:
    db, appended = await _trail(hub_url)
    verdict = await _verify(db)
    assert verdict.broken is None and verdict.events == len(appended) == 12
    await db.dispose()


async def test_an_altered_event_is_named(hub_url: str) -> None:
    db, appended = await _trail(hub_url)
    victim = appended[5]
    async with db.write() as conn:
        await conn.execute(
            audit_events.update()
            .where(audit_events.c.lane == victim.lane, audit_events.c.seq == victim.seq)
            .values(actor="mallory")
        )
    broken = (await _verify(db)).broken
    assert broken is not None and (broken.lane, broken.seq) == (victim.lane, victim.seq)
    assert "altered" in str(broken)
    await db.dispose()


async def test_a_removed_event_is_named(hub_url: str) -> None:
    db, appended = await _trail(hub_url)
    victim = appended[3]
    async with db.write() as conn:
        await conn.execute(
            audit_events.delete().where(audit_events.c.lane == victim.lane, audit_events.c.seq == victim.seq)
        )
    broken = (await _verify(db)).broken
    assert broken is not None and (broken.lane, broken.seq) == (victim.lane, victim.seq)
    assert "removed" in str(broken)
    await db.dispose()


async def test_an_inserted_event_is_named(hub_url: str) -> None:
    db, appended = await _trail(hub_url)
    last = max(appended, key=lambda a: (a.lane, a.seq))
    async with db.write() as conn:
        row = (
            await conn.execute(
                sa.select(audit_events).where(audit_events.c.lane == last.lane, audit_events.c.seq == last.seq)
            )
        ).one()
        await conn.execute(
            audit_events.insert().values(
                {**row._mapping, "seq": last.seq + 1, "prev_hash": last.hash, "subject": "forged"}
            )
        )
    broken = (await _verify(db)).broken
    assert broken is not None and (broken.lane, broken.seq) == (last.lane, last.seq + 1)
    assert "inserted" in str(broken)
    await db.dispose()


async def test_the_paged_walk_names_a_break_in_a_later_window(hub_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``audit verify`` reads a window of sequence numbers in every lane at a time: with windows of one
    event, each lane is left and taken up again between its events, and a break deep in a lane is
    still named, as the one-pass check names it."""
    db, appended = await _trail(hub_url)
    monkeypatch.setattr(audit_trail, "PAGE", 1)
    assert (await audit_trail.verify_trail(db)).broken is None
    victim = max(appended, key=lambda a: a.seq)
    async with db.write() as conn:
        await conn.execute(
            audit_events.update()
            .where(audit_events.c.lane == victim.lane, audit_events.c.seq == victim.seq)
            .values(data='{"n": 99}')
        )
    status = await audit_trail.verify_trail(db)
    assert status.broken == (await _verify(db)).broken
    assert status.broken is not None and (status.broken.lane, status.broken.seq) == (victim.lane, victim.seq)
    await db.dispose()


class _Refused(Exception):
    """What the writer in the middle of the batch fails with, after appending its event."""


async def test_writers_sharing_a_commit_chain_their_events_and_one_rolled_back_takes_its_own_back(
    hub_url: str,
) -> None:
    """On SQLite writers that arrive together share one COMMIT (``store._group_commit``), and their events
    are chained in process and written just before it. A writer rolled back after appending leaves no
    event and no gap: the next writer's event follows the one before it, as it would on its own."""
    import asyncio

    db = Database(hub_url)
    direct = Direct(db)

    async def write(n: int) -> audit.Appended:
        async with direct.transaction() as tx:
            appended = await audit.append(tx, kind="change", actor="okta", subject=f"user-{n}", data={"n": n})
            if n % 3 == 0:  # the first writer of the batch too, which handed the batch its events
                raise _Refused(n)
            return appended

    outcomes = await asyncio.gather(*(write(n) for n in range(9)), return_exceptions=True)
    kept = [o for o in outcomes if isinstance(o, audit.Appended)]
    assert [type(o) for o in outcomes].count(_Refused) == 3 and len(kept) == 6
    async with db.read() as conn:
        stored = list(audit.stored_events(await conn.execute(audit.SELECT_EVENTS)))
    assert sorted(e.subject for e in stored) == [f"user-{n}" for n in range(9) if n % 3 != 0]
    assert sorted((e.lane, e.seq, e.hash) for e in stored) == sorted((a.lane, a.seq, a.hash) for a in kept)
    verdict = await _verify(db)
    assert verdict.broken is None and verdict.events == 6
    assert (await audit_trail.verify_trail(db)).broken is None
    await db.dispose()
