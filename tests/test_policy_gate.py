"""The policy gate against a real downstream scimward, on both hub dialects (issue 10's "done when").

Changes are made through the hub's gated store (the code the SCIM endpoint runs) and pushed by
draining a Propagator; one test goes through the hub's SCIM endpoint to see the IdP's answer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from scimward.api.settings import Settings
from scimward.policy import ApprovalError, Approvals, PolicyGate, identity_store, policies
from scimward.policy.plans import ConfigChangeHeld
from scimward.scim.ast import AttrPath, Compare
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.store.database import Database
from scimward.store.governance.changes import PolicyDenied
from scimward.store.identity.identities import SearchQuery
from scimward.sync.propagate import Propagator
from scimward.sync.reconcile import Reconciler
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.target_admin import TargetAdmin
from scimward.sync.targets import TargetConfig
from tests.conftest import Peer, ServerThread, issue_token
from tests.hub import Hub
from tests.test_propagate import remote_group_members, remote_user

pytestmark = pytest.mark.anyio

POLICY = """
rules:
  - name: example-domain-only
    when: change.type == "User" && change.op != "delete" && !change.email_domains.all(d, d == "example.com")
    action: deny
    reason: e-mail addresses must be in example.com
  - name: admins-need-approval
    when: change.type == "Group" && change.after.displayName.startsWith("admins") && size(change.members_added) > 0
    action: hold
    reason: administrative access
"""
BREAKER = """
breaker:
  window: 10m
  max_count: 20
  max_percent: 100
