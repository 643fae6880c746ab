"""What the console's pages read of governance: the overview, changes, findings and the audit trail, a page at a time.

Every list is paged and filtered in SQL; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store.database import Database
from scimward.store.governance import audit
from scimward.store.governance.changes import change_row, list_changes
from scimward.store.governance.findings import LIVE
from scimward.store.tables import (
    audit_events,
    breakers,
    changes,
    effective_states,
    findings,
    identities,
    identity_counts,
    membership_holds,
    outbox,
    targets,
)

_c, _f, _o, _t, _e = changes.c, findings.c, outbox.c, targets.c, audit_events.c
SEVERITIES = ("critical", "high", "medium", "low")
#: What audit events record (the audit page filters on them).
AUDIT_KINDS = audit.KINDS
#: Sources that keep identities without a person: an identity provider over SCIM, an HR import.
AUTOMATED_SOURCES = ("scim:", "hr:")


@dataclass(frozen=True)
class Overview:
    pending: int
    open_breakers: int
    open_findings: dict[str, int]
    open_by_kind: dict[str, int]
    identities: dict[str, int]
    diverged: int
    #: Identities whose source is automated (an IdP over SCIM, an HR import), and all of them.
    automated: int
    sourced: int
    #: Outbox rows waiting to be pushed, over every target.
    backlog: int

    @property
    def coverage(self) -> int | None:
        """The share of identities an automated source keeps, in percent."""
        return round(100 * self.automated / self.sourced) if self.sourced else None


async def overview(database: Database) -> Overview:
    async with database.read() as conn:
        pending = await _scalar(conn, sa.select(sa.func.count()).where(_c.status == "pending"))
        open_breakers = await _scalar(conn, sa.select(sa.func.count()).select_from(breakers))
        by_severity = {
            str(s): int(n)
            for s, n in await conn.execute(
                sa.select(_f.severity, sa.func.count()).where(_f.status == "open").group_by(_f.severity)
            )
        }
        by_kind = {
            str(k): int(n)
            for k, n in await conn.execute(
                sa.select(_f.kind, sa.func.count()).where(_f.status == "open").group_by(_f.kind)
            )
        }
        counts = {
            str(rt): int(n)
            for rt, n in await conn.execute(
                sa.select(identity_counts.c.resource_type, sa.func.sum(identity_counts.c.count)).group_by(
                    identity_counts.c.resource_type
                )
            )
        }
        held = sa.union(sa.select(effective_states.c.identity_id), sa.select(membership_holds.c.group_id)).subquery()
        diverged = await _scalar(conn, sa.select(sa.func.count()).select_from(held))
        # Counted by source in its index (a handful of distinct sources), not by a test of every row.
        by_source = [
            (str(source or ""), int(n))
            for source, n in await conn.execute(
                sa.select(identities.c.source, sa.func.count()).group_by(identities.c.source)
            )
        ]
        automated = sum(n for source, n in by_source if source.startswith(AUTOMATED_SOURCES))
        sourced = sum(n for _, n in by_source)
        backlog = await _scalar(conn, sa.select(sa.func.count()).select_from(outbox))
    return Overview(pending, open_breakers, by_severity, by_kind, counts, diverged, automated, sourced, backlog)


@dataclass(frozen=True)
class Keyset:
    """A page read by keyset: its rows, and the keys of the pages beside it (None: there is none)."""

    rows: list[Any]
    older: str | None
    newer: str | None


def _page(rows: list[Any], limit: int, key: Any, *, backwards: bool, paged: bool) -> Keyset:
    """``rows`` read newest first (or, ``backwards``, oldest first from a newer page's key), one more than
    ``limit`` to know whether there is more that way."""
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    older = key(rows[-1]) if rows and (more or backwards) else None
    newer = key(rows[0]) if rows and (more if backwards else paged) else None
    return Keyset(rows, older, newer)


def _split(cursor: str, parts: int) -> list[str] | None:
    found = cursor.split("|")
    return found if len(found) == parts else None


async def changes_page(
    database: Database, status: str | None, *, before: str | None = None, after: str | None = None, limit: int = 50
) -> Keyset:
    """Changes newest first (with that status), a page of them by keyset on (created, id): older than
    ``before``, or newer than ``after``; rows are ``ChangeRow``. Paging by keyset, not offset, keeps
    the 2,000th page as fast as the first on 100,000 changes."""
    position = sa.tuple_(_c.created, _c.id)
    query = list_changes(status, None, limit + 1)
    backwards = False
    given = _split(before or after or "", 2)
    if given is not None:
        try:
            key = (datetime.fromisoformat(given[0]), given[1])
        except ValueError:
            given = None
    if given is not None and before:
        query = query.where(position < key)
    elif given is not None:
        backwards = True
        query = query.where(position > key).order_by(None).order_by(_c.created, _c.id)
    async with database.read() as conn:
        rows = [change_row(row) for row in await conn.execute(query)]
    return _page(rows, limit, lambda c: f"{c.created.isoformat()}|{c.id}", backwards=backwards, paged=given is not None)


async def pending_count(database: Database) -> int:
    async with database.read() as conn:
        return await _scalar(conn, sa.select(sa.func.count()).where(_c.status == "pending"))


async def effective_of(database: Database, identity_id: str) -> tuple[bool, dict[str, Any] | None, bool]:
    """(diverged, effective document, deleted by its source): when not diverged, effective is source."""
    e = effective_states.c
    async with database.read() as conn:
        row = (await conn.execute(sa.select(e.doc, e.source_deleted).where(e.identity_id == identity_id))).first()
    if row is None:
        return False, None, False
    return True, row[0], bool(row[1])


@dataclass(frozen=True)
class HeldMembership:
    group_id: str
    member_id: str
    #: ``add``: the source has it, it is not effective yet; ``remove``: the source dropped it, it still is.
    kind: str
    change_id: str | None


async def membership_holds_of(database: Database, identity_id: str, limit: int = 100) -> list[HeldMembership]:
    """Memberships of or in the identity whose effective state differs from the source's."""
    h = membership_holds.c
    async with database.read() as conn:
        return [
            HeldMembership(*row)
            for row in await conn.execute(
                sa.select(h.group_id, h.member_id, h.kind, h.change_id)
                .where(sa.or_(h.group_id == identity_id, h.member_id == identity_id))
                .limit(limit)
            )
        ]


async def findings_page(
    database: Database,
    *,
    statuses: Sequence[str],
    target: str | None = None,
    severity: str | None = None,
    kinds: Sequence[str] | None = None,
    owner: str | None = None,
    offset: int = 0,
    limit: int = 50,
) -> tuple[int, list[Any]]:
    """Findings with those statuses (and target, severity, kinds, owner), the most severe first; the total too."""
    where: list[sa.ColumnElement[bool]] = [_f.status.in_(list(statuses))]
    if target:
        where.append(_t.name == target)
    if severity:
        where.append(_f.severity == severity)
    if kinds is not None:
        where.append(_f.kind.in_(list(kinds)))
    if owner:
        where.append(_f.owner == owner)
    order = sa.case({s: n for n, s in enumerate(SEVERITIES)}, value=_f.severity, else_=len(SEVERITIES))
    base = sa.select(_f.id).outerjoin(targets, _t.id == _f.target_id).where(*where)
    query = (
        sa.select(
            _f.id,
            _t.name,
            _f.kind,
            _f.severity,
            _f.resource_type,
            _f.subject,
            _f.identity_id,
            _f.attribute,
            _f.detail,
            _f.status,
            _f.first_seen,
            _f.last_seen,
            _f.owner,
            _f.accepted_until,
            _f.accepted_by,
            _f.accepted_reason,
        )
        .outerjoin(targets, _t.id == _f.target_id)
        .where(*where)
        .order_by(order, _f.first_seen.desc(), _f.id)
        .offset(offset)
        .limit(limit)
    )
    async with database.read() as conn:
        total = await _scalar(conn, sa.select(sa.func.count()).select_from(base.subquery()))
        return total, list(await conn.execute(query))


async def audit_page(
    database: Database,
    *,
    kind: str | None = None,
    actor: str | None = None,
    subject: str | None = None,
    before: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> Keyset:
    """Audit events newest first, filtered on kind, actor and subject (a prefix), a page by keyset on
    (time, lane, seq): older than ``before`` or newer than ``after``; rows are ``audit.StoredEvent``."""
    where: list[sa.ColumnElement[bool]] = []
    if kind:
        where.append(_e.kind == kind)
    if actor:
        where.append(_e.actor == actor)
    if subject:
        where.append(_e.subject.startswith(subject, autoescape=True))
    position = sa.tuple_(_e.time, _e.lane, _e.seq)
    newest_first = (_e.time.desc(), _e.lane.desc(), _e.seq.desc())
    order: tuple[Any, ...] = newest_first
    given = _split(before or after or "", 3)
    backwards = False
    if given is not None:
        try:
            moment, lane, seq = datetime.fromisoformat(given[0]), int(given[1]), int(given[2])
        except ValueError:
            given = None
    if given is not None and before:
        where += [_e.time <= moment, position < (moment, lane, seq)]
    elif given is not None:
        where += [_e.time >= moment, position > (moment, lane, seq)]
        order, backwards = (_e.time, _e.lane, _e.seq), True
    query = (
        sa.select(_e.lane, _e.seq, _e.time, _e.kind, _e.actor, _e.subject, _e.data, _e.prev_hash, _e.hash)
        .where(*where)
        .order_by(*order)
        .limit(limit + 1)
    )
    async with database.read() as conn:
        rows = list(audit.stored_events(await conn.execute(query)))
    return _page(
        rows, limit, lambda e: f"{e.time.isoformat()}|{e.lane}|{e.seq}", backwards=backwards, paged=given is not None
    )


async def _scalar(conn: AsyncConnection, query: Any) -> int:
    return int((await conn.execute(query)).scalar_one() or 0)


@dataclass(frozen=True)
class OpenFinding:
    id: int
    identity_id: str
    kind: str
    severity: str
    detail: str | None


async def open_findings_of(database: Database, identity_ids: Sequence[str]) -> dict[str, list[OpenFinding]]:
    """The live findings about each of these identities (a page of them), the most severe first."""
    if not identity_ids:
        return {}
    order = sa.case({s: n for n, s in enumerate(SEVERITIES)}, value=_f.severity, else_=len(SEVERITIES))
    found: dict[str, list[OpenFinding]] = {}
    async with database.read() as conn:
        for row in await conn.execute(
            sa.select(_f.id, _f.identity_id, _f.kind, _f.severity, _f.detail)
            .where(_f.identity_id.in_(list(identity_ids)), _f.status.in_(list(LIVE)))
            .order_by(order, _f.first_seen)
        ):
            found.setdefault(str(row.identity_id), []).append(
                OpenFinding(int(row.id), str(row.identity_id), row.kind, row.severity, row.detail)
            )
    return found
