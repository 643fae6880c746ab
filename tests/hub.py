"""A hub for provisioning tests: its store, a propagator, and the few writes tests make through it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from scimward.policy import PolicyGate, identity_store
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, RESOURCE_TYPES, USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.identity.identities import IdentityStore
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import changes
from scimward.sync.propagate import Propagator
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.targets import Target, TargetConfig
from tests.conftest import Peer

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass
class Hub:
    db: Database
    store: IdentityStore
    propagator: Propagator
    secrets: SecretBox

    async def add_target(self, name: str, peer: Peer, config: TargetConfig | None = None) -> Target:
        config = config or TargetConfig()
        row = await TargetRepository(self.db).add(
            name, peer.base_url, self.secrets.encrypt(peer.token), config.to_json()
        )
        return Target.from_row(row)

    async def user(self, user_name: str, **attributes: Any) -> str:
        body = {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": user_name, **attributes}
        return (await self.store.create(USER_TYPE, normalize(body, USER_TYPE))).id

    async def group(self, name: str, members: list[str]) -> str:
        body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": m} for m in members]}
        return (await self.store.create(GROUP_TYPE, normalize(body, GROUP_TYPE))).id

    async def patch(self, rt_name: str, identity_id: str, *operations: dict[str, Any]) -> None:
        rt = RESOURCE_TYPES[rt_name]
        await self.store.patch(rt, identity_id, {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)})

    async def push(self) -> int:
        return await self.propagator.drain()


@contextlib.asynccontextmanager
async def open_hub(hub_url: str, *, fresh_policy: bool = False) -> AsyncIterator[Hub]:
    """A hub on ``hub_url`` with its own key and a fast-polling propagator, closed afterwards. With
    ``fresh_policy`` its gate reads the policy on every decision, so what a test applies counts at once."""
    db = Database(hub_url)
    secrets = SecretBox(key=generate_key())
    propagator = Propagator(db, secrets=secrets, poll_seconds=0.05)
    store = identity_store(db, PolicyGate(db, refresh_seconds=0)) if fresh_policy else identity_store(db)
    try:
        yield Hub(db, store, propagator, secrets)
    finally:
        await propagator.close()
        await db.dispose()


def change_rows(url: str, identity_id: str) -> list[tuple[str, str, str]]:
    """The (op, source, actor) of every change of ``identity_id``, oldest first, read from ``url``."""

    async def inside() -> list[tuple[str, str, str]]:
        database = Database(url)
        try:
            async with database.read() as conn:
                rows = await conn.execute(
                    sa.select(changes.c.op, changes.c.source, changes.c.actor)
                    .where(changes.c.identity_id == identity_id)
                    .order_by(changes.c.created)
                )
                return [(r.op, r.source, r.actor) for r in rows]
        finally:
            await database.dispose()

    return asyncio.run(inside())
