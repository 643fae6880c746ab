"""Group commit on SQLite: write transactions that arrive together share one COMMIT.

A SQLite commit writes every page its transaction dirtied to the WAL: about ten 4 KiB pages for one
identity (its row, its index entries, its e-mails). Measured on a 20,000-user database, the COMMIT is
85 % of a one-user DELETE (88 of 104 µs), and eight deletes under one COMMIT cost 44 µs each instead of
128 (docs/benchmarks.md, "What made SQLite writes faster: group commit").

So the writers of this process that arrive together (an identity provider sends several requests at
once) run one after another inside one ``BEGIN IMMEDIATE`` … ``COMMIT``:

* each writer's statements run in its own ``SAVEPOINT``, so each is atomic on its own: a writer that
  fails is rolled back to its savepoint and the others' work stays;
* no writer returns before the shared ``COMMIT``: each awaits it, so nothing is acknowledged before it is
  durable, and if the ``COMMIT`` fails, every writer of the batch fails;
* the batch commits on the event loop's next turn after it opened, so it holds what arrived together and
  makes no writer wait for one that has not arrived;
* writers take turns: if one awaits something real inside its block, the others wait for their turn
  and the COMMIT waits for it to finish (a COMMIT never lands in the middle of a writer's block);
* work the writers hand to the batch (``Deferred``: the audit events, ``store.governance.audit``) is
  done once for all of them just before the ``COMMIT``, in the same transaction; a writer rolled back
  to its savepoint takes back what it handed over.

The database's write lock (``Database.sqlite_write_lock``, shared with the SQLAlchemy write path) is held
from ``BEGIN IMMEDIATE`` to ``COMMIT``. While another process (a command, a second hub) holds SQLite's
own write lock, ``BEGIN IMMEDIATE`` waits in a worker thread, not on the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Protocol

from scimward.store.database import BUSY_TIMEOUT_MS

#: Writers in one batch at most: bounds how long the first of them waits for the COMMIT.
MAX_BATCH = 64


class Deferred(Protocol):
    """Work that a batch's writers add to, done once just before its COMMIT (``GroupCommit.defer``)."""

    def mark(self) -> int:
        """A point to roll back to: taken when a writer's savepoint opens."""
        ...

    def rollback_to(self, mark: int) -> None:
        """Forget what was added after ``mark`` (the writer that added it was rolled back)."""
        ...

    def flush(self, cursor: sqlite3.Cursor) -> None:
        """Write it, inside the batch's transaction; an error fails the whole batch, as a failed COMMIT does."""
        ...


class _Batch:
    """One open ``BEGIN IMMEDIATE`` transaction and the writers in it."""

    __slots__ = ("closing", "deferred", "finished", "open", "waiting", "writers")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.open = 0  # writers that joined and have not finished their block
        self.writers = 0
        self.closing = False  # the COMMIT is due: no one joins any more
        self.waiting: list[asyncio.Future[None]] = []
        self.finished = loop.create_future()
        self.deferred: dict[str, Deferred] = {}


class GroupCommit:
    """Runs SQLite write blocks in shared transactions on one connection (see the module's text)."""

    def __init__(self, connection: Callable[[], sqlite3.Connection], lock: asyncio.Lock) -> None:
        self._connection = connection
        self._lock = lock
        self._turn = asyncio.Lock()
        self._batch: _Batch | None = None
        self._nonblocking = False  # the connection's busy_timeout is 0 but in ``_begin_waiting``

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[sqlite3.Cursor]:
        """A cursor inside a savepoint of the shared transaction; returns after the COMMIT."""
        batch = await self._join()
        loop = asyncio.get_running_loop()
        committed: asyncio.Future[None] = loop.create_future()
        batch.waiting.append(committed)
        try:
            async with self._turn:
                cursor = self._connection().cursor()
                cursor.execute("SAVEPOINT writer")
                marks = {key: work.mark() for key, work in batch.deferred.items()}
                try:
                    yield cursor
                except BaseException:
                    cursor.execute("ROLLBACK TO writer")
                    cursor.execute("RELEASE writer")
                    for key in list(batch.deferred):
                        if key in marks:
                            batch.deferred[key].rollback_to(marks[key])
                        else:  # handed over by this writer alone
                            del batch.deferred[key]
                    raise
                cursor.execute("RELEASE writer")
        except BaseException:
            committed.cancel()  # this writer's outcome is its exception; the batch goes on
            raise
        finally:
            batch.open -= 1
            if batch.closing and batch.open == 0:
                self._commit(batch)
        await committed

    def deferred(self, key: str) -> Deferred | None:
        """The work under ``key`` of the batch whose writer is in its block now (one at a time), if any."""
        assert self._batch is not None, "only inside a writer's block"
        return self._batch.deferred.get(key)

    def defer(self, key: str, work: Deferred) -> None:
        """Hand ``work`` to the current batch, done just before its COMMIT (see ``Deferred``)."""
        assert self._batch is not None, "only inside a writer's block"
        self._batch.deferred[key] = work

    async def _join(self) -> _Batch:
        while True:
            batch = self._batch
            if batch is not None and not batch.closing:
                break
            if batch is not None:  # its COMMIT waits for a writer still in its block
                await asyncio.shield(batch.finished)
                continue
            # Free unless a writer on the SQLAlchemy path (``Database.write``) or another store's batch
            # holds it; once it is ours no batch of this store is open (a batch holds it to its COMMIT).
            await self._lock.acquire()
            try:
                await self._begin()
            except BaseException:
                self._lock.release()
                raise
            loop = asyncio.get_running_loop()
            batch = self._batch = _Batch(loop)
            loop.call_soon(self._close, batch)
            break
        batch.open += 1
        batch.writers += 1
        if batch.writers >= MAX_BATCH:
            batch.closing = True
        return batch

    async def _begin(self) -> None:
        """``BEGIN IMMEDIATE``; while another process holds SQLite's write lock, waited for in a worker
        thread (``busy_timeout``), so that the event loop goes on serving every other request."""
        conn = self._connection()
        if not self._nonblocking:
            conn.execute("PRAGMA busy_timeout=0")
            self._nonblocking = True
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
        await asyncio.to_thread(_begin_waiting, conn)

    def _close(self, batch: _Batch) -> None:
        """The loop's next turn: no more writers join; commit now unless one is still in its block."""
        batch.closing = True
        if batch.open == 0:
            self._commit(batch)

    def _commit(self, batch: _Batch) -> None:
        if batch.finished.done():
            return
        error: BaseException | None = None
        try:
            if batch.deferred:
                cursor = self._connection().cursor()
                for work in batch.deferred.values():
                    work.flush(cursor)
            self._connection().execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001 - handed to every writer of the batch
            error = exc
            conn = self._connection()
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            self._batch = None
            self._lock.release()
            batch.finished.set_result(None)
        for waiter in batch.waiting:
            if not waiter.done():
                if error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)


def _begin_waiting(conn: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock as long as the database's ``busy_timeout``."""
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    try:
        conn.execute("BEGIN IMMEDIATE")
    finally:
        conn.execute("PRAGMA busy_timeout=0")
