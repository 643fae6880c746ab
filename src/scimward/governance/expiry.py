"""Time-bound memberships: a group whose ``membershipExpires`` is N days loses each member N days after
the membership was granted (as the changes table records it), by itself, through the gate.

The removal is a change with source ``expiry`` (actor ``scimward``), one per group; a membership
whose grant the hub never saw (it predates the gate's change log) is measured from the group's
first recorded change, else left alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from scimward.governance.groups import governance_of
from scimward.governance.reviews.remediate import Removal, remove_members
from scimward.store.database import Database
from scimward.store.governance import reviews as rows
from scimward.store.identity import IdentityStore
from scimward.store.timeutil import utcnow

SOURCE = "expiry"
ACTOR = "scimward"


async def expired_memberships(database: Database, now: datetime | None = None) -> dict[str, list[str]]:
    """Group id -> the members whose time-bound membership is past its expiry."""
    now = now or utcnow()
    found: dict[str, list[str]] = {}
    async with database.read() as conn:
        for group in await rows.all_groups(conn):
            days = governance_of(group.id, group.name, group.doc).membership_expires
            if days is None:
                continue
            members = (await rows.members_of(conn, [group.id]))[group.id]
            grants = await rows.grants(conn, [group.id])
            expired = [
                m
                for m, _ in members
                if (grant := grants.get((group.id, m))) is not None and grant.at + timedelta(days=days) <= now
            ]
            if expired:
                found[group.id] = expired
    return found


async def expire_memberships(
    database: Database, store: IdentityStore, now: datetime | None = None
) -> dict[tuple[str, str], Removal]:
    """Remove every membership past its expiry, through the gate (source ``expiry``)."""
    expired = await expired_memberships(database, now)
    if not expired:
        return {}
    return await remove_members(database, store, expired, source=SOURCE, actor=ACTOR)
