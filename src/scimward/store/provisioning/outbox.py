"""The outbox: durable work for the propagate workers, written in the same transaction as the change.

One row per (target, identity), newest wins: a change upserts the row for every target, bumping its
``generation``. A worker claims due rows under a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL,
so several workers never claim the same row), pushes, and deletes the row only if no change came in
meanwhile (the generation it claimed is still the row's). A crash leaves the row claimed until the
lease runs out; then any worker takes it again, and because a push recomputes the desired state
from what is stored now, doing it twice is harmless.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store._direct import Tx
from scimward.store.chunks import chunks
from scimward.store.database import Database
from scimward.store.provisioning.effective import effective_memberships
from scimward.store.tables import breakers, outbox, targets
from scimward.store.timeutil import utcnow

_o = outbox.c
#: Rows enqueued at once after which PostgreSQL's statistics of the outbox are refreshed.
ANALYZE_AFTER = 1000


_COLUMNS = ["target_id", "identity_id", "resource_type", "enqueued", "due", "generation", "attempts"]


def _upsert(dialect: str, rows: sa.Select[Any] | None) -> Any:
    """Insert ``rows`` (in ``_COLUMNS`` order; None: one row of bound parameters) as outbox rows; a row
    already there is made due again with its generation bumped, so a push in flight for it does not
    complete it (newest wins), and its attempts and last error start afresh."""
    insert = postgresql.insert(outbox) if dialect == "postgresql" else sqlite.insert(outbox)
    statement = insert if rows is None else insert.from_select(_COLUMNS, rows)
    return statement.on_conflict_do_update(
        index_elements=[_o.target_id, _o.identity_id],
        set_={
            "due": statement.excluded.due,
            "generation": _o.generation + 1,
            "attempts": 0,
            "last_error": None,
            "resource_type": statement.excluded.resource_type,
        },
    )


def _timestamps() -> tuple[Any, ...]:
    return sa.bindparam("now"), sa.bindparam("now_due"), sa.literal(1), sa.literal(0)


@functools.cache
def _enqueue(dialect: str) -> Any:
    """A row for every target for each identity of ``ids`` (``Tx.ids``: distinct): one statement for a
    batch of writes, where one per identity cost more than the rows (none, when no target is set up)."""
    listed = (
        sa.func.unnest(sa.bindparam("ids", type_=postgresql.ARRAY(sa.String))).table_valued("value").render_derived()
        if dialect == "postgresql"
        else sa.func.json_each(sa.bindparam("ids")).table_valued("value")
    )
    # SQLite: an upsert's SELECT needs a WHERE, or "ON CONFLICT" reads as a join's ON.
    return _upsert(
        dialect,
        sa.select(targets.c.id, listed.c.value, sa.bindparam("resource_type"), *_timestamps())
        .select_from(targets.join(listed, sa.true()))
        .where(sa.true()),
    )


@functools.cache
def _enqueue_groups_of(dialect: str, one_target: bool) -> Any:
    """A row for each hub group ``member_id`` effectively belongs to: for every target, or for
    ``target_id`` only."""
    m = effective_memberships().c
    target = sa.bindparam("target_id", type_=sa.Integer) if one_target else targets.c.id
    rows = sa.select(target, m.group_id, sa.literal("Group"), *_timestamps()).where(
        m.member_id == sa.bindparam("member_id")
    )
    return _upsert(dialect, rows if one_target else rows.join(targets, sa.true()))


@functools.cache
def _enqueue_one(dialect: str) -> Any:
    """Upsert one (target, identity) row, with ``_upsert``'s rule for a row already there."""
    return _upsert(dialect, None)


async def enqueue(tx: Tx, dialect: str, resource_type: str, identity_ids: Sequence[str]) -> None:
    """Mark these identities as changed for every target (in the change's own transaction)."""
    if not identity_ids:
        return
    now = tx.time(utcnow())
    # Each identity once: one statement's upsert cannot touch a row twice.
    ids = tx.ids(list(dict.fromkeys(identity_ids)))
    await tx.run(_enqueue(dialect), {"ids": ids, "resource_type": resource_type, "now": now, "now_due": now})


async def enqueue_groups_of(tx: Tx, dialect: str, member_id: str) -> None:
    """Mark the groups ``member_id`` belongs to as changed for every target: run before the member is
    deleted (its memberships go with it), so the groups' targets drop the member."""
    now = tx.time(utcnow())
    await tx.run(_enqueue_groups_of(dialect, False), {"member_id": member_id, "now": now, "now_due": now})


async def enqueue_groups_of_members(conn: AsyncConnection, dialect: str, pairs: Sequence[tuple[int, str]]) -> None:
    """For each (target id, member id), mark that member's hub groups as changed for that target only."""
    if not pairs:
        return
    now = utcnow()
    await conn.execute(
        _enqueue_groups_of(dialect, True),
        [
            {"target_id": target_id, "member_id": member_id, "now": now, "now_due": now}
            for target_id, member_id in pairs
        ],
    )


