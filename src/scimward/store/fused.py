"""PostgreSQL-only fused writes: one statement, one round trip, for the most common changes.

A PATCH that touches only the identity row (``active=false``, a new title) and a POST with no
e-mails or members are written as a single statement whose data-modifying CTEs also upsert the
outbox rows and the count. The statement is atomic on its own, so it runs without BEGIN/COMMIT.
The PATCH is conditional on the version it read: if another writer came first, nothing is written
and the caller takes the locking path. Everything else (and all of SQLite) takes that path.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from scimward.store.counts import _adjust
from scimward.store.tables import identities, outbox, targets
from scimward.store.writes import INSERT_IDENTITY, PROMOTED

_t = identities.c
_o = outbox.c


def _enqueue_from(changed: Any) -> Any:
    """Upsert an outbox row per target for the identity the CTE ``changed`` returns."""
    rows = (sa.select(targets.c.id, changed.c.id, changed.c.resource_type, sa.bindparam("now"),
                      sa.bindparam("now_due"), sa.literal(1), sa.literal(0))
            .select_from(targets).join(changed, sa.true()))
    insert = postgresql.insert(outbox).from_select(
        ["target_id", "identity_id", "resource_type", "enqueued", "due", "generation", "attempts"], rows)
    return insert.on_conflict_do_update(
        index_elements=[_o.target_id, _o.identity_id],
        set_={"due": insert.excluded.due, "generation": _o.generation + 1, "attempts": 0, "last_error": None,
              "resource_type": insert.excluded.resource_type},
    ).returning(_o.target_id).cte("enqueued_rows")


@functools.cache
def update_row() -> sa.Select[Any]:
    """UPDATE the identity if still at ``w_version``, enqueue it; returns how many rows changed (0 or 1)."""
    changed = (
        identities.update()
        .where(_t.id == sa.bindparam("w_id"), _t.version == sa.bindparam("w_version"))
        .values({c: sa.bindparam(f"v_{c}") for c in ("last_modified", "version", "source", *PROMOTED)})
        .returning(_t.id, _t.resource_type)
        .cte("changed")
    )
    return sa.select(sa.func.count()).select_from(changed).add_cte(_enqueue_from(changed))


@functools.cache
def insert_row() -> sa.Select[Any]:
    """INSERT the identity, add to its count, enqueue it."""
    created = INSERT_IDENTITY.returning(_t.id, _t.resource_type).cte("created")
    counted = _adjust("postgresql").returning(sa.literal(1)).cte("counted")
    return sa.select(sa.func.count()).select_from(created).add_cte(counted).add_cte(_enqueue_from(created))
