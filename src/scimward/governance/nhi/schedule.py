"""The NHI worker loop: a round every few seconds, so a leaver's NHIs follow within seconds; the
findings, which read more, every ``FINDINGS_EVERY`` rounds."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from scimward.governance.nhi.lifecycle import nhi_round
from scimward.store.database import Database
from scimward.store.failures import log_round_failure
from scimward.store.identity import IdentityStore

log = structlog.get_logger("scimward.governance.nhi")

POLL_SECONDS = 2.0
FINDINGS_EVERY = 15


async def run_nhi_schedule(
    database: Database,
    store: IdentityStore,
    stop: asyncio.Event,
    user_types: frozenset[str],
    *,
    poll_seconds: float = POLL_SECONDS,
) -> None:
    rounds = 0
    while not stop.is_set():
        try:
            await nhi_round(database, store, user_types, findings=rounds % FINDINGS_EVERY == 0)
        except Exception as exc:  # noqa: BLE001 - the worker loop: logged, and the next round goes on
            log_round_failure(log, "NHI round failed", exc)
        rounds += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=poll_seconds)
