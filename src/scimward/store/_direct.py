"""Statements on the database driver: the hot reads and the identity writes.

Statements are built once with SQLAlchemy (``store.identity.reads``, ``store.identity.writes``), compiled to SQL text
once per dialect, and run on the driver connection, skipping SQLAlchemy's per-execution work,
which costs more than the database's own. On PostgreSQL they use a psycopg pool of autocommit
connections with server-side prepared statements, compiled to PostgreSQL's own placeholders (``$1``)
and sent as they are (psycopg's raw cursors, ``_raw_dialect``); a write is one explicit transaction. On SQLite
writes that arrive together share one ``BEGIN IMMEDIATE`` … ``COMMIT`` (``store._group_commit``).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.engine.default import DefaultDialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement as Executable

from scimward.store._group_commit import Deferred, GroupCommit
from scimward.store.database import (
    CONNECT_TIMEOUT_SECONDS,
    Database,
    sqlite_pragmas,
    sync_url,
)
from scimward.store.failures import integrity_error, integrity_errors

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

Row = Sequence[Any]
Params = dict[str, Any]


@functools.cache
def _compiled_static(statement: Executable, dialect: Dialect) -> tuple[str, tuple[str, ...], Params]:
    return _compile(statement, dialect)


def _compile(statement: Executable, dialect: Dialect) -> tuple[str, tuple[str, ...], Params]:
    """SQL text, its parameter names in the driver's order, and the values of its literals."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    assert isinstance(compiled, SQLCompiler)
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.params)
    # A literal's value in the driver's form, as SQLAlchemy would bind it (a filter's datetime is text in
    # SQLAlchemy's format on SQLite, a JSON path an array on PostgreSQL); parameters are already in it.
    literals = dict(compiled.params)
    for name, processor in compiled._bind_processors.items():
        if callable(processor) and literals.get(name) is not None:
            literals[name] = processor(literals[name])
    return str(compiled), names, literals


def _raw_dialect(dialect: Dialect) -> Dialect:
    """PostgreSQL: the dialect that compiles statements to ``$1, $2, ...``, for psycopg's raw cursors.

    psycopg's ordinary cursor converts a ``%(name)s`` query to that form on every execution, from a
    cache that skips statements over 4,096 characters or 50 parameters: the fused writes with their
    audit event (``store.identity._fused``) are over both, and had their SQL text re-parsed by a regex
    each time, which cost the write more than building its audit event. A raw cursor converts nothing.
    """
    assert isinstance(dialect, DefaultDialect)
    return type(dialect)(paramstyle="numeric_dollar")


class Encoder(Protocol):
    """What turns values into driver parameters: ``Direct`` or a ``Tx`` of it."""

    def json(self, value: Any) -> Any: ...

    def time(self, value: datetime) -> Any: ...


def decode_json(value: Any) -> Any:
    """SQLite hands JSON back as text; psycopg has already decoded it."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def decode_time(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class _SyncCursor:
    """A sqlite3 cursor behind the awaitable interface ``Tx`` uses for psycopg's."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    async def execute(self, sql: str, params: Any = ()) -> None:
        self._cursor.execute(sql, params)

    async def executemany(self, sql: str, params: Any) -> None:
        self._cursor.executemany(sql, params)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()


class _ThreadCursor(_SyncCursor):
    """A sqlite3 cursor whose statements run in a worker thread: for a statement whose cost grows with
    the data (a filter no index answers), so that it cannot hold up the event loop."""

    async def execute(self, sql: str, params: Any = ()) -> None:
        await asyncio.to_thread(self._cursor.execute, sql, params)

    async def executemany(self, sql: str, params: Any) -> None:
        await asyncio.to_thread(self._cursor.executemany, sql, params)

    async def fetchall(self) -> list[Any]:
        return await asyncio.to_thread(self._cursor.fetchall)