#: The outbox's resource type for an orphaned account that reconcile deactivates: no identity in the
#: hub holds it, so the row names the account itself (``orphan_key``).
ORPHAN = "Orphan"
_ORPHAN_PREFIX = "orphan:"


def orphan_key(resource: str, remote_id: str) -> str:
    """``orphan:Users/<id>``: the account ``remote_id`` at the target's endpoint ``resource``."""
    return f"{_ORPHAN_PREFIX}{resource}/{remote_id}"


def orphan_remote_id(key: str) -> tuple[str, str]:
    """The endpoint and the id of the account an ``orphan_key`` names."""
    resource, _, remote_id = key.removeprefix(_ORPHAN_PREFIX).partition("/")
    return resource, remote_id


async def enqueue_orphan(conn: AsyncConnection, dialect: str, target_id: int, resource: str, remote_id: str) -> None:
    """Ask propagate to deactivate the orphaned account ``remote_id`` (at ``resource``) on ``target_id``."""
    now = utcnow()
    await conn.execute(
        _enqueue_one(dialect),
        {
            "target_id": target_id,
            "identity_id": orphan_key(resource, remote_id),
            "resource_type": ORPHAN,
            "enqueued": now,
            "due": now,
            "generation": 1,
            "attempts": 0,
        },
    )


#: Per target, the orphan deactivations waiting (while a breaker is open, those it holds).
ORPHANS_WAITING = sa.select(_o.target_id, sa.func.count()).where(_o.resource_type == ORPHAN).group_by(_o.target_id)
#: A target's orphan deactivations made due now (its breaker was released).
ORPHANS_DUE_NOW = (
    outbox.update()
    .where(_o.target_id == sa.bindparam("target_id"), _o.resource_type == ORPHAN)
    .values(due=sa.bindparam("now"))
)
#: A target's orphan deactivations dropped (its breaker was discarded: the accounts stay as they are).
DISCARD_ORPHANS = outbox.delete().where(_o.target_id == sa.bindparam("target_id"), _o.resource_type == ORPHAN)


@dataclass(frozen=True)
class OutboxItem:
    target_id: int
    identity_id: str
    resource_type: str
    generation: int
    attempts: int
    enqueued: datetime


class Outbox:
    """Claiming, completing and retrying outbox rows."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def enqueue_all(self, target_id: int, resource_type: str, identity_ids: Sequence[str]) -> None:
        """Enqueue identities for one target (a full sync, a repair, a scope change)."""
        now = utcnow()
        async with self.db.write() as conn:
            for chunk in chunks(identity_ids, 1000):
                # One prepared statement run for many rows: a multi-row VALUES would be compiled anew
                # for every chunk, which cost more than the insert itself.
                await conn.execute(
                    _enqueue_one(self.db.dialect),
                    [
                        {
                            "target_id": target_id,
                            "identity_id": i,
                            "resource_type": resource_type,
                            "enqueued": now,
                            "due": now,
                            "generation": 1,
                            "attempts": 0,
                        }
                        for i in chunk
                    ],
                )
        if self.db.dialect == "postgresql" and len(identity_ids) >= ANALYZE_AFTER:
            # Claims walk ``ix_outbox_claim`` only if the planner knows the table is large: without
            # statistics (autovacuum off, or not yet run) it sorts every due row for each batch,
            # 88 ms per claim at 100,000 rows instead of 0.8 ms.
            async with self.db.read() as conn:
                await conn.execute(sa.text("analyze outbox"))

    async def claim(self, limit: int, lease: timedelta, target_id: int | None = None) -> list[OutboxItem]:
        """Take up to ``limit`` due rows of unquarantined targets, Users before Groups."""
        now = utcnow()
        params: dict[str, Any] = {"now": now, "limit": limit, "until": now + lease}
        if target_id is not None:
            params["only_target"] = target_id
        async with self.db.write() as conn:
            rows = list(await conn.execute(_claim(self.db.dialect, target_id is not None), params))
        items = [
            OutboxItem(r.target_id, r.identity_id, r.resource_type, r.generation, r.attempts, r.enqueued) for r in rows
        ]
        return sorted(items, key=lambda item: (item.resource_type != "User", item.enqueued))

    def due_rows(self, now: datetime, limit: int, target_id: int | None = None) -> sa.Select[Any]:
        """The keys of the next rows to claim, in ``ix_outbox_claim``'s order (locked on PostgreSQL)."""
        return _due_rows(self.db.dialect, now, limit, target_id)

    async def retry(self, item: OutboxItem, delay: float, error: str | None) -> None:
        """Put a row back for later (a transient failure, or waiting for something else)."""
        await self._put_back(item, delay, attempts=_o.attempts + 1, last_error=error)

    async def postpone(self, item: OutboxItem, delay: float) -> None:
        """Put a row back for later without counting an attempt (its target asked for a pause that
        another row's failure earned): its attempts and last error stay as they were."""
        await self._put_back(item, delay)

    async def _put_back(self, item: OutboxItem, delay: float, **values: Any) -> None:
        """Release the claim on ``item``'s row and make it due in ``delay`` seconds, with ``values``."""
        async with self.db.write() as conn:
            await conn.execute(
                outbox.update()
                .where(_o.target_id == item.target_id, _o.identity_id == item.identity_id)
                .values(claimed_until=None, due=utcnow() + timedelta(seconds=delay), **values)
            )

    async def release_target(self, target_id: int, *, due_now: bool = False) -> None:
        """Make a target's claimed rows claimable again (quarantine, shutdown).

        With ``due_now`` (quarantine) rows waiting out a backoff are made due as well, so that when the
        target is resumed it receives everything it missed at once, not when old backoffs run out.
        """
        async with self.db.write() as conn:
            await conn.execute(outbox.update().where(_o.target_id == target_id).values(claimed_until=None))
            if due_now:
                now = utcnow()
                await conn.execute(outbox.update().where(_o.target_id == target_id, _o.due > now).values(due=now))

    async def open_breakers(self, target_ids: Collection[int]) -> set[int]:
        """Which of these targets have their mass-change breaker open."""
        async with self.db.read() as conn:
            return {
                int(row[0])
                for row in await conn.execute(
                    sa.select(breakers.c.target_id).where(breakers.c.target_id.in_(list(target_ids)))
                )
            }

    async def pending(self, target_id: int) -> tuple[int, int]:
        """(rows waiting, rows that failed at least once) for a target."""
        async with self.db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(sa.func.count(), sa.func.count().filter(_o.attempts > 0)).where(_o.target_id == target_id)
                )
            ).one()
        return int(row[0]), int(row[1])

    async def next_due(self) -> datetime | None:
        query = (
            sa.select(sa.func.min(_o.due))
            .join(targets, targets.c.id == _o.target_id)
            .where(targets.c.quarantined.is_(None))
        )
        async with self.db.read() as conn:
            due: datetime | None = (await conn.execute(query)).scalar()
        return due


