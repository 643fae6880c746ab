"""Reads for a batch of pushes: many identities, and their links on one target, a query each.

A propagate worker asks for a whole claimed batch at once what it used to ask per row. The queries
must still cost per identity asked, not per identity stored, and that is up to PostgreSQL's
planner. Asked as ``id IN (...)`` it may read every link of the target (or every user) to find
200: an index on ``(target_id, remote_id)`` starts like the primary key, and a sync of 10,000 users
spent half its time there. So on PostgreSQL each id is looked up on its own (a ``LATERAL`` subquery
with ``LIMIT 1``, which the planner cannot fold into a join), a point lookup on the whole primary
key. That is planned on the primary key once the table has statistics; a table never analyzed
(autovacuum off, or a database just made) has none, and then even a point lookup may go by the
other index. ``ensure_statistics`` analyzes such tables once. SQLite plans ``IN (...)`` on the
primary key anyway.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from scimward.scim.ast import Filter
from scimward.scim.schema import ResourceType
from scimward.store.chunks import chunks
from scimward.store.database import Database
from scimward.store.filter_sql import FilterCompiler
from scimward.store.provisioning.effective import HubIdentity, read_identities
from scimward.store.provisioning.links import Link
from scimward.store.tables import identities, links

_t, _l = identities.c, links.c


def _each(ids: list[str], lookup: sa.Select[Any], key: sa.ColumnElement[str]) -> sa.Select[Any]:
    """On PostgreSQL: ``lookup`` run once for each of ``ids`` (``key`` equal to it), by primary key."""
    keys = sa.func.unnest(sa.literal(ids, postgresql.ARRAY(sa.String))).table_valued("id").render_derived("ids")
    found = lookup.where(key == keys.c.id).limit(1).lateral("found")
    return sa.select(found).select_from(keys).join(found, sa.true())


def _in(ids: list[str], lookup: sa.Select[Any], key: sa.ColumnElement[str], dialect: str) -> sa.Select[Any]:
    return _each(ids, lookup, key) if dialect == "postgresql" else lookup.where(key.in_(ids))


#: The tables looked up by key here, whose plans need statistics.
_LOOKED_UP = ("identities", "links")


class BatchReads:
    def __init__(self, database: Database) -> None:
        self.db = database
        self._compilers: dict[str, FilterCompiler] = {}
        self._statistics_checked = database.dialect != "postgresql"

    async def ensure_statistics(self) -> None:
        """Analyze the tables looked up here if PostgreSQL has never analyzed them (``reltuples`` is
        -1 until then), once per process: milliseconds, against a full scan per lookup without."""
        if self._statistics_checked:
            return
        self._statistics_checked = True
        async with self.db.read() as conn:
            never = [
                row[0]
                for row in await conn.execute(
                    sa.text(
                        "select relname from pg_class where oid = any(array["
                        + ", ".join(f"to_regclass('{table}')" for table in _LOOKED_UP)
                        + "]) and reltuples < 0"
                    )
                )
            ]
            for table in never:
                await conn.execute(sa.text(f"analyze {table}"))

    def _compiler(self, rt: ResourceType) -> FilterCompiler:
        return self._compilers.setdefault(rt.name, FilterCompiler(rt, self.db.dialect))

    async def identities(self, rt: ResourceType, ids: Collection[str], scope: Filter | None) -> dict[str, HubIdentity]:
        """The identities of a type that have an effective state, and whether ``scope`` takes each."""
        found: dict[str, HubIdentity] = {}
        await self.ensure_statistics()
        dialect = self.db.dialect
        async with self.db.read() as conn:
            for chunk in chunks(ids):
                found.update(
                    await read_identities(
                        conn, self._compiler(rt), rt, chunk, scope, lambda i, lookup, key: _in(i, lookup, key, dialect)
                    )
                )
        return found

    async def links(self, target_id: int, identity_ids: Collection[str]) -> dict[str, Link]:
        """identity id -> its link on the target, for those of ``identity_ids`` that have one."""
        lookup = sa.select(
            _l.identity_id,
            _l.target_id,
            _l.resource_type,
            _l.remote_id,
            _l.state,
            _l.status,
            _l.acknowledged,
            _l.last_error,
        ).where(_l.target_id == target_id)
        found: dict[str, Link] = {}
        await self.ensure_statistics()
        async with self.db.read() as conn:
            for chunk in chunks(identity_ids):
                query = _in(chunk, lookup, _l.identity_id, self.db.dialect)
                found.update({row.identity_id: Link.of(row) for row in await conn.execute(query)})
        return found
