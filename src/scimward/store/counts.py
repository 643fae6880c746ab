"""Exact counts of identities per resource type, changed in the transaction that changes them."""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store.tables import identity_counts

SHARDS = 16
_c = identity_counts.c


async def adjust(conn: AsyncConnection, dialect: str, resource_type: str, delta: int) -> None:
    insert: Any = postgresql.insert(identity_counts) if dialect == "postgresql" else sqlite.insert(identity_counts)
    statement = insert.values(resource_type=resource_type, shard=random.randrange(SHARDS), count=delta)
    await conn.execute(statement.on_conflict_do_update(
        index_elements=[_c.resource_type, _c.shard], set_={"count": _c.count + delta}))


TOTAL = sa.select(sa.func.coalesce(sa.func.sum(_c.count), 0)).where(_c.resource_type == sa.bindparam("rt"))


async def total(conn: AsyncConnection, resource_type: str) -> int:
    return int((await conn.execute(TOTAL, {"rt": resource_type})).scalar_one())
