"""The governance schedule: what workers do for governance from their loop, once a minute.

Each round closes the campaigns past their due date (undecided items take the default), removes
time-bound memberships past their expiry, records reminders for reviewers, and opens or resolves the
group hygiene findings. Every identity change in it goes through the gate; on PostgreSQL several
workers may run it (a campaign is closed once: the close locks it and checks it is still open).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

import structlog

from scimward.governance.expiry import expire_memberships
from scimward.governance.hygiene import observe_groups
from scimward.governance.reviews import ReviewError, Reviews
from scimward.store.database import Database
from scimward.store.identity import IdentityStore

log = structlog.get_logger("scimward.governance.schedule")

POLL_SECONDS = 60.0


@dataclass(frozen=True)
class Round:
    closed: list[str]
    expired: int
    reminded: int
    findings_opened: int


async def governance_round(database: Database, store: IdentityStore, now: datetime | None = None) -> Round:
    reviews = Reviews(database, store)
    try:
        closed = await reviews.apply_due(now)
    except ReviewError:  # another worker closed it first
        closed = []
    expired = await expire_memberships(database, store, now)
    reminded = await reviews.remind(now)
    observed = await observe_groups(database, now=now)
    return Round(closed, sum(1 for r in expired.values() if r.outcome == "applied"), sum(reminded.values()),
                 observed.opened)


async def run_governance_schedule(database: Database, store: IdentityStore, stop: asyncio.Event, *,
                                  poll_seconds: float = POLL_SECONDS) -> None:
    """Run governance rounds until ``stop`` is set: a loop for ``scimward serve`` and ``scimward worker``."""
    while not stop.is_set():
        try:
            await governance_round(database, store)
        except Exception:
            log.exception("governance round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