"""


def policy(*rules: str) -> str:
    """The test policy with more rules (YAML list items) and the breaker."""
    return POLICY + "".join(rules) + BREAKER


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    db = Database(hub_url)
    await policies.apply(db, policy(), "tests")
    secrets = SecretBox(key=generate_key())
    propagator = Propagator(db, secrets=secrets, poll_seconds=0.05)
    # A gate that reads the policy on every decision, so what a test applies counts at once.
    yield Hub(db, identity_store(db, PolicyGate(db, refresh_seconds=0)), propagator, secrets)
    await propagator.close()
    await db.dispose()


def approvals(hub: Hub) -> Approvals:
    return Approvals(hub.db, hub.store.direct)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_a_denied_create_writes_nothing_and_never_reaches_the_target(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    user_name = unique("eve") + "@evil.test"
    with pytest.raises(PolicyDenied) as denied:
        await hub.user(user_name, emails=[{"value": user_name}])
    assert "example-domain-only" in denied.value.detail
    await hub.push()
    assert await remote_user(downstream, user_name) is None
    found = await approvals(hub).changes(status="denied")
    assert [c.after["userName"] for c in found if c.after] == [user_name]
    assert not (await hub.store.search(USER_TYPE, _by_user_name(user_name))).items


def test_the_idp_gets_a_400_naming_the_rule(hub_url: str) -> None:
    async def apply() -> None:
        db = Database(hub_url)
        await policies.apply(db, policy(), "tests")
        await db.dispose()

    asyncio.run(apply())
    token = issue_token(hub_url, unique("idp"))
    with ServerThread(Settings(database_url=hub_url, run_worker=False)) as server:
        base = f"http://127.0.0.1:{server.port}/scim/v2"
        user_name = unique("mallory") + "@evil.test"
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "emails": [{"value": user_name}],
        }
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as client:
            response = client.post("/Users", json=body)
            assert response.status_code == 400
            error = response.json()
            assert error["scimType"] == "invalidValue"
            assert "example-domain-only" in error["detail"] and "example.com" in error["detail"]
            found = client.get("/Users", params={"filter": f'userName eq "{user_name}"'}).json()
            assert found["totalResults"] == 0


async def test_a_held_membership_reaches_the_target_only_after_someone_else_approves(
    hub: Hub, downstream: Peer
) -> None:
    await hub.add_target("app", downstream)
    ada_name = unique("ada") + "@example.com"
    ada = await hub.user(ada_name)
    bob = await hub.user(unique("bob") + "@example.com")
    group_name = unique("admins")
    group = await hub.group(group_name, [])
    await hub.push()
    assert await remote_group_members(downstream, group_name) == set()

    await hub.store.patch(
        GROUP_TYPE,
        group,
        {
            "schemas": [PATCH_OP_SCHEMA],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": ada}, {"value": bob}]}],
        },
        source="scim:okta",
        actor="okta",
    )
    # The source sees its change accepted: its own state has the members.
    stored = await hub.store.get(GROUP_TYPE, group)
    assert {m["value"] for m in stored.members or []} == {ada, bob}
    await hub.push()
    assert await remote_group_members(downstream, group_name) == set()  # held: not effective

    pending = await approvals(hub).changes(status="pending")
    assert len(pending) == 1 and sorted(pending[0].members_added) == sorted([ada, bob])
    assert pending[0].reasons == ["admins-need-approval: administrative access"]
    with pytest.raises(ApprovalError, match="cannot approve"):
        await approvals(hub).approve([pending[0].id], "okta")
    outcome = await approvals(hub).approve([pending[0].id], "carol", "reviewed")
    assert outcome[0].status == "approved"
    await hub.push()
    assert await remote_user(downstream, ada_name) is not None
    assert len(await remote_group_members(downstream, group_name)) == 2


@pytest.mark.slow  # 1,000 users pushed and 300 deactivated: tens of seconds on each backend
async def test_the_breaker_holds_a_mass_deactivation_until_released(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    prefix = unique("mass")
    users: list[str] = []
    for start in range(0, 1000, 50):  # 50 at a time, as concurrent SCIM requests would arrive
        names = [f"{prefix}-{n:04d}@example.com" for n in range(start, start + 50)]
        users += await asyncio.gather(*(hub.user(name, active=True) for name in names))
    await hub.push()
    for user in users[:300]:
        await hub.patch("User", user, {"op": "replace", "path": "active", "value": False})
    await hub.push()
    assert await _inactive_downstream(downstream, prefix) == 20
    status = {row["name"]: row for row in await approvals(hub).breakers()}
    assert status["app"]["open"] and status["app"]["held"] == 280
    # Non-destructive changes keep flowing while it is open.
    await hub.patch("User", users[500], {"op": "replace", "path": "title", "value": "Engineer"})
    await hub.push()
    assert (await remote_user(downstream, f"{prefix}-0500@example.com") or {}).get("title") == "Engineer"

    released = await approvals(hub).release(status["app"]["id"], "carol")
    assert released == 280
    await hub.push()
    assert await _inactive_downstream(downstream, prefix) == 300
    assert not (await approvals(hub).breakers())[0]["open"]


async def test_a_held_deactivation_keeps_the_account_in_scope(hub: Hub, downstream: Peer) -> None:
    """A held ``active=false`` cannot deprovision through the scope filter (issue 10, item 9)."""
    await hub.add_target("app", downstream, TargetConfig(scope="active eq true"))
    await policies.apply(
        hub.db,
        policy("""
  - name: no-leavers-without-approval
    when: change.op == "deactivate"
    action: hold
    reason: leavers are checked
"""),
        "tests",
    )
    user_name = unique("lea") + "@example.com"
    lea = await hub.user(user_name, active=True)
    await hub.push()
    await hub.patch("User", lea, {"op": "replace", "path": "active", "value": False})
    assert (await hub.store.get(USER_TYPE, lea)).doc["active"] is False  # the source's state
    await hub.push()
    account = await remote_user(downstream, user_name)
    assert account is not None and account["active"] is True
    # Reconcile reads the effective state too: the active account is what the target should hold.
    report = await Reconciler(hub.db, secrets=hub.secrets).run("app", repair=False)
    assert report.open == 0, report.counts
    pending = await approvals(hub).changes(status="pending", identity_id=lea)
    assert [c.op for c in pending] == ["deactivate"]
    await approvals(hub).approve([pending[0].id], "carol")
    await hub.push()
    account = await remote_user(downstream, user_name)
    assert account is None or account["active"] is False


async def test_a_held_delete_keeps_the_account_and_its_memberships_until_approved(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    await policies.apply(
        hub.db,
        policy("""
  - name: deletes-need-approval
    when: change.op == "delete"
    action: hold
    reason: deletions are checked
