"""Links (an identity and its account in one target), acknowledged memberships and the push log."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store.chunks import chunks
from scimward.store.database import Database
from scimward.store.provisioning.effective import effective_memberships
from scimward.store.tables import link_members, links, push_log
from scimward.store.timeutil import utcnow

_l = links.c
_lm = link_members.c


@dataclass(frozen=True)
class Link:
    target_id: int
    identity_id: str
    resource_type: str
    remote_id: str
    state: dict[str, Any] | None
    status: str  # "active", "deactivated"
    acknowledged: datetime
    last_error: str | None

    @classmethod
    def of(cls, row: Any) -> Link:
        """A link from a row of ``links`` (every column, or a select that names them all)."""
        return cls(
            row.target_id,
            row.identity_id,
            row.resource_type,
            row.remote_id,
            row.state,
            row.status,
            row.acknowledged,
            row.last_error,
        )


def link_row(
    target_id: int,
    identity_id: str,
    resource_type: str,
    remote_id: str,
    state: dict[str, Any] | None,
    status: str = "active",
    acknowledged: datetime | None = None,
) -> dict[str, Any]:
    """A ``links`` row as ``save_links`` writes it: acknowledged now unless told when."""
    return {
        "target_id": target_id,
        "identity_id": identity_id,
        "resource_type": resource_type,
        "remote_id": remote_id,
        "state": state,
        "status": status,
        "acknowledged": acknowledged or utcnow(),
        "last_error": None,
    }


def log_row(
    target_id: int,
    identity_id: str,
    action: str,
    outcome: str,
    enqueued: datetime,
    finished: datetime,
    detail: str | None = None,
) -> dict[str, Any]:
    """A ``push_log`` row as ``write_log`` writes it."""
    return {
        "target_id": target_id,
        "identity_id": identity_id,
        "action": action,
        "outcome": outcome,
        "enqueued": enqueued,
        "finished": finished,
        "detail": detail[:2000] if detail else None,
    }


@functools.cache
def _upsert(dialect: str) -> Any:
    insert = postgresql.insert(links) if dialect == "postgresql" else sqlite.insert(links)
    return insert.on_conflict_do_update(
        index_elements=[_l.target_id, _l.identity_id],
        set_={
            "remote_id": insert.excluded.remote_id,
            "state": insert.excluded.state,
            "status": insert.excluded.status,
            "acknowledged": insert.excluded.acknowledged,
            "last_error": None,
        },
    )


_SET_ERROR = (
    links.update()
    .where(
        _l.target_id == sa.bindparam("b_target_id"),
        _l.identity_id == sa.bindparam("b_identity_id"),
    )
    .values(last_error=sa.bindparam("b_error"))
)


async def save_links(conn: AsyncConnection, dialect: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or update links (rows from ``link_row``), inside the caller's transaction."""
    if rows:
        await conn.execute(_upsert(dialect), list(rows))


async def record_link_errors(conn: AsyncConnection, errors: Sequence[tuple[int, str, str]]) -> None:
    """Put the target's error text on existing links: (target id, identity id, error)."""
    if errors:
        await conn.execute(
            _SET_ERROR, [{"b_target_id": t, "b_identity_id": i, "b_error": e[:2000]} for t, i, e in errors]
        )


async def write_log(conn: AsyncConnection, rows: Sequence[dict[str, Any]]) -> None:
    """Append push-log rows (from ``log_row``), inside the caller's transaction."""
    if rows:
        await conn.execute(push_log.insert(), list(rows))


class LinkStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    def _insert(self, table: sa.Table) -> Any:
        return postgresql.insert(table) if self.db.dialect == "postgresql" else sqlite.insert(table)

    async def drop(self, target_id: int, identity_id: str) -> None:
        """Forget an account: its link and every acknowledged membership it had, as group or member."""
        async with self.db.write() as conn:
            await conn.execute(links.delete().where(_l.target_id == target_id, _l.identity_id == identity_id))
            await conn.execute(
                link_members.delete().where(
                    _lm.target_id == target_id, sa.or_(_lm.group_id == identity_id, _lm.member_id == identity_id)
                )
            )

    async def unlinked_members(self, target_id: int, group_id: str, limit: int) -> list[tuple[str, str]]:
        """(id, type) of the Users and Agents effectively in the group with no active account on the
        target yet."""
        m = effective_memberships().c
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(m.member_id, m.member_type)
                .where(
                    m.group_id == group_id,
                    m.member_type.in_(("User", "Agent")),
                    ~sa.exists().where(_l.target_id == target_id, _l.identity_id == m.member_id, _l.status == "active"),
                )
                .limit(limit)
            )
            return [(row[0], row[1]) for row in rows]

    async def linked_remote_ids(self, target_id: int, identity_ids: Sequence[str]) -> dict[str, str]:
        """identity id -> remote id, for the given identities that are actively linked."""
        found: dict[str, str] = {}
        async with self.db.read() as conn:
            for chunk in chunks(identity_ids):
                rows = await conn.execute(
                    sa.select(_l.identity_id, _l.remote_id).where(
                        _l.target_id == target_id, _l.status == "active", _l.identity_id.in_(chunk)
                    )
                )
                found.update({row.identity_id: row.remote_id for row in rows})
        return found

    # -- group membership as deltas ---------------------------------------------------------------

    async def member_delta(
        self, target_id: int, group_id: str, limit: int = 1000
    ) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """(to add, to remove) as (member identity id, remote id): the hub's members that are actively
        linked on the target, against the memberships the target has acknowledged. Set operations in
        SQL, so a group of 100,000 costs one indexed pass, not a load of both sides."""
        m, lm = effective_memberships().c, _lm
        linked = sa.and_(_l.target_id == target_id, _l.identity_id == m.member_id, _l.status == "active")
        adds = (
            sa.select(m.member_id, _l.remote_id)
            .select_from(effective_memberships())
            .join(links, linked)
            .where(
                m.group_id == group_id,
                ~sa.exists().where(lm.target_id == target_id, lm.group_id == group_id, lm.member_id == m.member_id),
            )
            .limit(limit)
        )
        wanted = sa.exists().where(
            m.group_id == group_id,
            m.member_id == lm.member_id,
            _l.target_id == target_id,
            _l.identity_id == lm.member_id,
            _l.status == "active",
        )
        removes = (
            sa.select(
                lm.member_id,
                sa.func.coalesce(
                    sa.select(_l.remote_id)
                    .where(_l.target_id == target_id, _l.identity_id == lm.member_id)
                    .scalar_subquery(),
                    lm.member_id,
                ),
            )
            .where(lm.target_id == target_id, lm.group_id == group_id, ~wanted)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return (
                [(r[0], r[1]) for r in await conn.execute(adds)],
                [(r[0], r[1]) for r in await conn.execute(removes)],
            )

    async def acknowledge_members(
        self, target_id: int, group_id: str, added: Sequence[str], removed: Sequence[str]
    ) -> None:
        async with self.db.write() as conn:
            if added:
                insert = self._insert(link_members)
                await conn.execute(
                    insert.on_conflict_do_nothing(),
                    [{"target_id": target_id, "group_id": group_id, "member_id": member} for member in added],
                )
            for chunk in chunks(removed):
                await conn.execute(
                    link_members.delete().where(
                        _lm.target_id == target_id, _lm.group_id == group_id, _lm.member_id.in_(chunk)
                    )
                )

    # -- push log -------------------------------------------------------------------------------

    async def log(
        self, target_id: int, identity_id: str, action: str, outcome: str, enqueued: datetime, detail: str | None = None
    ) -> None:
        async with self.db.write() as conn:
            await write_log(conn, [log_row(target_id, identity_id, action, outcome, enqueued, utcnow(), detail)])

    async def push_log(
        self, target_id: int, *, limit: int = 100, outcome: str | None = None, before: int | None = None
    ) -> list[dict[str, Any]]:
        """The target's push-log rows, newest first: ``limit`` of them, those with ``outcome`` (ok,
        rejected, ...) only if given, with an id below ``before`` (the next page) if given."""
        p = push_log.c
        query = sa.select(push_log).where(p.target_id == target_id).order_by(p.id.desc()).limit(limit)
        if outcome is not None:
            query = query.where(p.outcome == outcome)
        if before is not None:
            query = query.where(p.id < before)
        async with self.db.read() as conn:
            return [
                {
                    "id": int(r.id),
                    "identity": r.identity_id,
                    "action": r.action,
                    "outcome": r.outcome,
                    "enqueued": r.enqueued.isoformat() + "Z",
                    "finished": r.finished.isoformat() + "Z",
                    "detail": r.detail,
                }
                for r in await conn.execute(query)
            ]

    async def latencies(self, target_id: int, last: int = 1000) -> list[float]:
        """Seconds from change to acknowledgement of the target's latest successful pushes."""
        p = push_log.c
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(p.enqueued, p.finished)
                .where(p.target_id == target_id, p.outcome == "ok")
                .order_by(p.id.desc())
                .limit(last)
            )
            return [(row.finished - row.enqueued).total_seconds() for row in rows]

    async def counts(self, target_id: int) -> dict[str, int]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(_l.resource_type, _l.status, sa.func.count())
                .where(_l.target_id == target_id)
                .group_by(_l.resource_type, _l.status)
            )
            return {f"{row[0]}:{row[1]}": int(row[2]) for row in rows}

    async def errored(self, target_id: int) -> int:
        """Identities whose last push to the target failed: linked ones holding an error, and ones the
        target never took (a create refused, say by a 404 on a wrong URL), whose latest push-log row
        failed. Without the second, a target that refuses every create would count no failure."""
        p = push_log.c
        latest = (
            sa.select(sa.func.max(p.id).label("id")).where(p.target_id == target_id).group_by(p.identity_id).subquery()
        )
        never_taken = (
            sa.select(sa.func.count())
            .select_from(push_log.join(latest, p.id == latest.c.id))
            .where(
                p.outcome == "failed", ~sa.exists().where(_l.target_id == target_id, _l.identity_id == p.identity_id)
            )
        )
        async with self.db.read() as conn:
            linked = (
                await conn.execute(
                    sa.select(sa.func.count()).where(_l.target_id == target_id, _l.last_error.is_not(None))
                )
            ).scalar_one()
            return int(linked) + int((await conn.execute(never_taken)).scalar_one())
