"""The hot reads, executed straight on the database driver.

Reading one user by id or by userName, and one page of a list, are most of what identity
providers ask. These statements are built once with SQLAlchemy (``store.reads``), compiled to SQL
text once per dialect, and then run on the driver connection, skipping SQLAlchemy's per-execution
work, which costs more than PostgreSQL's own. On PostgreSQL they use a psycopg pool of autocommit
connections with server-side prepared statements. Every other read goes through SQLAlchemy.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from psycopg.types.json import set_json_loads
from psycopg_pool import AsyncConnectionPool
from sqlalchemy.engine import Dialect

from scimward.store.database import Database
from scimward.store.db import sync_url

Row = Sequence[Any]


@functools.cache
def _compiled(statement: sa.Select[Any], dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    """SQL text, its parameter names in the driver's order, and the values of its literals."""
    compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.params)
    return str(compiled), names, dict(compiled.params)


class DirectReads:
    """Fixed-shape reads on the raw driver: one round trip each, no ORM-level processing."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self._dialect = database.engine.dialect
        self._pool: Any = None

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def fetch(self, statement: sa.Select[Any], params: dict[str, Any]) -> list[Row]:
        sql, names, literals = _compiled(statement, self._dialect)
        values = {**literals, **params}
        async with self._connection() as run:
            rows: list[Row] = await run(sql, tuple(values[n] for n in names) if self._dialect.positional else values)
            return rows

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        if self.db.dialect == "postgresql":
            pool = await self._postgres_pool()
            async with pool.connection() as conn:
                async def run(sql: str, params: Any) -> list[Row]:
                    cursor = await conn.execute(sql, params, prepare=True)
                    return list(await cursor.fetchall())

                yield run
            return
        async with self.db.engine.connect() as sa_conn:
            driver: Any = (await sa_conn.get_raw_connection()).driver_connection

            async def run_sqlite(sql: str, params: Any) -> list[Row]:
                cursor = await driver.execute(sql, params)
                try:
                    return list(await cursor.fetchall())
                finally:
                    await cursor.close()

            yield run_sqlite

    async def _postgres_pool(self) -> Any:
        if self._pool is None:
            async def configure(conn: Any) -> None:
                set_json_loads(orjson.loads, conn)
                await conn.set_autocommit(True)

            url = sync_url(self.db.url).set(drivername="postgresql")
            conninfo = url.render_as_string(hide_password=False)
            pool = AsyncConnectionPool(conninfo, min_size=2, max_size=10, configure=configure, open=False)
            await pool.open()
            self._pool = pool
            self.db.on_dispose(self.close)
        return self._pool



def decode_json(value: Any) -> Any:
    """SQLite hands JSON back as text; psycopg has already decoded it."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def decode_time(value: Any) -> datetime:
    return datetime.fromisoformat(value) if isinstance(value, str) else value
