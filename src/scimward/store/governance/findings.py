"""Findings and reconcile runs.

A finding is one governance problem: (target, kind, subject, attribute), with a severity, an owner
who must act on it and a status. Reconcile's findings are a target's drift, with its three values;
governance's (``observe``) belong to the hub itself and have no target. Every kind is described,
with its framework ids, in ``scimward.governance.catalogue``.

A finding is *live* while open, acknowledged (someone is on it) or risk_accepted (until a date,
by someone, for a reason; open again once that date passes), and resolved once what it found is
gone. Live findings are one row per key.

A reconcile run
records every drift it sees with its own start time as ``last_seen``: a drift already open keeps its
row and its ``first_seen``; a new one gets a row. A run that completes then resolves the target's
open findings it did not see (their ``last_seen`` is older than its start): drift that was fixed in
the application, or by a repair, closes on the next run. A run that fails resolves nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.scim.errors import ScimError
from scimward.store.database import Database
from scimward.store.governance import audit_records
from scimward.store.tables import FINDING_LIVE, findings, reconcile_runs, targets
from scimward.store.timeutil import utcnow

_f, _r = findings.c, reconcile_runs.c
OPEN, ACKNOWLEDGED, RISK_ACCEPTED, RESOLVED = "open", "acknowledged", "risk_accepted", "resolved"
#: A finding in one of these still stands; only ``resolved`` is history.
LIVE = (OPEN, ACKNOWLEDGED, RISK_ACCEPTED)
STATUSES = (*LIVE, RESOLVED)
#: Kinds of finding that propagate opens (a push parked as poison), not reconcile.
PUSH_KINDS = ("push_poisoned",)
#: A running reconcile that has not said it is alive for this long is taken to have died.
STALE_AFTER = timedelta(minutes=10)


#: Resolve a parked push's finding once a push of that identity to that target succeeded.
_RESOLVE_PUSHED = (
    findings.update()
    .where(
        _f.target_id == sa.bindparam("b_target_id"),
        _f.subject == sa.bindparam("b_subject"),
        _f.kind == PUSH_KINDS[0],
        _f.status != RESOLVED,
    )
    .values(status=RESOLVED, resolved_at=sa.bindparam("b_now"))
)


async def resolve_pushed(conn: AsyncConnection, pairs: Sequence[tuple[int, str]]) -> None:
    """Inside a batch's commit: the pushes of these (target, identity) went through, so a finding
    that parked one of them is resolved. One prepared statement for the batch, whatever its size."""
    if pairs:
        now = utcnow()
        await conn.execute(_RESOLVE_PUSHED, [{"b_target_id": t, "b_subject": i, "b_now": now} for t, i in pairs])


class ReconcileBusy(ScimError):
    """Another reconcile of the same target is running."""

    status = 409


@dataclass(frozen=True)
class Finding:
    id: int
    #: The target's name; None for a finding about the hub itself.
    target: str | None
    kind: str
    severity: str
    resource_type: str
    subject: str
    identity_id: str | None
    remote_id: str | None
    attribute: str
    desired: Any
    last_pushed: Any
    actual: Any
    detail: str | None
    status: str
    first_seen: datetime
    last_seen: datetime
    resolved_at: datetime | None
    repaired_at: datetime | None
    repair: str | None
    owner: str | None = None
    accepted_until: datetime | None = None
    accepted_by: str | None = None
    accepted_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str | None:
            return moment.isoformat() + "Z" if moment is not None else None

        return {
            "id": self.id,
            "target": self.target,
            "kind": self.kind,
            "severity": self.severity,
            "resource_type": self.resource_type,
            "subject": self.subject,
            "identity_id": self.identity_id,
            "remote_id": self.remote_id,
            "attribute": self.attribute,
            "desired": self.desired,
            "last_pushed": self.last_pushed,
            "actual": self.actual,
            "detail": self.detail,
            "status": self.status,
            "owner": self.owner,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "resolved_at": iso(self.resolved_at),
            "repaired_at": iso(self.repaired_at),
            "repair": self.repair,
            "accepted_until": iso(self.accepted_until),
            "accepted_by": self.accepted_by,
            "accepted_reason": self.accepted_reason,
        }


@dataclass(frozen=True)
class Observation:
    """A problem a pass sees now, before it is a finding: what every pass hands the store.

    A reconcile run's drift (``FindingStore.record``, its target given there) and a governance
    pass's problem (``observe``) alike. It is the input; ``Finding`` is the stored row with its
    life: an id, a status, when it was first and last seen, an acceptance. Keeping the two apart
    keeps the row's own fields out of what a pass can say.
    """

    kind: str
    subject: str
    severity: str
    attribute: str = ""
    resource_type: str = "User"
    identity_id: str | None = None
    target_id: int | None = None
    owner: str | None = None
    detail: str | None = None
    #: What was found, for a person and a report (stored as the finding's ``actual``).
    data: Any = None
    #: A reconcile's drift: the account's id on the target, and the values the hub wanted and last pushed.
    remote_id: str | None = None
    desired: Any = None
    last_pushed: Any = None
    #: The repair the run made for it (None: reported only).
    repair: str | None = None


@dataclass(frozen=True)
class Observed:
    opened: int
    kept: int
    resolved: int


_REOPEN_EXPIRED = (
    findings.update().where(_f.status == RISK_ACCEPTED, _f.accepted_until < sa.bindparam("b_now")).values(status=OPEN)
)


async def reopen_expired(conn: AsyncConnection, now: datetime | None = None) -> int:
    """Accepted risks whose acceptance ran out are open again."""
    result = await conn.execute(_REOPEN_EXPIRED, {"b_now": now or utcnow()})
    return int(result.rowcount)


def _key(target_id: int | None, kind: str, subject: str, attribute: str) -> tuple[int | None, str, str, str]:
    return (target_id, kind, subject, attribute)


async def observe(
    conn: AsyncConnection, kinds: Sequence[str], observations: Sequence[Observation], *, now: datetime | None = None
) -> Observed:
    """Make the live findings of ``kinds`` exactly what a pass observed, inside the caller's transaction.

    An observation not yet live opens a finding; one already live keeps its row, its status (an
    acknowledgement or an accepted risk stands) and its ``first_seen``, and moves ``last_seen``; a
    live finding of these kinds that the pass did not observe is resolved. Call it with every
    observation of the kinds it names, never a part of them: what is left out is taken as fixed.
    """
    stray = {o.kind for o in observations} - set(kinds)
    if stray:
        raise ValueError(f"observations of kinds the pass does not own: {sorted(stray)}")
    now = now or utcnow()
    if conn.dialect.name == "postgresql":  # two passes over the same kinds must not both open a row
        await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_LOCK_KEY)))
    await reopen_expired(conn, now)
    live = {
        _key(r.target_id, r.kind, r.subject, r.attribute): int(r.id)
        for r in await conn.execute(
            sa.select(_f.id, _f.target_id, _f.kind, _f.subject, _f.attribute).where(
                _f.kind.in_(list(kinds)), _f.status != RESOLVED
            )
        )
    }
    seen = {_key(o.target_id, o.kind, o.subject, o.attribute): o for o in observations}
    new = [o for key, o in seen.items() if key not in live]
    kept = [(live[key], o) for key, o in seen.items() if key in live]
    gone = [row_id for key, row_id in live.items() if key not in seen]
    if new:
        await conn.execute(
            findings.insert(),
            [
                {
                    "target_id": o.target_id,
                    "kind": o.kind,
                    "severity": o.severity,
                    "resource_type": o.resource_type,
                    "subject": o.subject,
                    "identity_id": o.identity_id,
                    "remote_id": o.remote_id,
                    "attribute": o.attribute,
                    "desired": o.desired,
                    "last_pushed": o.last_pushed,
                    "actual": o.data,
                    "detail": o.detail,
                    "owner": o.owner,
                    "status": OPEN,
                    "first_seen": now,
                    "last_seen": now,
                }
                for o in new
            ],
        )
    if kept:
        await conn.execute(
            findings.update()
            .where(_f.id == sa.bindparam("b_id"))
            .values(
                severity=sa.bindparam("b_severity"),
                owner=sa.bindparam("b_owner"),
                detail=sa.bindparam("b_detail"),
                actual=sa.bindparam("b_actual"),
                last_seen=now,
            ),
            [
                {"b_id": row_id, "b_severity": o.severity, "b_owner": o.owner, "b_detail": o.detail, "b_actual": o.data}
                for row_id, o in kept
            ],
        )
    for start in range(0, len(gone), 500):
        await conn.execute(
            findings.update().where(_f.id.in_(gone[start : start + 500])).values(status=RESOLVED, resolved_at=now)
        )
    return Observed(len(new), len(kept), len(gone))


#: The advisory lock that serialises governance passes on PostgreSQL ("findings" in ASCII).
_LOCK_KEY = 0x66696E64696E6773


class UnknownFinding(ScimError):
    status = 404


class FindingStateError(ScimError):
    """A status change the finding's status does not allow (accepting a resolved finding)."""

    status = 409


