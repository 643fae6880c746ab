"""The database handle: one async engine, read and write transactions.

SQLite allows one writer at a time. Within a process, writes queue on an asyncio lock instead of
spinning on SQLITE_BUSY, and each write transaction starts with ``BEGIN IMMEDIATE`` so a transaction
that read first can never deadlock on the upgrade to a write lock (other processes wait on
``busy_timeout``). PostgreSQL needs neither.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from scimward.scim.errors import InvalidValue, ScimError, UniquenessError
from scimward.store.db import create_engine


def translate_integrity_error(exc: Exception) -> ScimError:
    """A constraint the checks before the write could not see (a concurrent change), as a SCIM error."""
    text = str(getattr(exc, "orig", exc)).lower()
    if "user_name" in text:
        return UniquenessError("the unique name (a User's userName, an Agent's name) is already taken")
    if "uq_tokens_name" in text or "tokens.name" in text:
        return UniquenessError("a token with that name already exists")
    if "uq_targets_name" in text or "targets.name" in text:
        return UniquenessError("a target with that name already exists")
    return InvalidValue("the change conflicts with another change made at the same time; retry")


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self._closers: list[Callable[[], Awaitable[None]]] = []
        self._write_lock = asyncio.Lock() if self.dialect == "sqlite" else None
        # Reads on PostgreSQL need no transaction: autocommit saves the BEGIN and ROLLBACK round trips.
        self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT") \
            if self.dialect == "postgresql" else self.engine
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
            raise translate_integrity_error(exc) from exc

    def on_dispose(self, close: Callable[[], Awaitable[None]]) -> None:
        """Run ``close`` when the database is disposed (pools opened beside the engine)."""
        self._closers.append(close)

    async def dispose(self) -> None:
        for close in self._closers:
            await close()
        self._closers.clear()
        await self.engine.dispose()