"""),
        "tests",
    )
    user_name = unique("del") + "@example.com"
    leaver = await hub.user(user_name)
    group_name = unique("team")
    await hub.group(group_name, [leaver])
    await hub.push()
    assert len(await remote_group_members(downstream, group_name)) == 1
    await hub.store.delete(USER_TYPE, leaver, source="tests", actor="idp")
    await hub.push()
    assert await remote_user(downstream, user_name) is not None
    assert len(await remote_group_members(downstream, group_name)) == 1
    pending = await approvals(hub).changes(status="pending", identity_id=leaver)
    await approvals(hub).approve([pending[0].id], "carol")
    await hub.push()
    account = await remote_user(downstream, user_name)
    assert account is None or account["active"] is False
    assert await remote_group_members(downstream, group_name) == set()


async def test_a_newer_change_supersedes_a_pending_one(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    ada = await hub.user(unique("ada") + "@example.com")
    group_name = unique("admins")
    group = await hub.group(group_name, [])
    await hub.patch("Group", group, {"op": "add", "path": "members", "value": [{"value": ada}]})
    first = await approvals(hub).changes(status="pending", identity_id=group)
    # The source takes it back: effective and source agree again, and nothing is pending.
    await hub.patch("Group", group, {"op": "remove", "path": f'members[value eq "{ada}"]'})
    assert [c.status for c in await approvals(hub).changes(identity_id=group)][:2] == ["applied", "superseded"]
    assert (await approvals(hub).show(first[0].id)).status == "superseded"
    await hub.push()
    assert await remote_group_members(downstream, group_name) == set()


def _by_user_name(user_name: str) -> SearchQuery:
    return SearchQuery(filter=Compare(AttrPath(None, "userName"), "eq", user_name))


async def _inactive_downstream(peer: Peer, prefix: str) -> int:
    async with httpx.AsyncClient(base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}) as c:
        response = await c.get("/Users", params={"filter": f'userName sw "{prefix}" and active eq false', "count": 0})
        return int(response.json()["totalResults"])


async def test_a_scope_change_that_would_deprovision_half_a_target_is_held(hub: Hub, downstream: Peer) -> None:
    await policies.apply(hub.db, POLICY + "\nbreaker:\n  max_count: 500\n  max_percent: 20\n  min_count: 10\n", "tests")
    await hub.add_target("app", downstream)
    prefix = unique("scope")
    for n in range(40):
        await hub.user(f"{prefix}-{n:02d}@example.com", userType="Employee" if n % 2 else "Contractor")
    await hub.push()
    admin = TargetAdmin(hub.db, hub.secrets)
    narrower = TargetConfig(scope='userType eq "Employee"')
    plan = await admin.plan("app", narrower)
    assert (plan.accounts, plan.deprovision, plan.create) == (40, 20, 0)
    with pytest.raises(ConfigChangeHeld) as held:
        await admin.update("app", config=narrower, actor="dana")
    assert (await admin.get("app")).config.scope is None  # nothing changed yet
    change = await approvals(hub).show(held.value.change_id)
    assert (change.resource_type, change.status, change.after) == (
        "Target",
        "pending",
        {
            "scope": 'userType eq "Employee"',
            "push_groups": True,
            "group_scope": None,
            "mapping": None,
            "deprovision": "deactivate",
        },
    )
    with pytest.raises(ApprovalError):
        await approvals(hub).approve([change.id], "dana")
    await approvals(hub).approve([change.id], "carol")
    assert (await admin.get("app")).config.scope == 'userType eq "Employee"'
    # A change within the threshold goes through at once, and is recorded.
    await admin.update(
        "app", config=TargetConfig(scope='userType eq "Employee" or userType eq "Contractor"'), actor="dana"
    )
    assert (await admin.get("app")).config.scope == 'userType eq "Employee" or userType eq "Contractor"'
