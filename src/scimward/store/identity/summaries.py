"""Short reads of identities for pages: names for ids, a member's groups, member counts.

Nothing here writes.
"""

from __future__ import annotations

import sqlalchemy as sa

from scimward.store.database import Database
from scimward.store.tables import identities, memberships


async def groups_of(database: Database, identity_id: str, limit: int = 100) -> list[tuple[str, str]]:
    """(group id, displayName) of the groups the identity is a member of (source state)."""
    m, i = memberships.c, identities.c
    async with database.read() as conn:
        return [
            (str(a), str(b))
            for a, b in await conn.execute(
                sa.select(i.id, i.display_name)
                .join(memberships, m.group_id == i.id)
                .where(m.member_id == identity_id)
                .order_by(i.display_name_lower)
                .limit(limit)
            )
        ]


async def member_counts(database: Database, group_ids: list[str]) -> dict[str, int]:
    m = memberships.c
    if not group_ids:
        return {}
    async with database.read() as conn:
        return {
            str(g): int(n)
            for g, n in await conn.execute(
                sa.select(m.group_id, sa.func.count()).where(m.group_id.in_(group_ids)).group_by(m.group_id)
            )
        }


async def names_of(database: Database, identity_ids: list[str]) -> dict[str, str]:
    """userName or displayName of each identity, for showing ids as people and groups."""
    i = identities.c
    if not identity_ids:
        return {}
    async with database.read() as conn:
        return {
            str(a): str(b or c or a)
            for a, b, c in await conn.execute(
                sa.select(i.id, i.user_name, i.display_name).where(i.id.in_(identity_ids))
            )
        }
