"""The leaver cascade end to end, on SQLite and PostgreSQL: a hub serving SCIM with its workers, a real
downstream scimward as the target. Deactivating an owner over SCIM (policy ``owner_leaves: disable``,
``grace: 0``) disables, through the gate, the NHIs that owner alone owns, and propagation deactivates
their Agents downstream within seconds; a co-owned NHI stays; a hub token the owner holds gets 401."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.policy import policies
from scimward.settings import Settings
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import changes
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import TargetConfig
from tests.conftest import Peer, ServerThread, issue_token
from tests.scimdata import patch, user

AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
NHI = "urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"
POLICY = "nhi:\n  owner_leaves: disable\n  grace: 0s\n"


@dataclass
class LiveHub:
    url: str
    scim: httpx.Client
    port: int


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


async def _setup(url: str, downstream: Peer, policy: str) -> None:
    database = Database(url)
    try:
        await policies.apply(database, policy, "tests")
        config = TargetConfig(push_nhis=True, environment="prod")
        await TargetRepository(database).add(
            "downstream", downstream.base_url, SecretBox().encrypt(downstream.token), config.to_json()
        )
    finally:
        await database.dispose()


@pytest.fixture
def live_hub(hub_url: str, downstream: Peer) -> Iterator[LiveHub]:
    run(_setup(hub_url, downstream, POLICY))
    token = issue_token(hub_url, "idp")
    with (
        ServerThread(Settings(database_url=hub_url)) as server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        yield LiveHub(hub_url, client, server.port)


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.2)


def downstream_agent(downstream: Peer, hub_id: str) -> dict[str, Any] | None:
    with httpx.Client(base_url=downstream.base_url, headers={"Authorization": f"Bearer {downstream.token}"}) as c:
        found = c.get("/Agents", params={"filter": f'externalId eq "{hub_id}"'}).json()["Resources"]
    return found[0] if found else None


def agent(client: httpx.Client, name: str, owners: list[str]) -> str:
    response = client.post(
        "/Agents",
        json={
            "schemas": [AGENT, NHI],
            "name": name,
            "active": True,
            "owners": [{"value": o, "type": "User"} for o in owners],
            NHI: {"kind": "service_account", "purpose": "tests", "environment": "prod"},
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_deactivating_an_owner_deprovisions_the_nhis_it_owns_alone(live_hub: LiveHub, downstream: Peer) -> None:
    scim = live_hub.scim
    alice = scim.post("/Users", json=user("alice", active=True)).json()["id"]
    bob = scim.post("/Users", json=user("bob", active=True)).json()["id"]
    alone = [agent(scim, "nightly-export", [alice]), agent(scim, "invoice-bot", [alice])]
    shared = agent(scim, "shared-sync", [alice, bob])
    others = agent(scim, "bobs-bot", [bob])
    bot_token = run(_owned_token(live_hub.url, alice))
    assert scim.get("/Users", headers={"Authorization": f"Bearer {bot_token}"}).status_code == 200
    wait_for(lambda: all(downstream_agent(downstream, i) is not None for i in [*alone, shared, others]))
    assert all(downstream_agent(downstream, i)["active"] is True for i in alone)  # type: ignore[index]

    started = time.monotonic()
    response = scim.patch(f"/Users/{alice}", json=patch({"op": "replace", "path": "active", "value": False}))
    assert response.status_code == 200, response.text

    wait_for(lambda: all(downstream_agent(downstream, i)["active"] is False for i in alone))  # type: ignore[index]
    assert time.monotonic() - started < 20
    for identity in alone:
        assert scim.get(f"/Agents/{identity}").json()["active"] is False
    # Co-owned, and owned by someone else: untouched, here and downstream.
    for identity in (shared, others):
        assert scim.get(f"/Agents/{identity}").json()["active"] is True
        assert downstream_agent(downstream, identity)["active"] is True  # type: ignore[index]
    wait_for(lambda: scim.get("/Users", headers={"Authorization": f"Bearer {bot_token}"}).status_code == 401)
    # The cascade's changes went through the gate, with their own source.
    sources = run(_sources(live_hub.url, alone))
    assert sources == {(i, "nhi:cascade", "deactivate", "applied") for i in alone}


async def _owned_token(url: str, owner: str) -> str:
    database = Database(url)
    try:
        return await TokenStore(database).create("alice-bot", created_by="tests", owner_id=owner)
    finally:
        await database.dispose()


async def _sources(url: str, ids: list[str]) -> set[tuple[str, str, str, str]]:
    database = Database(url)
    try:
        async with database.read() as conn:
            rows = await conn.execute(
                sa.select(changes.c.identity_id, changes.c.source, changes.c.op, changes.c.status).where(
                    changes.c.identity_id.in_(ids), changes.c.source == "nhi:cascade"
                )
            )
            return {(r.identity_id, r.source, r.op, r.status) for r in rows}
    finally:
        await database.dispose()
