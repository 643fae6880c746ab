"""Bearer tokens: hashed at rest, expiring, revocable, recording their last use."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import httpx
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.store.auth.tokens import TokenStore
from scimward.store.database import Database, upgrade
from tests.conftest import LiveServer, ServerThread, issue_token
from tests.scimdata import assert_error


def test_only_the_hash_is_stored(database_url: str) -> None:
    token = issue_token(database_url, "hash-check")
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select token_hash from tokens where name = 'hash-check'")).scalar_one()
        dump = " ".join(str(v) for row in conn.execute(sa.text("select * from tokens")) for v in row)
    engine.dispose()
    assert token not in dump and len(stored) == 64


def test_expired_token_is_refused(live_server: LiveServer) -> None:
    token = issue_token(live_server.database_url, "already-expired", expires_in=timedelta(seconds=-1))
    with live_server.client(token=token) as client:
        assert_error(client.get("/Users"), 401)


def test_revoked_token_is_refused(database_url: str) -> None:
    async def run() -> tuple[bool, bool]:
        database = Database(database_url)
        store = TokenStore(database)
        try:
            token = await store.create("to-revoke", created_by="tests")
            before = await store.verify(token) is not None
            await store.revoke("to-revoke")
            return before, await store.verify(token) is not None
        finally:
            await database.dispose()

    assert asyncio.run(run()) == (True, False)


def test_use_is_recorded(live_server: LiveServer) -> None:
    token = issue_token(live_server.database_url, "records-use")
    with live_server.client(token=token) as client:
        client.get("/ServiceProviderConfig")

    async def last_used() -> object:
        database = Database(live_server.database_url)
        try:
            return next(t.last_used for t in await TokenStore(database).list() if t.name == "records-use")
        finally:
            await database.dispose()

    assert asyncio.run(last_used()) is not None


def test_internal_error_carries_a_request_id_and_no_traceback(tmp_path: Path) -> None:
    """A 500 is logged with a request id that the response carries; no traceback reaches the client."""
    url = f"sqlite:///{tmp_path / 'broken.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("drop table identity_emails"))  # a store broken under the hub's feet
    engine.dispose()
    token = issue_token(url, "broken")
    with ServerThread(Settings(database_url=url)) as server:
        response = httpx.post(
            f"http://127.0.0.1:{server.port}/scim/v2/Users",
            json={
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "x",
                "emails": [{"value": "x@example.com"}],
            },
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 500
    request_id = response.headers["x-request-id"]
    assert request_id in response.json()["detail"]
    assert "Traceback" not in response.text and "identity_emails" not in response.text
