"""The daily snapshot of the evidence figures, so the report can draw trends (issue 16, item 4).

One row a day (``evidence_snapshots``): taking it again the same day replaces it. The governance
schedule (``scimward worker``, ``scimward serve``) takes it once a day (``take_if_due``);
``scimward report`` takes today's too.
"""

from __future__ import annotations

from datetime import date

from scimward.governance import metrics
from scimward.governance.evidence_figures import Figures, measure
from scimward.store.database import Database
from scimward.store.governance import evidence
from scimward.store.timeutil import utcnow


async def take(database: Database) -> Figures:
    """Measure now, keep it as today's snapshot, and set the gauges."""
    _, figures = await measure(database)
    kept = figures.snapshot()
    async with database.write() as conn:
        await evidence.save_snapshot(conn, figures.taken.date(), figures.taken, kept)
    metrics.publish(kept)
    return figures


async def history(database: Database, since: date | None = None) -> list[tuple[date, dict[str, object]]]:
    async with database.read() as conn:
        return list(await evidence.snapshots(conn, since))


async def publish_latest(database: Database) -> None:
    """Set the gauges from the latest snapshot (a scrape of /metrics)."""
    async with database.read() as conn:
        kept = await evidence.snapshots(conn, utcnow().date())
    if kept:
        metrics.publish(kept[-1][1])


async def take_if_due(database: Database) -> bool:
    """Take today's snapshot if there is none yet; whether it did."""
    async with database.read() as conn:
        if await evidence.snapshots(conn, utcnow().date()):
            return False
    await take(database)
    return True
