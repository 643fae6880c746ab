"""The reconcile schedule: every target is reconciled every ``reconcile_every`` (default daily).

A target is due when its interval has passed since its latest run started, or, never reconciled,
since it was added (its first sync comes first). Workers call ``run_due_reconciles`` from their
loop; on PostgreSQL several workers may: ``RunStore.start`` lets one run a target at a time, and
the others skip it.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import structlog

from scimward.scim.errors import ScimError
from scimward.store.database import Database
from scimward.store.failures import log_round_failure
from scimward.store.governance import ReconcileBusy, RunStore
from scimward.store.provisioning import TargetRepository
from scimward.store.timeutil import utcnow
from scimward.sync.errors import TargetError
from scimward.sync.reconcile import Reconciler, ReconcileReport
from scimward.sync.secrets import SecretBox, SecretKeyError
from scimward.sync.targets import ReconcilePolicy, Target

log = structlog.get_logger("scimward.sync.schedule")

#: How often a worker looks for due reconciles (``run_reconcile_schedule``).
POLL_SECONDS = 60.0


async def due_targets(database: Database, now: datetime | None = None) -> list[Target]:
    """Targets in service whose reconcile is due, the most overdue first."""
    now = now or utcnow()
    last = await RunStore(database).last_started()
    due: list[tuple[datetime, Target]] = []
    for row in await TargetRepository(database).all():
        if row.quarantined is not None:
            continue
        target = Target.from_row(row)
        try:
            every = ReconcilePolicy.from_config(target.config.extra).every
        except ScimError as exc:
            log.warning("reconcile settings invalid; not scheduled", target=target.name, detail=exc.detail)
            continue
        if every is None:
            continue
        since = last.get(target.id, row.created)
        if since + every <= now:
            due.append((since + every, target))
    return [target for _, target in sorted(due, key=lambda pair: pair[0])]


async def run_due_reconciles(
    database: Database,
    *,
    secrets: SecretBox | None = None,
    reconciler: Reconciler | None = None,
    now: datetime | None = None,
) -> list[ReconcileReport]:
    """Reconcile every due target, one after another; a target that fails is logged and skipped."""
    reconciler = reconciler or Reconciler(database, secrets=secrets)
    reports = []
    for target in await due_targets(database, now):
        try:
            reports.append(await reconciler.run_target(target, trigger="schedule"))
        except ReconcileBusy:
            continue  # another worker has it
        except (ScimError, TargetError, SecretKeyError) as exc:
            log.warning("scheduled reconcile failed", target=target.name, error=str(exc))
    return reports


async def run_reconcile_schedule(
    database: Database, stop: asyncio.Event, *, secrets: SecretBox | None = None, poll_seconds: float = POLL_SECONDS
) -> None:
    """Run due reconciles until ``stop`` is set: a loop for ``scimward serve`` and ``scimward worker``."""
    reconciler = Reconciler(database, secrets=secrets)
    while not stop.is_set():
        try:
            await run_due_reconciles(database, reconciler=reconciler)
        except Exception as exc:  # noqa: BLE001 - the worker loop: logged, and the next round goes on
            log_round_failure(log, "reconcile schedule round failed", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
