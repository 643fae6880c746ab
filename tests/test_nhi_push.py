"""Pushing NHIs (issue 14, item 8) into real servers on loopback, the hub on both dialects: as Agents to
a second scimward (it serves /Agents), as Users with the target's ``nhi_user_type`` to scim2-server
(it does not); only to targets that take NHIs, within their ``nhi_scope``; retired NHIs deprovisioned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.governance.nhi.registry import Registry
from scimward.scim.errors import NotFound
from scimward.scim.resource import normalize
from scimward.scim.resource_types import AGENT_TYPE
from scimward.store.tables import changes, outbox
from scimward.sync.nhi_adopt import find_account
from scimward.sync.nhi_mapping import nhi_resource
from scimward.sync.targets import DeprovisionMode, TargetConfig
from tests.conftest import Peer
from tests.hub import Hub, open_hub

pytestmark = pytest.mark.anyio
AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
NHI = "urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url) as opened:
        yield opened


async def agent(hub: Hub, name: str, **extra: Any) -> str:
    body = {
        "schemas": [AGENT, NHI],
        "name": name,
        "displayName": name.title(),
        "active": True,
        "agentType": "Assistant",
        NHI: {"kind": "ai_agent", "environment": "prod"},
        **extra,
    }
    return (await hub.store.create(AGENT_TYPE, normalize(body, AGENT_TYPE), source="tests")).id


def remote(peer: Peer, resource: str, hub_id: str) -> list[dict[str, Any]]:
    with httpx.Client(base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}) as client:
        response = client.get(f"/{resource}", params={"filter": f'externalId eq "{hub_id}"'})
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json().get("Resources", [])
        return found


async def test_agents_go_as_agents_where_the_target_serves_them(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("agents-app", downstream, TargetConfig(push_nhis=True, nhi_scope='agentType eq "Assistant"'))
    helper = await agent(hub, "helper-bot")
    outside = await agent(hub, "other-bot", agentType="Researcher")
    await hub.push()
    [account] = remote(downstream, "Agents", helper)
    assert account["name"] == "helper-bot" and account["agentType"] == "Assistant" and account["active"] is True
    assert NHI not in account and "owners" not in account  # hub ids and scimward's schema stay home
    assert remote(downstream, "Agents", outside) == []
    await hub.patch("Agent", helper, {"op": "replace", "path": "active", "value": False})
    await hub.push()
    assert remote(downstream, "Agents", helper)[0]["active"] is False


async def test_agents_go_as_users_with_the_nhi_user_type_elsewhere(hub: Hub, scim2_server: Peer) -> None:
    await hub.add_target(
        "plain-app", scim2_server, TargetConfig(push_nhis=True, nhi_user_type="Bot", deprovision=DeprovisionMode.DELETE)
    )
    helper = await agent(hub, f"bot-{hub.db.dialect}")
    await hub.push()
    [account] = remote(scim2_server, "Users", helper)
    assert account["userName"] == f"bot-{hub.db.dialect}" and account["userType"] == "Bot"
    await hub.store.delete(AGENT_TYPE, helper, source="tests")  # what `nhi retire` does
    await hub.push()
    assert remote(scim2_server, "Users", helper) == []


async def test_targets_that_do_not_take_nhis_receive_none(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("people-only", downstream)
    helper = await agent(hub, "quiet-bot")
    await hub.push()
    assert remote(downstream, "Agents", helper) == [] and remote(downstream, "Users", helper) == []


async def test_adopting_an_unmanaged_account_links_it_without_a_duplicate(hub: Hub, downstream: Peer) -> None:
    with httpx.Client(base_url=downstream.base_url, headers={"Authorization": f"Bearer {downstream.token}"}) as c:
        made = c.post("/Agents", json={"schemas": [AGENT], "name": "legacy-bot", "active": True})
        assert made.status_code == 201, made.text
    await hub.add_target("agents-app", downstream, TargetConfig(push_nhis=True, environment="prod"))
    owner = await hub.user("owner@corp.example")
    found = await find_account(hub.db, "agents-app", "legacy-bot", hub.secrets)
    assert (found.resource, found.id, found.environment) == ("Agents", made.json()["id"], "prod")
    registry = Registry(hub.db, frozenset(), hub.store)
    view = await registry.add(
        found.name,
        "bot",
        ["owner@corp.example"],
        purpose="legacy",
        expires_in=None,
        environment=found.environment,
        actor="tests",
    )
    assert view.owners == ["owner@corp.example"] and owner
    await hub.push()
    with httpx.Client(base_url=downstream.base_url, headers={"Authorization": f"Bearer {downstream.token}"}) as c:
        accounts = c.get("/Agents", params={"filter": 'name eq "legacy-bot"'}).json()["Resources"]
    assert [(a["id"], a.get("externalId")) for a in accounts] == [(made.json()["id"], view.id)]
    with pytest.raises(NotFound):
        await find_account(hub.db, "agents-app", "no-such-bot", hub.secrets)


def remote_members(peer: Peer, group_id: str) -> set[str]:
    with httpx.Client(base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}) as client:
        [found] = client.get("/Groups", params={"filter": f'externalId eq "{group_id}"'}).json()["Resources"]
        return {m["value"] for m in client.get(f"/Groups/{found['id']}").json().get("members", [])}


async def test_an_agent_in_a_group_is_a_member_where_it_is_pushed(hub: Hub, peer: Peer) -> None:
    """A Group's Agent members go as memberships of the NHI's account (an Agent or a User there), as
    deltas, through the gate like a User's (the change's members added and removed)."""
    async with peer.client() as client:
        where = await nhi_resource(client)
    peer_name = where.lower()
    await hub.add_target("nhi-app", peer, TargetConfig(push_nhis=True, push_groups=True))
    person = await hub.user(f"member-{hub.db.dialect}-{peer_name}@corp.example")
    helper = await agent(hub, f"member-bot-{hub.db.dialect}-{peer_name}")
    group = await hub.group(f"automation-{hub.db.dialect}-{peer_name}", [person, helper])
    await hub.push()
    [person_remote] = [a["id"] for a in remote(peer, "Users", person)]
    [bot_remote] = [a["id"] for a in remote(peer, where, helper)]
    assert remote_members(peer, group) == {person_remote, bot_remote}
    await hub.patch("Group", group, {"op": "remove", "path": f'members[value eq "{helper}"]'})
    async with hub.db.read() as conn:
        gated = [
            (row.members_added, row.members_removed, row.decision)
            for row in await conn.execute(
                sa.select(changes.c.members_added, changes.c.members_removed, changes.c.decision)
                .where(changes.c.identity_id == group)
                .order_by(changes.c.created)
            )
        ]
    assert [(sorted(a or []), r or [], d) for a, r, d in gated] == [
        (sorted([person, helper]), [], "allow"),
        ([], [helper], "allow"),
    ]
    await hub.push()
    assert remote_members(peer, group) == {person_remote}


async def test_an_agent_member_stays_home_where_nhis_do_not_go(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("people-app", downstream, TargetConfig(push_groups=True))
    person = await hub.user("person@corp.example")
    helper = await agent(hub, "home-bot")
    group = await hub.group("mixed", [person, helper])
    await hub.push()
    assert remote(downstream, "Agents", helper) == [] and len(remote_members(downstream, group)) == 1


async def test_a_group_pushed_first_makes_its_agent_members_accounts(hub: Hub, downstream: Peer) -> None:
    """A group's push makes the accounts of its members that have none yet, Agents as well as Users:
    here the Agent's own outbox row is gone (claimed by another worker, say), and the group still gets it."""
    await hub.add_target("nhi-app", downstream, TargetConfig(push_nhis=True, push_groups=True))
    helper = await agent(hub, "first-bot")
    group = await hub.group("bots-first", [helper])
    async with hub.db.write() as conn:
        await conn.execute(sa.delete(outbox).where(outbox.c.identity_id == helper))
    await hub.push()
    [account] = remote(downstream, "Agents", helper)
    assert remote_members(downstream, group) == {account["id"]}
