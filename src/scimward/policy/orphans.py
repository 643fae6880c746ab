"""Orphaned accounts that reconcile deactivates: through the outbox, and past the mass-change breaker.

An orphaned account has no identity in the hub, so no change can carry its deactivation. It is
still a deprovisioning, and the one most likely to come in a wave (a restored database that lost
its links, a mapping that stopped matching), so it meets the same breaker as changes do: counted in
the target's window, and once the window passes the threshold the breaker opens. The deactivation
itself is an outbox row (``store.provisioning.outbox.ORPHAN``) that propagate sends as it sends any
push, and holds while the target's breaker is open; ``breaker release`` sends what waits and
``breaker discard`` drops it (policy.approvals).
"""

from __future__ import annotations

from typing import Any

from scimward.policy.document import BreakerSettings, policy_from_json
from scimward.store import decode_json
from scimward.store.database import Database
from scimward.store.governance import gate_rows
from scimward.store.provisioning import outbox
from scimward.store.timeutil import utcnow


async def deactivate_orphan(
    database: Database, target_id: int, target_name: str, resource: str, remote_id: str, run_id: int
) -> bool:
    """Enqueue the deactivation of ``remote_id`` (at the target's ``resource``, Users or Agents),
    counted in its breaker window, in one transaction. True when the breaker holds it (it was open,
    or this deactivation opened it)."""
    now = utcnow()
    async with database.write() as conn:
        rows = list(await conn.execute(gate_rows.CURRENT_POLICY))
        settings = policy_from_json(decode_json(rows[0][1]), int(rows[0][0])).breaker if rows else BreakerSettings()
        await outbox.enqueue_orphan(conn, database.dialect, target_id, resource, remote_id)
        if not settings.enabled:
            return False
        params: dict[str, Any] = {"target_id": target_id}
        if database.dialect == "postgresql":
            await conn.execute(gate_rows.LOCK_TARGET, params)
        if list(await conn.execute(gate_rows.IS_OPEN, params)):
            return True
        count = (
            int((await conn.execute(gate_rows.WINDOW_COUNT, {**params, "since": now - settings.window})).scalar_one())
            + 1
        )
        accounts = int((await conn.execute(gate_rows.ACCOUNTS_ON_TARGET, params)).scalar_one())
        if settings.trips(count, accounts):
            reason = settings.reason(count, accounts, target_name) + " (orphaned accounts, by reconcile)"
            await conn.execute(gate_rows.open_breaker(database.dialect), {**params, "at": now, "reason": reason})
            await conn.execute(
                gate_rows.breaker_finding(database.dialect),
                {
                    **params,
                    "subject": target_name,
                    "at": now,
                    "detail": reason + "; held until `scimward breaker release` or `discard`",
                },
            )
            return True
        await conn.execute(
            gate_rows.INSERT_EVENT,
            {**params, "identity_id": remote_id[:36], "change_id": f"reconcile run {run_id}"[:36], "at": now},
        )
    return False
