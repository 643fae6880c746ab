"""Reconciling non-human identities (issue 14, items 7 and 8) against real servers on loopback: a second
scimward keeps them at /Agents, scim2-server among its Users. A pushed NHI is no orphan; what the
application's admins change on its account is drift like a User's, and repair converges."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import AGENT_TYPE
from scimward.store.database import Database, upgrade
from scimward.store.governance.findings import FindingStore
from scimward.sync.client import eq_filter
from scimward.sync.nhi_mapping import nhi_resource
from scimward.sync.propagate import Propagator
from scimward.sync.reconcile import Reconciler
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import TargetConfig
from tests import forkserver
from tests.conftest import Peer
from tests.hub import Hub, open_hub

pytestmark = [pytest.mark.anyio, pytest.mark.emptied_peers]
AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
NHI = "urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url) as opened:
        yield opened


async def account(peer: Peer, resource: str, hub_id: str) -> dict[str, Any]:
    async with peer.client() as client:
        [found] = await client.find(resource, eq_filter("externalId", hub_id))
        return found


async def test_pushed_nhis_are_no_orphans_and_their_drift_is_found_and_repaired(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer, TargetConfig(push_nhis=True))
    await hub.user("person@corp.example", displayName="Person", active=True)
    body = {
        "schemas": [AGENT, NHI],
        "name": "nightly-bot",
        "displayName": "Nightly",
        "active": True,
        NHI: {"kind": "bot"},
    }
    bot = (await hub.store.create(AGENT_TYPE, normalize(body, AGENT_TYPE), source="tests")).id
    await hub.push()
    reconciler = Reconciler(hub.db, secrets=hub.secrets, page_size=7)
    clean = await reconciler.run("app")
    assert clean.open == 0, await FindingStore(hub.db).list()
    async with peer.client() as client:
        resource = await nhi_resource(client)
    assert (clean.users_read, clean.agents_read) == ((1, 1) if resource == "Agents" else (2, 0))
    remote = await account(peer, resource, bot)
    async with peer.client() as client:  # the application's admins rename it
        await client.patch(resource, remote["id"], [{"op": "replace", "path": "displayName", "value": "Renamed"}])
    tampered = await reconciler.run("app")
    [finding] = await FindingStore(hub.db).list()
    assert (finding.kind, finding.resource_type, finding.subject, finding.attribute, finding.actual) == (
        "changed_in_app",
        "Agent",
        bot,
        "displayName",
        "Renamed",
    ), tampered.to_json()
    await reconciler.run("app", repair=True)
    await hub.push()
    assert (await account(peer, resource, bot))["displayName"] == "Nightly"
    assert (await reconciler.run("app")).open == 0
    async with peer.client() as client:
        await client.delete(resource, remote["id"])
    await reconciler.run("app")
    [missing] = await FindingStore(hub.db).list()
    assert (missing.kind, missing.resource_type, missing.subject) == ("missing_account", "Agent", bot)


def test_the_command_line_reads_agents_back(tmp_path: Path, downstream: Peer) -> None:
    url = f"sqlite:///{tmp_path / 'cli-hub.db'}"
    upgrade(url)

    async def prepare() -> None:
        database = Database(url)
        hub = Hub(database, identity_store(database), Propagator(database), SecretBox())  # the key the CLI reads
        try:
            await hub.add_target("app", downstream, TargetConfig(push_nhis=True))
            await hub.store.create(
                AGENT_TYPE,
                normalize({"schemas": [AGENT], "name": "cli-bot", "active": True}, AGENT_TYPE),
                source="tests",
            )
            await hub.push()
        finally:
            await hub.propagator.close()
            await database.dispose()

    asyncio.run(prepare())
    done = forkserver.run(["reconcile", "app"], timeout=120, env={**os.environ, "SCIMWARD_DATABASE_URL": url})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "read 0 users, 1 agents and 0 groups" in done.stderr