class Tx:
    """One transaction on the driver."""

    def __init__(self, direct: Direct, cursor: Any, grouped: GroupCommit | None = None) -> None:
        self._direct = direct
        self._cursor = cursor
        self._grouped = grouped

    @property
    def postgres(self) -> bool:
        """Whether this transaction is on PostgreSQL (else SQLite): for statements built per dialect."""
        return self._direct.postgres

    async def run(
        self, statement: Executable, params: Params | Sequence[Params] | None = None, *, dynamic: bool = False
    ) -> None:
        """Execute (many, when ``params`` is a list). ``dynamic`` statements are not cached."""
        sql, names, literals = (_compile if dynamic else _compiled_static)(statement, self._direct.dialect)
        if isinstance(params, list):
            if params:
                await self._cursor.executemany(sql, [self._direct.bind(names, literals, p) for p in params])
            return
        single: Params = params if isinstance(params, dict) else {}
        await self._cursor.execute(sql, self._direct.bind(names, literals, single))

    async def rows(self, statement: Executable, params: Params | None = None, *, dynamic: bool = False) -> list[Row]:
        sql, names, literals = (_compile if dynamic else _compiled_static)(statement, self._direct.dialect)
        await self._cursor.execute(sql, self._direct.bind(names, literals, params or {}))
        return list(await self._cursor.fetchall())

    def json(self, value: Any) -> Any:
        return self._direct.json(value)

    def time(self, value: datetime) -> Any:
        return self._direct.time(value)

    def ids(self, values: Sequence[str]) -> Any:
        return self._direct.ids(values)

    # -- work deferred to a group commit (SQLite) --------------------------------------------------

    @property
    def grouped(self) -> bool:
        """Whether this is a writer of a SQLite group commit, which may hand work to its COMMIT (``defer``)."""
        return self._grouped is not None

    def deferred(self, key: str) -> Deferred | None:
        """The work handed to this transaction's group commit under ``key`` so far, if any."""
        assert self._grouped is not None
        return self._grouped.deferred(key)

    def defer(self, key: str, work: Deferred) -> None:
        """Hand ``work`` to the group commit: done once, for all its writers, just before the COMMIT
        (``store._group_commit.Deferred``); taken back if this writer is rolled back."""
        assert self._grouped is not None
        self._grouped.defer(key, work)

    def compiled(self, statement: Executable) -> tuple[str, Callable[[Params], Any]]:
        """A fixed statement's SQL text and what binds its parameters, for work done outside ``run``."""
        sql, names, literals = _compiled_static(statement, self._direct.dialect)
        return sql, functools.partial(self._direct.bind, names, literals)


