"""One expensive request does not hold up the others (issue 11, item 1): the work that grows with the
input, and the wait for another process's SQLite write lock, run off the event loop."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from typing import Any, NamedTuple

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


async def answered_meanwhile(scim: httpx.AsyncClient, slow: asyncio.Task[httpx.Response], path: str) -> Meanwhile:
    """The requests for ``path``, sent one after another, that were answered before ``slow`` was, and the
    longest any of them took."""
    answered, longest = 0, 0.0
    while not slow.done():
        sent = time.perf_counter()
        answer = await scim.get(path)
        assert answer.status_code == 200, answer.text
        if not slow.done():
            answered += 1
            longest = max(longest, time.perf_counter() - sent)
    return Meanwhile(answered, longest)


class Meanwhile(NamedTuple):
    answered: int
    longest: float


async def heavy_patch_and(
    scim: httpx.AsyncClient, user: str, body: dict[str, Any], path: str
) -> tuple[Meanwhile, float]:
    """What ``answered_meanwhile`` says of ``path`` while ``body`` is applied to ``user``, and how long that took."""
    started = time.perf_counter()
    patch = asyncio.create_task(scim.patch(user, json=body))
    await asyncio.sleep(0.05)  # let it arrive, so that what follows is sent while it computes
    meanwhile = await answered_meanwhile(scim, patch, path)
    assert (await patch).status_code == 200
    return meanwhile, time.perf_counter() - started


async def test_a_heavy_patch_does_not_hold_up_healthz_or_reads(scim: httpx.AsyncClient) -> None:
    """Answered meanwhile, and promptly: a PATCH computed on the event loop would still let a request
    through while it waits on the database afterwards (on PostgreSQL, most of its time), but that
    request would have waited for the whole computation first."""
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
    for path in ("/healthz", f"{user}?attributes=userName"):
        meanwhile, took = await heavy_patch_and(scim, user, heavy, path)
        assert meanwhile.answered >= 1, path
        assert meanwhile.longest < took / 3, (path, meanwhile, took)


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
