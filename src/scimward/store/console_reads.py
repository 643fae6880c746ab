"""What the console's pages read that no other repository answers: counts, health, links, the trail.

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
from scimward.store.tables import (
    audit_events,
    audit_head,
    breakers,
    changes,
    effective_states,
    findings,
    identities,
    identity_counts,
    links,
    membership_holds,
    memberships,
    outbox,
    push_log,
    reconcile_runs,
    targets,
)

_c, _f, _l, _o, _t, _e = changes.c, findings.c, links.c, outbox.c, targets.c, audit_events.c
SEVERITIES = ("critical", "high", "medium", "low")
#: What audit events record (the audit page filters on them).
AUDIT_KINDS = audit.KINDS


@dataclass(frozen=True)
class Overview:
    pending: int
    open_breakers: int
    open_findings: dict[str, int]
    open_by_kind: dict[str, int]
    identities: dict[str, int]
    diverged: int


@dataclass(frozen=True)
class TargetHealth:
    id: int
    name: str
    base_url: str
    quarantined: datetime | None
    quarantine_reason: str | None
    consecutive_failures: int
    last_error: str | None
    last_error_at: datetime | None
    accounts: int
    backlog: int
    open_findings: int
    breaker_open: bool
    last_reconcile: datetime | None
    last_reconcile_status: str | None
    last_push: datetime | None

    @property
    def health(self) -> str:
        if self.quarantined is not None:
            return "quarantined"
        if self.breaker_open:
            return "breaker open"
        if self.consecutive_failures:
            return "failing"
        return "healthy"


@dataclass(frozen=True)
class AccountLink:
    target: str
    resource_type: str
    remote_id: str
    status: str
    acknowledged: datetime
    last_error: str | None
    state: dict[str, Any] | None
    pending_push: bool


async def overview(database: Database) -> Overview:
    async with database.read() as conn:
        pending = await _scalar(conn, sa.select(sa.func.count()).where(_c.status == "pending"))
        open_breakers = await _scalar(conn, sa.select(sa.func.count()).select_from(breakers))
        by_severity = {str(s): int(n) for s, n in await conn.execute(
            sa.select(_f.severity, sa.func.count()).where(_f.status == "open").group_by(_f.severity))}
        by_kind = {str(k): int(n) for k, n in await conn.execute(
            sa.select(_f.kind, sa.func.count()).where(_f.status == "open").group_by(_f.kind))}
        counts = {str(rt): int(n) for rt, n in await conn.execute(
            sa.select(identity_counts.c.resource_type, sa.func.sum(identity_counts.c.count))
            .group_by(identity_counts.c.resource_type))}
        held = sa.union(sa.select(effective_states.c.identity_id), sa.select(membership_holds.c.group_id)).subquery()
        diverged = await _scalar(conn, sa.select(sa.func.count()).select_from(held))
    return Overview(pending, open_breakers, by_severity, by_kind, counts, diverged)


async def target_health(database: Database) -> list[TargetHealth]:
    accounts = (sa.select(_l.target_id, sa.func.count().label("n")).where(_l.status == "active")
                .group_by(_l.target_id).subquery())
    backlog = sa.select(_o.target_id, sa.func.count().label("n")).group_by(_o.target_id).subquery()
    open_findings = (sa.select(_f.target_id, sa.func.count().label("n")).where(_f.status == "open")
                     .group_by(_f.target_id).subquery())
    last_run = (sa.select(reconcile_runs.c.target_id, sa.func.max(reconcile_runs.c.started).label("at"))
                .group_by(reconcile_runs.c.target_id).subquery())
    last_push = (sa.select(push_log.c.target_id, sa.func.max(push_log.c.finished).label("at"))
                 .group_by(push_log.c.target_id).subquery())
    r = reconcile_runs.c
    query = (
        sa.select(_t.id, _t.name, _t.base_url, _t.quarantined, _t.quarantine_reason, _t.consecutive_failures,
                  _t.last_error, _t.last_error_at, sa.func.coalesce(accounts.c.n, 0),
                  sa.func.coalesce(backlog.c.n, 0), sa.func.coalesce(open_findings.c.n, 0),
                  breakers.c.target_id.is_not(None), last_run.c.at,
                  sa.select(r.status).where(r.target_id == _t.id).order_by(r.started.desc()).limit(1)
                  .scalar_subquery(), last_push.c.at)
        .outerjoin(accounts, accounts.c.target_id == _t.id).outerjoin(backlog, backlog.c.target_id == _t.id)
        .outerjoin(open_findings, open_findings.c.target_id == _t.id)
        .outerjoin(breakers, breakers.c.target_id == _t.id).outerjoin(last_run, last_run.c.target_id == _t.id)
        .outerjoin(last_push, last_push.c.target_id == _t.id).order_by(_t.name))
    async with database.read() as conn:
        return [TargetHealth(int(row[0]), row[1], row[2], row[3], row[4], int(row[5]), row[6], row[7], int(row[8]),
                             int(row[9]), int(row[10]), bool(row[11]), row[12], row[13], row[14])
                for row in await conn.execute(query)]


async def effective_of(database: Database, identity_id: str) -> tuple[bool, dict[str, Any] | None, bool]:
    """(diverged, effective document, deleted by its source): when not diverged, effective is source."""
    e = effective_states.c
    async with database.read() as conn:
        row = (await conn.execute(sa.select(e.doc, e.source_deleted).where(e.identity_id == identity_id))).first()
    if row is None:
        return False, None, False
    return True, row[0], bool(row[1])


async def accounts_of(database: Database, identity_id: str) -> list[AccountLink]:
    """Each target's account for the identity: its id there, status, the state last acknowledged."""
    waiting = sa.exists().where(_o.target_id == _l.target_id, _o.identity_id == _l.identity_id)
    query = (sa.select(_t.name, _l.resource_type, _l.remote_id, _l.status, _l.acknowledged, _l.last_error, _l.state,
                       waiting).join(targets, _t.id == _l.target_id).where(_l.identity_id == identity_id)
             .order_by(_t.name))
    async with database.read() as conn:
        return [AccountLink(*row) for row in await conn.execute(query)]