#: Delete a pushed row only if it still has the generation that was claimed (no change since).
_DELETE_PUSHED = outbox.delete().where(
    _o.target_id == sa.bindparam("b_target_id"),
    _o.identity_id == sa.bindparam("b_identity_id"),
    _o.generation == sa.bindparam("b_generation"),
)
#: Hand a row back to be claimed again at once (its due time stays as it was).
_RELEASE = (
    outbox.update()
    .where(
        _o.target_id == sa.bindparam("b_target_id"),
        _o.identity_id == sa.bindparam("b_identity_id"),
    )
    .values(claimed_until=None)
)


def _due_rows(dialect: str, now: Any, limit: Any, target_id: Any = None) -> sa.Select[Any]:
    due = (
        sa.select(_o.target_id, _o.identity_id)
        .join(targets, targets.c.id == _o.target_id)
        .where(
            _o.due <= now, targets.c.quarantined.is_(None), sa.or_(_o.claimed_until.is_(None), _o.claimed_until < now)
        )
        .order_by(_o.resource_type.desc(), _o.due)  # "User" sorts after "Group": desc puts Users first
        .limit(limit)
    )
    if target_id is not None:
        due = due.where(_o.target_id == target_id)
    if dialect == "postgresql":
        due = due.with_for_update(of=outbox, skip_locked=True)
    return due


@functools.cache
def _claim(dialect: str, for_target: bool) -> Any:
    """The claim, built once: a statement made anew on every claim cost the worker more in SQLAlchemy's
    per-object work (column collections of the subquery, result metadata) than the database spent."""
    now = sa.bindparam("now", type_=sa.DateTime)
    keys = _due_rows(
        dialect,
        now,
        sa.bindparam("limit", type_=sa.Integer),
        sa.bindparam("only_target", type_=sa.Integer) if for_target else None,
    ).subquery("due_rows")
    return (
        outbox.update()
        .where(sa.tuple_(_o.target_id, _o.identity_id).in_(sa.select(keys.c.target_id, keys.c.identity_id)))
        .values(claimed_until=sa.bindparam("until", type_=sa.DateTime))
        .returning(_o.target_id, _o.identity_id, _o.resource_type, _o.generation, _o.attempts, _o.enqueued)
    )


def _keys(items: Sequence[OutboxItem]) -> list[dict[str, Any]]:
    return [{"b_target_id": i.target_id, "b_identity_id": i.identity_id, "b_generation": i.generation} for i in items]


async def complete_claimed(conn: AsyncConnection, items: Sequence[OutboxItem]) -> None:
    """``Outbox.complete`` for many rows, inside the caller's transaction (a batch's settlement).

    Each row is deleted only if its generation is still the one claimed; a row that a change bumped
    while it was being pushed survives and is released, so the change is pushed next (newest wins,
    nothing lost). Releasing a row that was just deleted matches nothing.
    """
    if not items:
        return
    keys = _keys(items)
    await conn.execute(_DELETE_PUSHED, keys)
    await conn.execute(_RELEASE, keys)


async def release_claimed(conn: AsyncConnection, items: Sequence[OutboxItem]) -> None:
    """Hand claimed rows back to be pushed again at the next claim, inside the caller's transaction."""
    if items:
        await conn.execute(_RELEASE, _keys(items))
