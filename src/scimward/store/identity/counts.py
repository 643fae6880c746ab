"""Exact counts of identities per resource type, changed in the transaction that changes them.

Each change adds to one of 16 shard rows picked at random, so concurrent creates do not queue on
one row lock; the total is the sum of the shards.
"""

from __future__ import annotations

import functools
import random
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from scimward.store._direct import Tx
from scimward.store.tables import identity_counts

SHARDS = 16
_c = identity_counts.c

TOTAL = sa.select(sa.func.coalesce(sa.func.sum(_c.count), 0), sa.func.coalesce(sa.func.sum(_c.removed), 0)).where(
    _c.resource_type == sa.bindparam("rt")
)


@functools.cache
def _adjust(dialect: str) -> Any:
    insert = postgresql.insert(identity_counts) if dialect == "postgresql" else sqlite.insert(identity_counts)
    return insert.values(
        resource_type=sa.bindparam("rt"),
        shard=sa.bindparam("shard"),
        count=sa.bindparam("delta"),
        removed=sa.bindparam("removed"),
    ).on_conflict_do_update(
        index_elements=[_c.resource_type, _c.shard],
        set_={"count": _c.count + sa.bindparam("delta_again"), "removed": _c.removed + sa.bindparam("removed_again")},
    )


async def adjust(tx: Tx, dialect: str, resource_type: str, delta: int) -> None:
    await tx.run(_adjust(dialect), params(resource_type, delta))


def params(resource_type: str, delta: int) -> dict[str, Any]:
    removed = 1 if delta < 0 else 0
    return {
        "rt": resource_type,
        "shard": random.randrange(SHARDS),
        "delta": delta,
        "delta_again": delta,
        "removed": removed,
        "removed_again": removed,
    }
