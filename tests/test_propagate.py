"""Propagation into real downstream SCIM servers on loopback: a second scimward and scim2-server.

The hub runs on SQLite and on PostgreSQL; each test gets a fresh hub database. Changes are made
through the hub's store (the same code the SCIM endpoint runs) and pushed by draining a Propagator.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.provisioning.targets import TargetRepository
from scimward.sync.targets import AttributeRule, DeprovisionMode, TargetConfig
from tests.conftest import Peer
from tests.hub import ENTERPRISE, Hub, open_hub

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url) as opened:
        yield opened


async def remote(peer: Peer, resource: str, filter_text: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}) as c:
        response = await c.get(f"/{resource}", params={"filter": filter_text, "count": 100})
        response.raise_for_status()
        return list(response.json().get("Resources", []))


async def remote_user(peer: Peer, user_name: str) -> dict[str, Any] | None:
    found = await remote(peer, "Users", f'userName eq "{user_name}"')
    assert len(found) <= 1, f"{user_name} is duplicated on the target"
    return found[0] if found else None


async def remote_group_members(peer: Peer, display_name: str) -> set[str]:
    found = await remote(peer, "Groups", f'displayName eq "{display_name}"')
    assert len(found) == 1
    async with httpx.AsyncClient(base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}) as c:
        group = (await c.get(f"/Groups/{found[0]['id']}")).json()
    return {member["value"] for member in group.get("members", [])}


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


async def test_create_reaches_the_target_with_mapped_attributes(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer)
    ada = name("ada")
    await hub.user(
        ada,
        displayName="Ada L",
        title="Countess",
        active=True,
        emails=[{"value": ada, "type": "work", "primary": True}],
        **{ENTERPRISE: {"department": "R&D"}},
    )
    assert await hub.push() == 1
    account = await remote_user(peer, ada)
    assert account is not None
    assert account["displayName"] == "Ada L" and account["title"] == "Countess"
    assert account[ENTERPRISE]["department"] == "R&D"
    assert account["externalId"]  # the hub's id: how the account is found again


async def test_update_sends_only_the_difference(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer)
    user = name("grace")
    user_id = await hub.user(user, title="Engineer", nickName="Amazing Grace")
    await hub.push()
    await hub.patch(
        "User",
        user_id,
        {"op": "replace", "path": "title", "value": "Rear Admiral"},
        {"op": "remove", "path": "nickName"},
    )
    await hub.push()
    account = await remote_user(peer, user)
    assert account is not None and account["title"] == "Rear Admiral" and "nickName" not in account


async def test_deactivate_is_the_default_deprovisioning(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer)
    user = name("alan")
    user_id = await hub.user(user, active=True)
    await hub.push()
    await hub.store.delete(USER_TYPE, user_id)
    await hub.push()
    account = await remote_user(peer, user)
    assert account is not None and account["active"] is False


async def test_delete_mode_removes_the_account(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer, TargetConfig(deprovision=DeprovisionMode.DELETE))
    user = name("linus")
    user_id = await hub.user(user)
    await hub.push()
    await hub.store.delete(USER_TYPE, user_id)
    await hub.push()
    assert await remote_user(peer, user) is None


async def test_leaving_scope_deprovisions_and_returning_reactivates(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer, TargetConfig(scope='userType eq "Employee" and active eq true'))
    employee, contractor = name("emp"), name("con")
    employee_id = await hub.user(employee, userType="Employee", active=True)
    await hub.user(contractor, userType="Contractor", active=True)
    await hub.push()
    assert await remote_user(peer, contractor) is None, "out of scope: never provisioned"
    await hub.patch("User", employee_id, {"op": "replace", "path": "userType", "value": "Contractor"})
    await hub.push()
    account = await remote_user(peer, employee)
    assert account is not None and account["active"] is False
    await hub.patch("User", employee_id, {"op": "replace", "path": "userType", "value": "Employee"})
    await hub.push()
    account = await remote_user(peer, employee)
    assert account is not None and account["active"] is True


async def test_a_member_leaving_scope_leaves_the_targets_groups_and_comes_back(hub: Hub, peer: Peer) -> None:
    """A group's members on a target are its hub members with an active account there: when an account
    is deactivated (out of scope) the group drops it, and takes it back when the account is reactivated."""
    await hub.add_target("app", peer, TargetConfig(scope="active eq true"))
    stays, leaves = name("stays"), name("leaves")
    stays_id = await hub.user(stays, active=True)
    leaves_id = await hub.user(leaves, active=True)
    group_name = f"team-{uuid.uuid4().hex[:6]}"
    await hub.group(group_name, [stays_id, leaves_id])
    await hub.push()
    remote = {u: (await remote_user(peer, u) or {}).get("id") for u in (stays, leaves)}
    assert await remote_group_members(peer, group_name) == set(remote.values())
    await hub.patch("User", leaves_id, {"op": "replace", "path": "active", "value": False})
    await hub.push()
    assert (await remote_user(peer, leaves) or {}).get("active") is False
    assert await remote_group_members(peer, group_name) == {remote[stays]}
    await hub.patch("User", leaves_id, {"op": "replace", "path": "active", "value": True})
    await hub.push()
    assert (await remote_user(peer, leaves) or {}).get("active") is True
    assert await remote_group_members(peer, group_name) == set(remote.values())


async def test_a_member_entering_scope_joins_the_targets_group(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer, TargetConfig(scope='userType eq "Employee"'))
    employee, contractor = name("emp"), name("con")
    employee_id = await hub.user(employee, userType="Employee")
    contractor_id = await hub.user(contractor, userType="Contractor")
    group_name = f"team-{uuid.uuid4().hex[:6]}"
    await hub.group(group_name, [employee_id, contractor_id])
    await hub.push()
    assert await remote_user(peer, contractor) is None
    assert await remote_group_members(peer, group_name) == {(await remote_user(peer, employee) or {}).get("id")}
    await hub.patch("User", contractor_id, {"op": "replace", "path": "userType", "value": "Employee"})
    await hub.push()
    joined = {(await remote_user(peer, u) or {}).get("id") for u in (employee, contractor)}
    assert None not in joined and await remote_group_members(peer, group_name) == joined


async def test_group_membership_is_pushed_as_deltas(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer)
    users = [name(f"m{i}") for i in range(3)]
    ids = [await hub.user(u) for u in users]
    group_name = f"team-{uuid.uuid4().hex[:6]}"
    group_id = await hub.group(group_name, ids[:2])
    await hub.push()
    remote_ids = {u: (await remote_user(peer, u) or {}).get("id") for u in users}
    assert await remote_group_members(peer, group_name) == {remote_ids[users[0]], remote_ids[users[1]]}
    await hub.patch(
        "Group",
        group_id,
        {"op": "add", "path": "members", "value": [{"value": ids[2]}]},
        {"op": "remove", "path": f'members[value eq "{ids[0]}"]'},
    )
    await hub.push()
    assert await remote_group_members(peer, group_name) == {remote_ids[users[1]], remote_ids[users[2]]}


async def test_members_are_created_before_the_group_that_names_them(hub: Hub, peer: Peer) -> None:
    """The group is pushed first here (its row alone is due); its members get accounts first."""
    user = name("first")
    user_id = await hub.user(user)
    group_name = f"team-{uuid.uuid4().hex[:6]}"
    group_id = await hub.group(group_name, [user_id])
    target = await hub.add_target("app", peer)
    await hub.propagator.outbox.enqueue_all(target.id, "Group", [group_id])
    await hub.push()
    account = await remote_user(peer, user)
    assert account is not None
    assert await remote_group_members(peer, group_name) == {account["id"]}


async def test_existing_account_is_adopted_not_duplicated(hub: Hub, peer: Peer) -> None:
    user = name("preexisting")
    async with peer.client() as client:
        made = await client.create("Users", {"schemas": [USER_SCHEMA], "userName": user, "title": "old"})
    await hub.add_target("app", peer)
    await hub.user(user, title="new")
    await hub.push()
    account = await remote_user(peer, user)
    assert account is not None and account["id"] == made["id"] and account["title"] == "new"


async def test_coalesced_changes_are_one_push(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer)
    user = name("busy")
    user_id = await hub.user(user, title="t0")
    for n in range(1, 6):
        await hub.patch("User", user_id, {"op": "replace", "path": "title", "value": f"t{n}"})
    assert await hub.push() == 1
    account = await remote_user(peer, user)
    assert account is not None and account["title"] == "t5"


async def test_rejected_identity_is_recorded_and_others_go_on(hub: Hub, downstream: Peer) -> None:
    """A 4xx is recorded on the target and the push log with the target's own error text, not retried
    blindly; the other identities flow and the target stays in service."""
    rules = (AttributeRule("userName", "userName"), AttributeRule("title", "active"))  # a boolean into a string
    target = await hub.add_target("app", downstream, TargetConfig(mapping=rules))
    rejected, accepted = name("rejected"), name("accepted")
    rejected_id = await hub.user(rejected, active=True)
    await hub.user(accepted)
    await hub.push()
    assert await remote_user(downstream, accepted) is not None
    assert await remote_user(downstream, rejected) is None
    row = await TargetRepository(hub.db).by_id(target.id)
    assert row.quarantined is None and row.last_error and "title" in row.last_error
    assert await hub.propagator.outbox.pending(target.id) == (0, 0), "not retried blindly"
    async with hub.db.read() as conn:
        outcome = (
            await conn.execute(
                sa.text("select outcome, detail from push_log where identity_id = :i"), {"i": rejected_id}
            )
        ).one()
    assert outcome[0] == "failed" and "title" in outcome[1]


async def test_push_is_level_triggered_after_a_crash(hub: Hub, peer: Peer) -> None:
    """A row claimed by a worker that died is taken again when its lease runs out."""
    await hub.add_target("app", peer)
    user = name("crash")
    await hub.user(user)
    claimed = await hub.propagator.outbox.claim(10, timedelta(seconds=0))  # claimed, then "crashed"
    assert len(claimed) == 1
    await asyncio.sleep(0.01)
    await hub.push()
    assert await remote_user(peer, user) is not None