@dataclass(frozen=True)
class Run:
    id: int
    target_id: int
    started: datetime


class FindingStore:
    def __init__(self, database: Database) -> None:
        self.db = database

    async def record(self, target_id: int, seen: datetime, found: Sequence[Observation]) -> None:
        """Open or refresh the target's findings from a run's observations (each one's ``target_id`` is
        ``target_id``): a persisting one keeps ``first_seen`` and moves ``last_seen`` to ``seen``."""
        if not found:
            return
        # One row per key in a statement: PostgreSQL refuses to upsert the same row twice in one.
        found = list({(f.kind, f.subject, f.attribute): f for f in found}.values())
        insert: Any = postgresql.insert(findings) if self.db.dialect == "postgresql" else sqlite.insert(findings)
        rows = [
            {
                "target_id": target_id,
                "kind": f.kind,
                "severity": f.severity,
                "resource_type": f.resource_type,
                "subject": f.subject,
                "identity_id": f.identity_id,
                "remote_id": f.remote_id,
                "attribute": f.attribute,
                "desired": f.desired,
                "last_pushed": f.last_pushed,
                "actual": f.data,
                "detail": f.detail,
                "status": OPEN,
                "first_seen": seen,
                "last_seen": seen,
                "repaired_at": seen if f.repair else None,
                "repair": f.repair,
            }
            for f in found
        ]
        async with self.db.write() as conn:
            for start in range(0, len(rows), 200):
                statement = insert.values(rows[start : start + 200])
                new = statement.excluded
                await conn.execute(
                    statement.on_conflict_do_update(
                        index_elements=[_f.target_id, _f.kind, _f.subject, _f.attribute],
                        # A literal, not a parameter: PostgreSQL must prove from the statement alone that
                        # it targets the partial index, and a prepared statement's parameter proves nothing.
                        index_where=sa.text(FINDING_LIVE),
                        set_={
                            "severity": new.severity,
                            "identity_id": new.identity_id,
                            "remote_id": new.remote_id,
                            "desired": new.desired,
                            "last_pushed": new.last_pushed,
                            "actual": new.actual,
                            "detail": new.detail,
                            "last_seen": new.last_seen,
                            "repaired_at": sa.func.coalesce(new.repaired_at, _f.repaired_at),
                            "repair": sa.func.coalesce(new.repair, _f.repair),
                        },
                    )
                )

    async def resolve_unseen(self, target_id: int, seen: datetime, kinds: Sequence[str]) -> int:
        """Close the target's live findings of ``kinds`` (a reconcile's) that the run started at
        ``seen`` did not see again.

        Only the run's own kinds: a read of the target does not show that a parked push went
        through (its next success closes that), nor that a breaker was released.
        """
        async with self.db.write() as conn:
            result = await conn.execute(
                findings.update()
                .where(_f.target_id == target_id, _f.status != RESOLVED, _f.last_seen < seen, _f.kind.in_(list(kinds)))
                .values(status=RESOLVED, resolved_at=utcnow())
            )
            return int(result.rowcount)

    async def counts(self, target_id: int, seen: datetime) -> dict[str, dict[str, int]]:
        """kind -> {"open", "new", "repaired"} for the findings the run started at ``seen`` saw."""
        query = (
            sa.select(
                _f.kind,
                sa.func.count(),
                sa.func.count().filter(_f.first_seen == seen),
                sa.func.count().filter(_f.repaired_at == seen),
            )
            .where(_f.target_id == target_id, _f.status != RESOLVED, _f.last_seen == seen)
            .group_by(_f.kind)
        )
        async with self.db.read() as conn:
            return {
                row[0]: {"open": int(row[1]), "new": int(row[2]), "repaired": int(row[3])}
                for row in await conn.execute(query)
            }

    async def list(
        self,
        *,
        target_id: int | None = None,
        include_resolved: bool = False,
        limit: int | None = None,
        kinds: Sequence[str] | None = None,
        statuses: Sequence[str] | None = None,
        owner: str | None = None,
    ) -> list[Finding]:
        """Findings, live ones only unless ``include_resolved`` or ``statuses`` say otherwise: the
        most severe and oldest first. ``kinds`` narrows to those kinds (a framework's, say)."""
        order = sa.case({"critical": 0, "high": 1, "medium": 2, "low": 3}, value=_f.severity, else_=4)
        query = (
            sa.select(findings, targets.c.name.label("target_name"))
            .outerjoin(targets, targets.c.id == _f.target_id)
            .order_by(*([_f.status] if include_resolved else []), order, _f.first_seen, _f.id)
        )
        if target_id is not None:
            query = query.where(_f.target_id == target_id)
        if statuses:
            query = query.where(_f.status.in_(list(statuses)))
        elif not include_resolved:
            query = query.where(_f.status != RESOLVED)
        if kinds is not None:
            query = query.where(_f.kind.in_(list(kinds)))
        if owner is not None:
            query = query.where(_f.owner == owner)
        if limit is not None:
            query = query.limit(limit)
        async with self.db.write() as conn:
            await reopen_expired(conn)
        async with self.db.read() as conn:
            return [_finding(r) for r in await conn.execute(query)]

    async def get(self, finding_id: int) -> Finding:
        query = (
            sa.select(findings, targets.c.name.label("target_name"))
            .outerjoin(targets, targets.c.id == _f.target_id)
            .where(_f.id == finding_id)
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            raise UnknownFinding(f"no finding {finding_id}")
        return _finding(row)

    async def accept(self, finding_id: int, *, until: datetime, reason: str, actor: str) -> Finding:
        """Accept a live finding's risk until ``until``: it stays live, and opens again after."""
        if not reason.strip():
            raise FindingStateError("accepting a risk needs a reason")
        if until <= utcnow():
            raise FindingStateError("accepting a risk needs an end in the future")
        async with self.db.write() as conn:
            result = await conn.execute(
                findings.update()
                .where(_f.id == finding_id, _f.status != RESOLVED)
                .values(status=RISK_ACCEPTED, accepted_until=until, accepted_by=actor, accepted_reason=reason)
            )
            if not result.rowcount:
                exists = (await conn.execute(sa.select(_f.status).where(_f.id == finding_id))).first()
                if exists is None:
                    raise UnknownFinding(f"no finding {finding_id}")
                raise FindingStateError(
                    f"finding {finding_id} is {exists.status}: only a live finding's risk can be accepted"
                )
            await audit_records.finding_status(
                finding_id, RISK_ACCEPTED, actor, {"until": until.isoformat(timespec="seconds") + "Z", "reason": reason}
            ).append(conn)
        return await self.get(finding_id)

    async def count_open(self, target_id: int | None = None) -> int:
        query = sa.select(sa.func.count()).where(_f.status == OPEN)
        if target_id is not None:
            query = query.where(_f.target_id == target_id)
        async with self.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())


