"""Read-only figures about one target, for ``target show`` and the admin API."""

from __future__ import annotations

import sqlalchemy as sa

from scimward.store.database import Database
from scimward.store.tables import links


async def link_counts(database: Database, target_id: int) -> dict[str, int]:
    """The target's links counted by status (``active``, ``deactivated``, ...); absent statuses are absent."""
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(links.c.status, sa.func.count())
            .where(links.c.target_id == target_id)
            .group_by(links.c.status)
            .order_by(links.c.status)
        )
        return {str(status): int(count) for status, count in rows}
