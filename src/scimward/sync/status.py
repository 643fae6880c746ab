"""One target's health as an operator reads it: links, backlog, failures, latency, what it does not store.

``scimward target status`` and ``GET /admin/v1/targets/{name}/status`` print the same figures.
"""

from __future__ import annotations

import statistics
from typing import Any

from scimward.store.database import Database
from scimward.store.provisioning import LinkStore, Outbox, TargetRepository
from scimward.sync.profile import Capabilities


async def target_status(database: Database, name: str) -> dict[str, Any]:
    row = await TargetRepository(database).by_name(name)
    links = LinkStore(database)
    counts = await links.counts(row.id)
    pending, retrying = await Outbox(database).pending(row.id)
    latencies = sorted(await links.latencies(row.id))
    capabilities = Capabilities.from_config(row.config)
    return {
        "target": row.name,
        "url": row.base_url,
        "quarantined": row.quarantined is not None,
        "quarantine_reason": row.quarantine_reason,
        "linked_users": counts.get("User:active", 0) + counts.get("User:deactivated", 0),
        "deactivated_users": counts.get("User:deactivated", 0),
        "linked_groups": counts.get("Group:active", 0),
        "pending": pending,
        "retrying": retrying,
        "failed": await links.errored(row.id),
        "consecutive_failures": row.consecutive_failures,
        "last_error": row.last_error,
        "last_error_at": row.last_error_at.isoformat() + "Z" if row.last_error_at else None,
        "latency_p50_ms": round(statistics.median(latencies) * 1000, 1) if latencies else None,
        "latency_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1)
        if latencies
        else None,
        "latency_samples": len(latencies),
        # What the target was found not to store: never re-sent, never drift (docs/targets.md).
        "not_stored": list(capabilities.dropped),
        "capabilities": capabilities.to_json(),
    }