def _finding(r: Any) -> Finding:
    return Finding(
        r.id,
        r.target_name,
        r.kind,
        r.severity,
        r.resource_type,
        r.subject,
        r.identity_id,
        r.remote_id,
        r.attribute,
        r.desired,
        r.last_pushed,
        r.actual,
        r.detail,
        r.status,
        r.first_seen,
        r.last_seen,
        r.resolved_at,
        r.repaired_at,
        r.repair,
        r.owner,
        r.accepted_until,
        r.accepted_by,
        r.accepted_reason,
    )


class RunStore:
    """Reconcile runs: one at a time per target, and when each target was last reconciled."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def start(self, target_id: int, trigger: str, repair: bool, stale_after: timedelta = STALE_AFTER) -> Run:
        """Begin a run, unless another run of the target is alive (``ReconcileBusy``)."""
        now = utcnow()
        async with self.db.write() as conn:
            lock = sa.select(targets.c.id).where(targets.c.id == target_id)
            if self.db.dialect == "postgresql":  # SQLite's write transaction already excludes other writers
                lock = lock.with_for_update()
            await conn.execute(lock)
            alive = (
                await conn.execute(
                    sa.select(_r.id, _r.started).where(
                        _r.target_id == target_id, _r.status == "running", _r.heartbeat > now - stale_after
                    )
                )
            ).first()
            if alive is not None:
                raise ReconcileBusy(
                    f"reconcile {alive.id} of this target is running (started {alive.started:%H:%M:%S} UTC)"
                )
            await conn.execute(
                reconcile_runs.update()
                .where(_r.target_id == target_id, _r.status == "running")
                .values(status="failed", finished=now, error="abandoned: no heartbeat")
            )
            run_id = (
                await conn.execute(
                    reconcile_runs.insert()
                    .values(
                        target_id=target_id,
                        trigger=trigger,
                        repair=repair,
                        status="running",
                        started=now,
                        heartbeat=now,
                    )
                    .returning(_r.id)
                )
            ).scalar_one()
        return Run(int(run_id), target_id, now)

    async def heartbeat(self, run_id: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(reconcile_runs.update().where(_r.id == run_id).values(heartbeat=utcnow()))

    async def finish(
        self, run_id: int, *, users_read: int, groups_read: int, counts: dict[str, Any] | None, error: str | None = None
    ) -> None:
        now = utcnow()
        async with self.db.write() as conn:
            target_id = (
                await conn.execute(
                    reconcile_runs.update()
                    .where(_r.id == run_id)
                    .values(
                        status="failed" if error else "ok",
                        finished=now,
                        heartbeat=now,
                        users_read=users_read,
                        groups_read=groups_read,
                        counts=counts,
                        error=error[:2000] if error else None,
                    )
                    .returning(_r.target_id)
                )
            ).scalar_one()
            await audit_records.reconcile_run(
                run_id,
                int(target_id),
                "failed" if error else "ok",
                {
                    "users_read": users_read,
                    "groups_read": groups_read,
                    "counts": counts or {},
                    "error": error[:2000] if error else None,
                },
            ).append(conn)

    async def runs(self, target_id: int, *, limit: int = 20) -> list[dict[str, Any]]:
        """The target's reconcile runs, the latest first."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(reconcile_runs)
                .where(_r.target_id == target_id)
                .order_by(_r.started.desc(), _r.id.desc())
                .limit(limit)
            )

            def iso(moment: datetime | None) -> str | None:
                return moment.isoformat() + "Z" if moment is not None else None

            return [
                {
                    "id": int(r.id),
                    "trigger": r.trigger,
                    "repair": bool(r.repair),
                    "status": r.status,
                    "started": iso(r.started),
                    "finished": iso(r.finished),
                    "users_read": int(r.users_read),
                    "groups_read": int(r.groups_read),
                    "counts": r.counts,
                    "error": r.error,
                }
                for r in rows
            ]

    async def last_started(self) -> dict[int, datetime]:
        """target id -> when its latest run started."""
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(_r.target_id, sa.func.max(_r.started)).group_by(_r.target_id))
            return {int(row[0]): row[1] for row in rows}
