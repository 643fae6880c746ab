"""A spray of random tokens is refused every time and writes a bounded number of audit events."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx
import orjson
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.store.auth import TokenStore
from scimward.store.auth.refusals import OVERALL, PER_ADDRESS, RefusalLimiter
from scimward.store.database import Database
from scimward.store.tables import audit_events
from tests.conftest import ServerThread

pytestmark = pytest.mark.anyio


async def refusals(db: Database) -> list[tuple[str, dict[str, Any]]]:
    e = audit_events.c
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(e.kind, e.data).where(e.kind.like("token_refused%")).order_by(e.time, e.lane, e.seq)
        )
        return [(row[0], orjson.loads(row[1])) for row in rows]


async def test_a_spray_of_random_tokens_from_many_addresses_writes_a_bounded_trail(hub_url: str) -> None:
    db = Database(hub_url)
    try:
        revoked = await TokenStore(db).create("revoked-one", created_by="tests")
        await TokenStore(db).revoke("revoked-one")
        with ServerThread(Settings(database_url=hub_url)) as server:
            statuses: list[int] = []
            addresses = [f"127.0.0.{n}" for n in range(1, 13)]
            for address in addresses:  # 12 source addresses (all of 127/8 is loopback), 20 tokens each
                transport = httpx.AsyncHTTPTransport(local_address=address)
                async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", transport=transport) as client:
                    for _ in range(20):
                        answer = await client.get(
                            "/scim/v2/Users", headers={"Authorization": f"Bearer scimward_{secrets.token_urlsafe(32)}"}
                        )
                        statuses.append(answer.status_code)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
                answer = await client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {revoked}"})
                statuses.append(answer.status_code)
        assert statuses == [401] * 241
        found = await refusals(db)
        unknown = [data for kind, data in found if kind == "token_refused" and data["reason"] == "unknown"]
        per_address = {a: sum(1 for d in unknown if d["address"] == a) for a in addresses}
        assert len(unknown) == OVERALL and max(per_address.values()) == PER_ADDRESS
        # A token the hub knows is recorded whatever the spray did.
        assert [d["reason"] for kind, d in found if kind == "token_refused" and d["reason"] != "unknown"] == ["revoked"]
    finally:
        await db.dispose()


async def test_the_refusals_left_out_are_counted_in_a_summary_when_the_window_ends(hub_url: str) -> None:
    db = Database(hub_url)
    try:
        # The window's clock stands still while the 30 arrive (on a loaded machine they can take longer
        # than the window), then moves past the window's end with nothing else arriving.
        now = [0.0]
        tokens = TokenStore(db, RefusalLimiter(window=0.5, clock=lambda: now[0]))
        for _ in range(30):
            await tokens.refused(f"scimward_{secrets.token_urlsafe(32)}", "/scim/v2/Users", None, "10.0.0.1")
        assert len(await refusals(db)) == PER_ADDRESS
        now[0] = 1.0
        deadline = time.monotonic() + 20
        while len(found := await refusals(db)) == PER_ADDRESS and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        kind, data = found[-1]
        assert kind == "token_refused_summary"
        assert data["suppressed"] == 30 - PER_ADDRESS and data["addresses"] == {"10.0.0.1": 30 - PER_ADDRESS}
    finally:
        await db.dispose()
