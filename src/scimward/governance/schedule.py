"""The governance schedule: what workers do for governance from their loop, once a minute.

Each round closes the campaigns past their due date (undecided items take the default), starts the
next campaign of each group whose review cadence has come round (``Reviews.start_scheduled``), removes
time-bound memberships past their expiry, records reminders for reviewers, opens or resolves the
group hygiene findings, and takes the day's evidence snapshot once a day (``governance.snapshots``).
Every identity change in it goes through the gate; on PostgreSQL several workers may run it (a
campaign is closed once: the close locks it and checks it is still open).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

import structlog

from scimward.governance.expiry import expire_memberships
from scimward.governance.hygiene import CATCH_ALL_SHARE, observe_groups
from scimward.governance.reviews import ReviewError, Reviews
from scimward.governance.snapshots import take_if_due
from scimward.store.database import Database
from scimward.store.failures import log_round_failure
from scimward.store.identity import IdentityStore

log = structlog.get_logger("scimward.governance.schedule")

POLL_SECONDS = 60.0


@dataclass(frozen=True)
class Round:
    closed: list[str]
    started: list[str]
    expired: int
    reminded: int
    findings_opened: int


async def governance_round(
    database: Database, store: IdentityStore, now: datetime | None = None, *, catch_all_share: float = CATCH_ALL_SHARE
) -> Round:
    reviews = Reviews(database, store)
    try:
        closed = await reviews.apply_due(now)
    except ReviewError:  # another worker closed it first
        closed = []
    try:
        started = await reviews.start_scheduled(now)
    except ReviewError:  # another worker started it first
        started = []
    expired = await expire_memberships(database, store, now)
    reminded = await reviews.remind(now)
    observed = await observe_groups(database, now=now, catch_all_share=catch_all_share)
    await take_if_due(database)
    return Round(
        closed,
        started,
        sum(1 for r in expired.values() if r.outcome == "applied"),
        sum(reminded.values()),
        observed.opened,
    )


async def run_governance_schedule(
    database: Database,
    store: IdentityStore,
    stop: asyncio.Event,
    *,
    poll_seconds: float = POLL_SECONDS,
    catch_all_share: float = CATCH_ALL_SHARE,
) -> None:
    """Run governance rounds until ``stop`` is set: a loop for ``scimward serve`` and ``scimward worker``."""
    while not stop.is_set():
        try:
            await governance_round(database, store, catch_all_share=catch_all_share)
        except Exception as exc:  # noqa: BLE001 - the worker loop: logged, and the next round goes on
            log_round_failure(log, "governance round failed", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