async def groups_of(database: Database, identity_id: str, limit: int = 100) -> list[tuple[str, str]]:
    """(group id, displayName) of the groups the identity is a member of (source state)."""
    m, i = memberships.c, identities.c
    async with database.read() as conn:
        return [(str(a), str(b)) for a, b in await conn.execute(
            sa.select(i.id, i.display_name).join(memberships, m.group_id == i.id).where(m.member_id == identity_id)
            .order_by(i.display_name_lower).limit(limit))]


async def member_counts(database: Database, group_ids: list[str]) -> dict[str, int]:
    m = memberships.c
    if not group_ids:
        return {}
    async with database.read() as conn:
        return {str(g): int(n) for g, n in await conn.execute(
            sa.select(m.group_id, sa.func.count()).where(m.group_id.in_(group_ids)).group_by(m.group_id))}


async def names_of(database: Database, identity_ids: list[str]) -> dict[str, str]:
    """userName or displayName of each identity, for showing ids as people and groups."""
    i = identities.c
    if not identity_ids:
        return {}
    async with database.read() as conn:
        return {str(a): str(b or c or a) for a, b, c in await conn.execute(
            sa.select(i.id, i.user_name, i.display_name).where(i.id.in_(identity_ids)))}


async def findings_page(database: Database, *, statuses: Sequence[str], target: str | None = None,
                        severity: str | None = None, kinds: Sequence[str] | None = None, owner: str | None = None,
                        offset: int = 0, limit: int = 50) -> tuple[int, list[Any]]:
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
    query = (sa.select(_f.id, _t.name, _f.kind, _f.severity, _f.resource_type, _f.subject, _f.identity_id,
                       _f.attribute, _f.detail, _f.status, _f.first_seen, _f.last_seen, _f.owner, _f.accepted_until,
                       _f.accepted_by, _f.accepted_reason)
             .outerjoin(targets, _t.id == _f.target_id).where(*where)
             .order_by(order, _f.first_seen.desc(), _f.id).offset(offset).limit(limit))
    async with database.read() as conn:
        total = await _scalar(conn, sa.select(sa.func.count()).select_from(base.subquery()))
        return total, list(await conn.execute(query))


async def audit_page(database: Database, *, kind: str | None = None, actor: str | None = None,
                     subject: str | None = None, offset: int = 0, limit: int = 50) -> list[audit.StoredEvent]:
    """Audit events, newest first, filtered on kind, actor and subject (a prefix)."""
    where: list[sa.ColumnElement[bool]] = []
    if kind:
        where.append(_e.kind == kind)
    if actor:
        where.append(_e.actor == actor)
    if subject:
        where.append(_e.subject.startswith(subject, autoescape=True))
    query = (sa.select(_e.lane, _e.seq, _e.time, _e.kind, _e.actor, _e.subject, _e.data, _e.prev_hash, _e.hash)
             .where(*where).order_by(_e.time.desc(), _e.lane, _e.seq.desc()).offset(offset).limit(limit))
    async with database.read() as conn:
        return list(audit.stored_events(await conn.execute(query)))


async def verify_trail(database: Database) -> audit.Verdict:
    """The whole chain checked, as ``scimward`` checks it elsewhere: every event against its lane's head."""
    async with database.read() as conn:
        heads = {int(lane): (int(seq), str(digest)) for lane, seq, digest in await conn.execute(audit.SELECT_HEADS)}
        events = audit.stored_events(await conn.execute(audit.SELECT_EVENTS))
        return audit.verify_chain(events, heads)


async def audit_head_digest(database: Database) -> str:
    h = audit_head.c
    async with database.read() as conn:
        heads = {int(lane): (int(seq), str(digest)) for lane, seq, digest in await conn.execute(
            sa.select(h.lane, h.seq, h.hash))}
    return audit.head_digest(heads)


async def _scalar(conn: AsyncConnection, query: Any) -> int:
    return int((await conn.execute(query)).scalar_one() or 0)
