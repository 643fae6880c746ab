"""/Me (RFC 7644 3.11): the user a token is bound to."""

from __future__ import annotations

import asyncio

from scimward.scim.errors import NotFound
from scimward.scim.resource_types import USER_TYPE
from scimward.store.database import Database
from scimward.store.identity.identities import IdentityStore
from tests.conftest import LiveServer, issue_token
from tests.scimdata import assert_error, user


def test_me_without_a_bound_user_is_501(live_server: LiveServer) -> None:
    with live_server.client() as client:
        body = assert_error(client.get("/Me"), 501)
    assert "bound" in body["detail"]


def test_me_answers_as_the_bound_user(live_server: LiveServer, unique: str) -> None:
    with live_server.client() as client:
        created = client.post("/Users", json=user(unique, title="Analyst")).json()
    token = issue_token(live_server.database_url, f"me-{unique}", user_id=created["id"])
    with live_server.client(token=token) as client:
        me = client.get("/Me")
        assert me.status_code == 200 and me.json()["id"] == created["id"]
        patched = client.patch(
            "/Me",
            json={
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "title", "value": "Lead"}],
            },
        )
        assert patched.json()["title"] == "Lead"


def test_store_sees_the_me_change(live_server: LiveServer, unique: str) -> None:
    with live_server.client() as client:
        created = client.post("/Users", json=user(unique)).json()
    token = issue_token(live_server.database_url, f"me2-{unique}", user_id=created["id"])
    with live_server.client(token=token) as client:
        assert client.delete("/Me").status_code == 204

    async def gone() -> bool:
        database = Database(live_server.database_url)
        try:
            try:
                await IdentityStore(database).get(USER_TYPE, created["id"])
            except NotFound:
                return True
            return False
        finally:
            await database.dispose()

    assert asyncio.run(gone())
