"""SQLite group commit (``store._group_commit``): shared COMMITs that keep each writer atomic and durable."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from scimward.store._group_commit import MAX_BATCH, GroupCommit

pytestmark = pytest.mark.anyio


@pytest.fixture
def db_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "g.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE item (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, "
        "parent INTEGER REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)"
    )
    conn.execute("INSERT INTO parent VALUES (1)")
    conn.close()
    yield path


class Recorder:
    """A GroupCommit on one connection, counting the COMMITs it runs."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.commits = 0
        self.conn.set_trace_callback(self._trace)
        self.lock = asyncio.Lock()
        self.group = GroupCommit(lambda: self.conn, self.lock)

    def _trace(self, sql: str) -> None:
        self.commits += sql == "COMMIT"

    async def insert(self, name: str, parent: int = 1, pause: float | None = None) -> None:
        async with self.group.transaction() as cursor:
            cursor.execute("INSERT INTO item (name, parent) VALUES (?, ?)", (name, parent))
            if pause is not None:
                await asyncio.sleep(pause)
            cursor.execute("UPDATE item SET name = name || '!' WHERE name = ?", (name,))


def names(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return sorted(row[0] for row in conn.execute("SELECT name FROM item"))
    finally:
        conn.close()


async def test_writers_arriving_together_share_one_commit(db_path: Path) -> None:
    rec = Recorder(db_path)
    await asyncio.gather(*(rec.insert(f"u{i}") for i in range(8)))
    assert rec.commits == 1
    assert names(db_path) == sorted(f"u{i}!" for i in range(8))
    assert not rec.lock.locked()


async def test_a_failing_writer_rolls_back_alone(db_path: Path) -> None:
    rec = Recorder(db_path)
    await rec.insert("taken")
    results = await asyncio.gather(rec.insert("a"), rec.insert("taken!"), rec.insert("b"), return_exceptions=True)
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], sqlite3.IntegrityError)
    # The failed writer's first statement went in and was rolled back to its savepoint; the others stay.
    assert names(db_path) == ["a!", "b!", "taken!"]


async def test_no_writer_returns_before_its_commit_is_durable(db_path: Path) -> None:
    rec = Recorder(db_path)
    seen: list[list[str]] = []

    async def insert_and_look(name: str) -> None:
        await rec.insert(name)
        seen.append(names(db_path))  # another connection: sees only what is committed

    await asyncio.gather(*(insert_and_look(f"u{i}") for i in range(4)))
    assert all(len(found) == 4 for found in seen)


async def test_a_failing_commit_fails_every_writer_of_the_batch(db_path: Path) -> None:
    rec = Recorder(db_path)
    # A deferred foreign key is checked at COMMIT: writer 2 names a parent that does not exist.
    results = await asyncio.gather(rec.insert("a"), rec.insert("b", parent=99), rec.insert("c"), return_exceptions=True)
    assert all(isinstance(r, sqlite3.IntegrityError) for r in results)
    assert names(db_path) == []
    assert not rec.conn.in_transaction and not rec.lock.locked()
    await rec.insert("after")  # the store goes on
    assert names(db_path) == ["after!"]


async def test_the_commit_waits_for_a_writer_inside_its_block(db_path: Path) -> None:
    rec = Recorder(db_path)
    slow = asyncio.create_task(rec.insert("slow", pause=0.05))
    await asyncio.sleep(0)  # the slow writer is in its block, awaiting
    fast = [asyncio.create_task(rec.insert(f"f{i}")) for i in range(3)]
    await asyncio.gather(slow, *fast)
    assert names(db_path) == ["f0!", "f1!", "f2!", "slow!"]
    assert not rec.conn.in_transaction and not rec.lock.locked()


async def test_a_cancelled_writer_leaves_nothing_and_the_others_commit(db_path: Path) -> None:
    rec = Recorder(db_path)
    slow = asyncio.create_task(rec.insert("slow", pause=10))
    other = asyncio.create_task(rec.insert("other"))
    await asyncio.sleep(0.01)
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    await other
    assert names(db_path) == ["other!"]


async def test_batches_are_bounded(db_path: Path) -> None:
    rec = Recorder(db_path)
    await asyncio.gather(*(rec.insert(f"u{i}") for i in range(MAX_BATCH * 2 + 1)))
    assert rec.commits == 3
    assert len(names(db_path)) == MAX_BATCH * 2 + 1


async def test_sqlalchemy_path_writers_wait_for_the_batch(db_path: Path) -> None:
    """The database's write lock is held from BEGIN to COMMIT: another holder of it waits for the COMMIT."""
    rec = Recorder(db_path)
    seen: list[list[str]] = []

    async def other_path() -> None:
        async with rec.lock:
            seen.append(names(db_path))

    await asyncio.gather(rec.insert("g"), other_path())
    assert seen == [["g!"]]
