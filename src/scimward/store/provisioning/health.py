"""What the console's pages read of provisioning: each target's health, an identity's account on each target.

Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scimward.store.database import Database
from scimward.store.tables import breakers, findings, links, outbox, push_log, reconcile_runs, targets

_f, _l, _o, _t = findings.c, links.c, outbox.c, targets.c


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


async def target_health(database: Database) -> list[TargetHealth]:
    accounts = (
        sa.select(_l.target_id, sa.func.count().label("n"))
        .where(_l.status == "active")
        .group_by(_l.target_id)
        .subquery()
    )
    backlog = sa.select(_o.target_id, sa.func.count().label("n")).group_by(_o.target_id).subquery()
    open_findings = (
        sa.select(_f.target_id, sa.func.count().label("n")).where(_f.status == "open").group_by(_f.target_id).subquery()
    )
    last_run = (
        sa.select(reconcile_runs.c.target_id, sa.func.max(reconcile_runs.c.started).label("at"))
        .group_by(reconcile_runs.c.target_id)
        .subquery()
    )
    last_push = (
        sa.select(push_log.c.target_id, sa.func.max(push_log.c.finished).label("at"))
        .group_by(push_log.c.target_id)
        .subquery()
    )
    r = reconcile_runs.c
    query = (
        sa.select(
            _t.id,
            _t.name,
            _t.base_url,
            _t.quarantined,
            _t.quarantine_reason,
            _t.consecutive_failures,
            _t.last_error,
            _t.last_error_at,
            sa.func.coalesce(accounts.c.n, 0),
            sa.func.coalesce(backlog.c.n, 0),
            sa.func.coalesce(open_findings.c.n, 0),
            breakers.c.target_id.is_not(None),
            last_run.c.at,
            sa.select(r.status).where(r.target_id == _t.id).order_by(r.started.desc()).limit(1).scalar_subquery(),
            last_push.c.at,
        )
        .outerjoin(accounts, accounts.c.target_id == _t.id)
        .outerjoin(backlog, backlog.c.target_id == _t.id)
        .outerjoin(open_findings, open_findings.c.target_id == _t.id)
        .outerjoin(breakers, breakers.c.target_id == _t.id)
        .outerjoin(last_run, last_run.c.target_id == _t.id)
        .outerjoin(last_push, last_push.c.target_id == _t.id)
        .order_by(_t.name)
    )
    async with database.read() as conn:
        return [
            TargetHealth(
                int(row[0]),
                row[1],
                row[2],
                row[3],
                row[4],
                int(row[5]),
                row[6],
                row[7],
                int(row[8]),
                int(row[9]),
                int(row[10]),
                bool(row[11]),
                row[12],
                row[13],
                row[14],
            )
            for row in await conn.execute(query)
        ]


async def target_names(database: Database) -> dict[int, str]:
    async with database.read() as conn:
        return {int(i): str(n) for i, n in await conn.execute(sa.select(_t.id, _t.name).order_by(_t.name))}


async def accounts_of(database: Database, identity_id: str) -> list[AccountLink]:
    """Each target's account for the identity: its id there, status, the state last acknowledged."""
    waiting = sa.exists().where(_o.target_id == _l.target_id, _o.identity_id == _l.identity_id)
    query = (
        sa.select(_t.name, _l.resource_type, _l.remote_id, _l.status, _l.acknowledged, _l.last_error, _l.state, waiting)
        .join(targets, _t.id == _l.target_id)
        .where(_l.identity_id == identity_id)
        .order_by(_t.name)
    )
    async with database.read() as conn:
        return [AccountLink(*row) for row in await conn.execute(query)]
