"""The database: URLs, engines, migrations, and the handle with its read and write transactions.

Users give one URL (``sqlite:///scimward.db`` or ``postgresql+psycopg://...``); the hub derives
the async driver for serving and the sync driver for migrations from it.

SQLite allows one writer at a time. Within a process, writes queue on an asyncio lock instead of
spinning on SQLITE_BUSY, and each write transaction starts with ``BEGIN IMMEDIATE`` so a transaction
that read first can never deadlock on the upgrade to a write lock (other processes wait on
``busy_timeout``). PostgreSQL needs neither.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from scimward.store.chain import chain_hash
from scimward.store.errors import DatabaseUnavailable, DatabaseUrlError
from scimward.store.failures import integrity_error

DEFAULT_DATABASE_URL = "sqlite:///scimward.db"
DATABASE_URL_ENV = "SCIMWARD_DATABASE_URL"
MIGRATIONS = Path(__file__).parent / "migrations"
#: The longest a request waits for a PostgreSQL connection before it answers 503.
CONNECT_TIMEOUT_SECONDS = 5


def resolve_url(url: str | None) -> str:
    """The URL given, else ``$SCIMWARD_DATABASE_URL``, else the SQLite default."""
    return url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as exc:
        raise DatabaseUrlError(f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend not in {"sqlite", "postgresql"}:
        raise DatabaseUrlError(f"unsupported database {backend!r}: use sqlite:/// or postgresql+psycopg://")
    return parsed


def shown_url(url: str) -> str:
    """``url`` as it may be printed or logged: the password, if any, replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<not a database URL>"


def sync_url(url: str) -> URL:
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite")
    return parsed.set(drivername="postgresql+psycopg")


def async_url(url: str) -> URL:
    parsed = _parse(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    return parsed.set(drivername="postgresql+psycopg")


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


#: How long a SQLite writer waits for another process's write lock before it fails.
BUSY_TIMEOUT_MS = 10_000


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite's own lower() folds ASCII only; SCIM's case-insensitive matching must fold "MÜLLER" too,
    # exactly as the Python side folds the promoted *_lower columns.
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)
    # The audit trail's chain hash, computed in the append statement (store.governance.audit).
    dbapi_connection.create_function("scimward_chain_hash", 5, chain_hash, deterministic=True)
    # WAL lets readers run beside the one writer; foreign keys are off by default in SQLite.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


#: orjson on both dialects: several times faster than json for the documents every request carries.
JSON_OPTIONS: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def create_sync_engine(url: str) -> sa.Engine:
    engine = sa.create_engine(sync_url(url), **JSON_OPTIONS)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", sqlite_pragmas)
    return engine


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        engine = create_async_engine(target, **JSON_OPTIONS)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    # pool_pre_ping: a connection the server dropped (a restart, pg_terminate_backend, a failover) is
    # replaced at checkout instead of failing the request that drew it. connect_timeout and pool_timeout
    # bound the wait while the server is unreachable: the request answers 503 (store.failures), not hangs.
    return create_async_engine(
        target,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_timeout=CONNECT_TIMEOUT_SECONDS,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS},
        **JSON_OPTIONS,
    )


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to the newest schema (idempotent)."""
    # Alembic is imported here: it costs a quarter of a second, and only this function needs it
    # (the other commands check the revision with ``store.schema_version``).
    from alembic import command
    from alembic.config import Config

    engine = create_sync_engine(url)
    try:
        with engine.begin() as connection:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except sa.exc.OperationalError as exc:
        raise unavailable(url, exc) from exc
    finally:
        engine.dispose()


def unavailable(url: str, exc: sa.exc.DBAPIError) -> DatabaseUnavailable:
    # The driver's first line says what failed (refused, unknown host, password rejected); it never
    # holds the password, and the URL is shown with the password hidden.
    reason = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return DatabaseUnavailable(f"cannot open the database {shown_url(url)}: {reason[0] if reason else exc}")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # Reads on PostgreSQL need no transaction: autocommit saves the BEGIN and ROLLBACK round trips.
        self._reader = (
            self.engine.execution_options(isolation_level="AUTOCOMMIT") if self.dialect == "postgresql" else self.engine
        )
        if self.dialect == "sqlite":
            sync_engine = self.engine.sync_engine

            @event.listens_for(sync_engine, "connect")
            def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
                # Let SQLAlchemy, not the driver, decide when a transaction begins (BEGIN below).
                dbapi_connection.isolation_level = None

            @event.listens_for(sync_engine, "begin")
            def _begin(conn: Any) -> None:
                mode = conn.info.pop("begin_mode", "")
                conn.exec_driver_sql(f"BEGIN {mode}")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    @property
    def sqlite_write_lock(self) -> asyncio.Lock:
        """This process's SQLite writer slot, held from ``BEGIN IMMEDIATE`` to ``COMMIT``."""
        assert self._write_lock is not None, "PostgreSQL has no process-wide write lock"
        return self._write_lock

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One write transaction: committed when the block ends, rolled back on any error."""
        if self._write_lock is None:
            async with self._transaction("") as conn:
                yield conn
            return
        async with self._write_lock, self._transaction("IMMEDIATE") as conn:
            yield conn

    @asynccontextmanager
    async def _transaction(self, mode: str) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                if mode:
                    conn.sync_connection.info["begin_mode"] = mode  # type: ignore[union-attr]
                async with conn.begin():
                    yield conn
        except IntegrityError as exc:
            raise integrity_error(exc) from exc

    def on_dispose(self, close: Callable[[], Awaitable[None]]) -> None:
        """Run ``close`` when the database is disposed (pools opened beside the engine)."""
        self._closers.append(close)

    async def dispose(self) -> None:
        for close in self._closers:
            await close()
        self._closers.clear()
        await self.engine.dispose()
