"""Deep index pages are exact while another hub commits rows out of order (issue 11, item 7).

An identity's ``created`` is taken before its transaction commits, so a writer that waits (for the
SQLite write lock, for a row lock on PostgreSQL) commits a row that sorts before rows committed
meanwhile by another hub, and before the position anchors that hub built for deep pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.policy import identity_store
from scimward.scim.filter import parse_filter
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.identity import SearchQuery
from scimward.store.identity import _positions as positions
from scimward.store.identity.identities import IdentityStore
from tests.conftest import ServerThread
from tests.hub import open_hub

pytestmark = pytest.mark.anyio


@contextlib.asynccontextmanager
async def writes_held(db: Database, user_name: str) -> AsyncIterator[None]:
    """Make a write of ``db`` wait until the block ends: on SQLite, this hub's write slot is taken; on
    PostgreSQL, an open transaction has claimed ``user_name``, which the write also inserts."""
    if db.dialect == "sqlite":
        async with db.sqlite_write_lock:
            yield
        return
    engine = sa.create_engine(sa.make_url(db.url).set(drivername="postgresql+psycopg"))
    try:
        with engine.connect() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO identities (id, resource_type, doc, created, last_modified, version, "
                    "user_name_lower) VALUES ('blocker', 'User', '{}', now(), now(), 1, :name)"
                ),
                {"name": user_name.lower()},
            )
            yield
            conn.rollback()
    finally:
        engine.dispose()


async def waiting_writers(db: Database) -> int:
    """Backends of ``db`` waiting for a lock (PostgreSQL)."""
    async with db.read() as conn:
        return int(
            (
                await conn.execute(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
        )


async def test_a_row_committed_before_an_anchor_keeps_deep_pages_exact(
    hub_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(positions, "STRIDE", 4)
    async with open_hub(hub_url) as late_hub:
        token = await TokenStore(late_hub.db).create("deep-pages", created_by="tests")
        with ServerThread(Settings(database_url=hub_url)) as server:
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{server.port}/scim/v2",
                timeout=30,
                headers={"Authorization": f"Bearer {token}"},
            ) as scim:

                async def create(name: str) -> str:
                    answer = await scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": name})
                    assert answer.status_code == 201, answer.text
                    return str(answer.json()["id"])

                async def page(start: int, **extra: str) -> list[str]:
                    answer = await scim.get(
                        "/Users", params={"startIndex": start, "count": 5, "attributes": "id", **extra}
                    )
                    assert answer.status_code == 200, answer.text
                    return [r["id"] for r in answer.json()["Resources"]]

                for n in range(6):
                    await create(f"early-{n}")
                async with writes_held(late_hub.db, "late"):
                    late = asyncio.create_task(
                        late_hub.store.create(
                            USER_TYPE, normalize({"schemas": [USER_SCHEMA], "userName": "late"}, USER_TYPE)
                        )
                    )
                    if late_hub.db.dialect == "sqlite":
                        await asyncio.sleep(0.05)  # its id (and created) is taken before it waits for the slot
                    else:
                        while not await waiting_writers(late_hub.db):
                            await asyncio.sleep(0.01)
                    after = [await create(f"after-{n}") for n in range(6)]
                    assert await page(9) == await page(9, filter="id pr")  # the anchors are built now
                    assert not late.done()
                late_id = (await late).id
                walk = await page(1, filter="id pr") + await page(6, filter="id pr") + await page(11, filter="id pr")
                # The late row sorts before rows that committed earlier, and before the anchor at position 8.
                assert walk.index(late_id) < walk.index(after[0])
                for start in (5, 8, 9, 10, 13):
                    assert await page(start) == walk[start - 1 : start + 4], start


async def test_a_first_page_by_user_name_is_one_key_lookup_by_index_or_by_cursor(
    hub_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What an IdP asks before every create (``userName eq``) takes the unique-key statement whether the
    hub pages by index or, by default, by cursor (an empty cursor: the first page, RFC 9865)."""
    database = Database(hub_url)
    try:
        store = identity_store(database)
        name = f"key-{uuid.uuid4().hex[:8]}"
        made = await store.create(USER_TYPE, normalize({"schemas": [USER_SCHEMA], "userName": name}, USER_TYPE))

        async def no_other_path(*_args: object, **_kwargs: object) -> None:
            raise AssertionError("a key lookup took the general search path")

        monkeypatch.setattr(IdentityStore, "_search_by_cursor", no_other_path)
        monkeypatch.setattr(IdentityStore, "_search_by_index", no_other_path)
        for cursor in (None, ""):
            query = SearchQuery(filter=parse_filter(f'userName eq "{name.upper()}"'), count=10, cursor=cursor)
            result = await store.search(USER_TYPE, query)
            assert (result.total, [item.id for item in result.items]) == (1, [made.id])
            assert result.next_cursor is None
    finally:
        await database.dispose()
