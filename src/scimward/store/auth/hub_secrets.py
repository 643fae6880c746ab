"""Secrets the hub makes for itself on first use and keeps in the database for all its processes."""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from scimward.store.database import Database
from scimward.store.tables import hub_secrets
from scimward.store.timeutil import utcnow


async def hub_secret(database: Database, name: str) -> bytes:
    """The secret called ``name``, created once (the first process to ask wins the race)."""
    async with database.read() as conn:
        value = (await conn.execute(sa.select(hub_secrets.c.value).where(hub_secrets.c.name == name))).scalar()
    if value is None:
        insert = postgresql.insert(hub_secrets) if database.dialect == "postgresql" else sqlite.insert(hub_secrets)
        async with database.write() as conn:
            await conn.execute(
                insert.values(name=name, value=secrets.token_hex(32), created=utcnow()).on_conflict_do_nothing()
            )
        async with database.read() as conn:
            value = (await conn.execute(sa.select(hub_secrets.c.value).where(hub_secrets.c.name == name))).scalar_one()
    return bytes.fromhex(value)