class Direct:
    """Fixed-shape statements on the raw driver: one round trip each, no ORM-level processing."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self.postgres = database.dialect == "postgresql"
        #: What statements are compiled for: on PostgreSQL in the raw cursors' form (``_raw_dialect``).
        self.dialect = _raw_dialect(database.engine.dialect) if self.postgres else database.engine.dialect
        self.positional = bool(self.dialect.positional)
        self._pool: AsyncConnectionPool[Any] | None = None
        self._sqlite_connections: dict[str, sqlite3.Connection] = {}
        self._sqlite_snapshots: list[sqlite3.Connection] = []  # idle connections for ``snapshot``
        self._grouped: GroupCommit | None = None
        self._registered = False  # whether ``close`` runs when the database is disposed

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        for conn in [*self._sqlite_connections.values(), *self._sqlite_snapshots]:
            conn.close()
        self._sqlite_connections.clear()
        self._sqlite_snapshots.clear()

    # -- parameters -----------------------------------------------------------------------------

    def bind(self, names: tuple[str, ...], literals: Params, params: Params) -> Any:
        # Called for each row of an ``executemany``: no merged copy when the statement has no literals.
        values = {**literals, **params} if literals else params
        return tuple([values[n] for n in names]) if self.positional else values

    def json(self, value: Any) -> Any:
        # JSON text on both dialects. PostgreSQL's statements cast each JSON parameter (``::JSONB``, as
        # SQLAlchemy compiles a JSON-typed one); psycopg's ``Jsonb`` called back into Python for each
        # value, which cost an HR backfill's change rows twice what the text does (docs/benchmarks.md).
        return _dumps(value)

    def time(self, value: datetime) -> Any:
        # SQLAlchemy's DateTime format on SQLite, several times faster than ``strftime``.
        return value if self.postgres else value.isoformat(" ", "microseconds")

    def ids(self, values: Sequence[str]) -> Any:
        """A list of ids as one parameter (``store.identity.writes.id_in``): an array, or JSON for SQLite."""
        return list(values) if self.postgres else _dumps(list(values))

    # -- reads ----------------------------------------------------------------------------------

    async def fetch(self, statement: Executable, params: Params) -> list[Row]:
        """One statement in autocommit: a read, or a write that is atomic on its own (``store.identity._fused``)."""
        sql, names, literals = _compiled_static(statement, self.dialect)
        bound = self.bind(names, literals, params)
        if self.postgres:
            async with (await self._postgres_pool()).connection() as conn:
                try:
                    cursor = await conn.execute(sql, bound, prepare=True)
                except integrity_errors() as exc:
                    raise integrity_error(exc) from exc
                return list(await cursor.fetchall())
        return self._sqlite("read").execute(sql, bound).fetchall()

    @asynccontextmanager
    async def snapshot(self, *, threaded: bool = False) -> AsyncIterator[Tx]:
        """Reads that all see one state of the database: a list's total, the rows of its page and the
        position anchors it starts from agree even while other processes write.

        A read-only ``REPEATABLE READ`` transaction on PostgreSQL; on SQLite a deferred transaction
        on a connection of the block's own (WAL: its snapshot is taken at its first read), so no
        other request's read lands in it. ``threaded`` (SQLite): its statements run in a worker
        thread, for statements whose cost grows with the data; PostgreSQL's run in the server.
        """
        if self.postgres:
            async with (await self._postgres_pool()).connection() as conn:
                # One round trip each way, where ``conn.transaction()`` and a SET TRANSACTION take three.
                await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                try:
                    yield Tx(self, conn.cursor())
                finally:
                    await conn.execute("COMMIT")
            return
        conn = self._sqlite_snapshots.pop() if self._sqlite_snapshots else self._sqlite_connection()
        conn.execute("BEGIN")
        try:
            cursor = conn.cursor()
            yield Tx(self, _ThreadCursor(cursor) if threaded else _SyncCursor(cursor))
        finally:
            try:
                conn.execute("COMMIT")
            except BaseException:
                conn.close()  # e.g. a cancelled thread's statement still running on it: not reused
                raise
            self._sqlite_snapshots.append(conn)

    # -- writes ---------------------------------------------------------------------------------

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """A write transaction: committed when the block ends, rolled back on any error."""
        try:
            if self.postgres:
                # Pipeline mode was measured slower here (docs/benchmarks.md): one statement per trip.
                async with (await self._postgres_pool()).connection() as conn, conn.transaction():
                    yield Tx(self, conn.cursor())
                return
            grouped = self._group_commit()
            async with grouped.transaction() as cursor:
                yield Tx(self, _SyncCursor(cursor), grouped)
        except integrity_errors() as exc:
            raise integrity_error(exc) from exc

    def _group_commit(self) -> GroupCommit:
        if self._grouped is None:
            self._grouped = GroupCommit(lambda: self._sqlite("write"), self.db.sqlite_write_lock)
        return self._grouped

    def _sqlite(self, role: str) -> sqlite3.Connection:
        """This process's own SQLite connection for ``role`` ("read" or "write"), called synchronously.

        SQLite answers these statements from local pages in tens of microseconds, less than handing
        them to a driver thread and back costs, so they run on the event loop. Reads and writes use
        separate connections: a read never sees the open write transaction of another request.
        """
        conn = self._sqlite_connections.get(role)
        if conn is None:
            conn = self._sqlite_connections[role] = self._sqlite_connection()
        return conn

    def _sqlite_connection(self) -> sqlite3.Connection:
        conn = sqlite3.connect(make_url(self.db.url).database or "", isolation_level=None, check_same_thread=False)
        sqlite_pragmas(conn, None)
        if not self._registered:
            self._registered = True
            self.db.on_dispose(self.close)
        return conn

    async def _postgres_pool(self) -> AsyncConnectionPool[Any]:
        if self._pool is None:
            import psycopg
            from psycopg.types.json import set_json_dumps, set_json_loads
            from psycopg_pool import AsyncConnectionPool

            async def configure(conn: Any) -> None:
                set_json_loads(orjson.loads, conn)
                set_json_dumps(_dumps, conn)
                conn.cursor_factory = psycopg.AsyncRawCursor  # queries as ``_raw_dialect`` compiles them
                await conn.set_autocommit(True)

            url = sync_url(self.db.url).set(drivername="postgresql")
            # check: a connection the server dropped while idle is replaced when drawn, so the first
            # request after a connection loss succeeds; timeout bounds the wait while the server is down.
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                url.render_as_string(hide_password=False),
                min_size=2,
                max_size=10,
                configure=configure,
                check=AsyncConnectionPool.check_connection,
                timeout=CONNECT_TIMEOUT_SECONDS,
                kwargs={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
                open=False,
            )
            await pool.open()
            self._pool = pool
            self.db.on_dispose(self.close)
        return self._pool
