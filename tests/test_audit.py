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
