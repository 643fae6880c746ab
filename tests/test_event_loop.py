"""One expensive request does not hold up the others (issue 11, item 1): the work that grows with the
input, and the wait for another process's SQLite write lock, run off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource_types import USER_SCHEMA
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from tests.conftest import ServerThread

pytestmark = pytest.mark.anyio
EMAILS = 1000


@pytest.fixture
async def scim(hub_url: str) -> AsyncIterator[httpx.AsyncClient]:
    db = Database(hub_url)
    try:
        token = await TokenStore(db).create("event-loop", created_by="tests")
    finally:
        await db.dispose()
    with ServerThread(Settings(database_url=hub_url)) as server:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{server.port}", timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as client:
            yield client


def operations(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)}


async def answered_meanwhile(scim: httpx.AsyncClient, slow: asyncio.Task[httpx.Response], path: str) -> int:
    """How many requests for ``path``, sent one after another, were answered before ``slow`` was."""
    answered = 0
    while not slow.done():
        answer = await scim.get(path)
        assert answer.status_code == 200, answer.text
        if not slow.done():
            answered += 1
    return answered


async def test_a_heavy_patch_does_not_hold_up_healthz_or_reads(scim: httpx.AsyncClient) -> None:
    created = await scim.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": "many-emails"})
    user = f"/scim/v2/Users/{created.json()['id']}"
    filled = await scim.patch(
        user,
        json=operations(
            *(
                {"op": "add", "path": "emails", "value": [{"value": f"u{n}@example.com", "type": "work"}]}
                for n in range(EMAILS)
            )
        ),
    )
    assert filled.status_code == 200, filled.text
    # 49 filtered replaces walk 49,000 values: the most one PATCH may (50,000), a third of a second of CPU.
    heavy = operations(
        *({"op": "replace", "path": f'emails[value eq "u{n}@example.com"].type', "value": "home"} for n in range(49))
    )
    patch = asyncio.create_task(scim.patch(user, json=heavy))
    await asyncio.sleep(0.05)  # let it arrive, so that what follows is sent while it computes
    health = await answered_meanwhile(scim, patch, "/healthz")
    assert (await patch).status_code == 200
    patch = asyncio.create_task(scim.patch(user, json=heavy))
    await asyncio.sleep(0.05)
    reads = await answered_meanwhile(scim, patch, f"{user}?attributes=userName")
    assert (await patch).status_code == 200
    assert health >= 1 and reads >= 1


async def test_a_write_waiting_for_another_process_holds_up_nothing_else(scim: httpx.AsyncClient, hub_url: str) -> None:
    if not hub_url.startswith("sqlite"):
        pytest.skip("PostgreSQL writers wait on row locks in the server, never on the event loop")
    created = await scim.post("/scim/v2/Users", json={"schemas": [USER_SCHEMA], "userName": "waiting"})
    user = f"/scim/v2/Users/{created.json()['id']}"
    other = sqlite3.connect(sa.make_url(hub_url).database or "", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing
        patch = asyncio.create_task(
            scim.patch(user, json=operations({"op": "replace", "path": "title", "value": "Engineer"}))
        )
        await asyncio.sleep(0.2)  # let it reach the lock, so that what follows is sent while it waits
        for path in ("/healthz", user, "/scim/v2/Users?startIndex=1&count=1"):
            answer = await scim.get(path)
            assert answer.status_code == 200, (path, answer.text)
        assert not patch.done()  # it cannot finish while the lock is held
    finally:
        other.execute("COMMIT")
        other.close()
    answer = await patch
    assert answer.status_code == 200 and answer.json()["title"] == "Engineer"
