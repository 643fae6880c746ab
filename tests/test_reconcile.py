"""Reconcile against real downstream SCIM servers on loopback: a second scimward and scim2-server.

Each test seeds the hub (SQLite or PostgreSQL), pushes with a Propagator, then changes the target
directly through its own SCIM API, as the application's admins would, and reconciles (issue 6):
every tampering is found and nothing else, repair converges, and findings persist across runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.policy import identity_store, policies
from scimward.policy.approvals import Approvals
from scimward.scim.errors import InvalidValue
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database, upgrade
from scimward.store.governance.findings import Finding, FindingStore, Observation, ReconcileBusy, RunStore
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import targets
from scimward.sync.client import TargetClient, eq_filter
from scimward.sync.mapping import DEFAULT_USER_RULES
from scimward.sync.propagate import Propagator
from scimward.sync.reconcile import Reconciler, ReconcileReport
from scimward.sync.schedule import run_due_reconciles, run_reconcile_schedule
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.targets import AttributeRule, ReconcilePolicy, TargetConfig, parse_every
from tests import forkserver
from tests import hub as hubs
from tests.conftest import Peer, ServerThread, issue_token
from tests.hub import ENTERPRISE

pytestmark = [pytest.mark.anyio, pytest.mark.emptied_peers]


@dataclass
class Hub(hubs.Hub):
    reconciler: Reconciler

    async def configure(self, config: TargetConfig, name: str = "app") -> None:
        await TargetRepository(self.db).update(name, config=config.to_json())

    async def reconcile(self, repair: bool | None = None) -> ReconcileReport:
        return await self.reconciler.run("app", repair=repair)

    async def open_findings(self) -> list[Finding]:
        return await FindingStore(self.db).list()


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    db = Database(hub_url)
    secrets = SecretBox(key=generate_key())
    propagator = Propagator(db, secrets=secrets, poll_seconds=0.05)
    yield Hub(
        db, identity_store(db), propagator, secrets, Reconciler(db, secrets=secrets, page_size=7, group_page_size=2)
    )
    await propagator.close()
    await db.dispose()


class App:
    """The target as its own admins change it: straight through its SCIM API."""

    def __init__(self, client: TargetClient) -> None:
        self.client = client

    async def find(self, resource: str, attribute: str, value: str) -> dict[str, Any]:
        found = await self.client.find(resource, eq_filter(attribute, value))
        assert len(found) == 1, f"{resource} {attribute}={value}: {len(found)} found"
        return found[0]

    async def user(self, user_name: str) -> dict[str, Any]:
        return await self.find("Users", "userName", user_name)

    async def group(self, display_name: str) -> dict[str, Any]:
        return await self.client.get("Groups", (await self.find("Groups", "displayName", display_name))["id"])

    async def set(self, resource: str, resource_id: str, path: str, value: Any) -> None:
        await self.client.patch(resource, resource_id, [{"op": "replace", "path": path, "value": value}])

    async def add_member(self, group_id: str, member_id: str) -> None:
        await self.client.patch("Groups", group_id, [{"op": "add", "path": "members", "value": [{"value": member_id}]}])

    async def remove_member(self, group_id: str, member_id: str) -> None:
        await self.client.patch("Groups", group_id, [{"op": "remove", "path": f'members[value eq "{member_id}"]'}])


@pytest.fixture
async def app(peer: Peer) -> AsyncIterator[App]:
    async with peer.client() as client:
        yield App(client)


def name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"


def keys(findings: list[Finding]) -> set[tuple[str, str, str]]:
    return {(f.kind, f.subject, f.attribute) for f in findings}


def members_path(remote_id: str) -> str:
    return f'members[value eq "{remote_id}"]'


async def seed(hub: Hub, size: int = 4) -> tuple[list[str], list[str], str, str]:
    """Users with the attributes a directory sends (names, e-mails, a manager, the enterprise
    extension), and a group of the first two; pushed, the manager first (pushed in one batch, the
    reports could go before their manager has an account, and go without one: drift)."""
    users = [name(f"u{i}") for i in range(size)]
    ids: list[str] = []
    for i, user in enumerate(users):
        enterprise: dict[str, Any] = {"department": "R&D", "employeeNumber": str(1000 + i)}
        if ids:
            enterprise["manager"] = {"value": ids[0]}
        ids.append(
            await hub.user(
                user,
                displayName=f"User {i}",
                title="Engineer",
                active=True,
                name={"givenName": f"Given{i}", "familyName": "Family"},
                emails=[{"value": user, "type": "work", "primary": True}, {"value": f"home-{user}", "type": "home"}],
                **{ENTERPRISE: enterprise},
            )
        )
        if i == 0:
            await hub.push()
    group = f"team-{uuid.uuid4().hex[:6]}"
    group_id = await hub.group(group, ids[:2])
    await hub.push()
    return users, ids, group, group_id


# -- orphans meet the mass-change breaker ---------------------------------------------------------


async def test_orphan_deactivations_wait_for_an_open_breaker(hub: Hub, peer: Peer, app: App) -> None:
    """Issue 10, item 9: reconcile deactivates orphaned accounts through the outbox, counted against
    the target's breaker. Twelve orphans past ``max_count: 5`` open it: none is switched off until
    ``breaker release``, then all are; a discarded breaker drops what waited."""
    await policies.apply(hub.db, "breaker: {window: 10m, max_count: 5, max_percent: 100}\n", "alice")
    await hub.add_target("app", peer, TargetConfig(extra={"orphans": "deactivate"}))
    await seed(hub, 1)
    strangers = [
        await app.client.create("Users", {"schemas": [USER_SCHEMA], "userName": name("orphan")}) for _ in range(12)
    ]

    report = await hub.reconcile(repair=True)
    assert report.orphans_deactivated == 12
    assert {f.repair for f in await hub.open_findings() if f.kind == "orphaned_account"} >= {
        "deactivation enqueued (orphans: deactivate); propagate switches the account off"
    }
    target_id = (await TargetRepository(hub.db).by_name("app")).id
    assert [(b["name"], b["held"]) for b in await Approvals(hub.db, hub.store.direct).breakers() if b["open"]] == [
        ("app", 12)
    ]
    await hub.push()
    active = [(await app.user(s["userName"])).get("active") is not False for s in strangers]
    assert all(active), "nothing destructive leaves while the breaker is open"

    await Approvals(hub.db, hub.store.direct).release(target_id, "bob")
    await hub.push()
    assert [(await app.user(s["userName"]))["active"] for s in strangers] == [False] * 12

    more = [await app.client.create("Users", {"schemas": [USER_SCHEMA], "userName": name("orphan")}) for _ in range(6)]
    await hub.reconcile(repair=True)  # six more in the same window: open again
    await Approvals(hub.db, hub.store.direct).discard(target_id, "bob")
    await hub.push()
    assert all([(await app.user(s["userName"])).get("active") is not False for s in more])
    async with hub.db.read() as conn:
        assert not list(await conn.execute(sa.text("select 1 from outbox where resource_type = 'Orphan'")))


# -- a clean target -------------------------------------------------------------------------------


async def test_a_clean_target_has_no_findings(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer)
    await seed(hub, 9)  # more than one page of 7
    report = await hub.reconcile()
    assert report.open == 0, [
        (f.kind, f.attribute, f.desired, f.last_pushed, f.actual) for f in await hub.open_findings()
    ]
    assert (report.users_read, report.groups_read) == (9, 1)


# -- every tampering is found, nothing else; repair converges ---------------------------------------


async def test_every_tampering_is_found_and_repair_converges(hub: Hub, peer: Peer, app: App) -> None:
    """Issue 6: change attributes, add accounts, reactivate a deprovisioned account, add and remove
    memberships, delete an account; every one is a finding and there is no other. Repaired and pushed,
    the next run finds nothing open."""
    await hub.add_target("app", peer, TargetConfig(extra={"orphans": "deactivate"}))
    users, ids, group, group_id = await seed(hub, 6)
    leaver = ids[5]
    await hub.store.delete(USER_TYPE, leaver)
    await hub.push()
    remote = {user: (await app.user(user))["id"] for user in users}
    remote_group = (await app.group(group))["id"]
    assert remote[users[5]] and (await app.user(users[5]))["active"] is False

    await app.set("Users", remote[users[0]], "title", "CEO")  # changed in the app
    await app.set("Users", remote[users[5]], "active", True)  # the deprovisioned account is back
    await app.add_member(remote_group, remote[users[2]])  # an entitlement nobody granted
    await app.remove_member(remote_group, remote[users[1]])  # a membership lost
    await app.client.delete("Users", remote[users[3]])  # an account lost
    await app.set("Groups", remote_group, "displayName", f"{group}-renamed")
    stranger = await app.client.create("Users", {"schemas": [USER_SCHEMA], "userName": name("stranger")})

    report = await hub.reconcile()
    found = await hub.open_findings()
    assert keys(found) == {
        ("changed_in_app", ids[0], "title"),
        ("active_should_be_inactive", leaver, "active"),
        ("extra_membership", group_id, members_path(remote[users[2]])),
        ("missing_membership", group_id, members_path(remote[users[1]])),
        ("missing_account", ids[3], ""),
        ("changed_in_app", group_id, "displayName"),
        ("orphaned_account", stranger["id"], ""),
    }
    by_kind = {f.kind: f for f in found if f.resource_type == "User"}
    title = by_kind["changed_in_app"]
    assert (title.desired, title.last_pushed, title.actual) == ("Engineer", "Engineer", "CEO")
    assert by_kind["active_should_be_inactive"].severity == "critical"
    assert report.counts["orphaned_account"]["open"] == 1

    repaired = await hub.reconcile(repair=True)
    assert repaired.enqueued == 4 and repaired.orphans_deactivated == 1
    assert all(f.repaired_at is not None and f.repair for f in await hub.open_findings())
    async with hub.db.read() as conn:
        logged = sorted(
            tuple(row)
            for row in await conn.execute(
                sa.text("select action, outcome from push_log where detail like 'reconcile%'")
            )
        )
    assert logged == [("repair", "enqueued")] * 7, "every repair is in the push log"
    await hub.push()
    async with hub.db.read() as conn:
        sent = list(
            await conn.execute(
                sa.text("select action, outcome from push_log where identity_id = :key"),
                {"key": f"orphan:Users/{stranger['id']}"},
            )
        )
    assert [tuple(row) for row in sent] == [("repair", "enqueued"), ("deactivate", "ok")], (
        "the orphan's deactivation went through the outbox, and propagate logged it"
    )
    after = await hub.reconcile()
    assert after.open == 0, await hub.open_findings()
    assert after.resolved == 7
    assert (await app.user(users[0]))["title"] == "Engineer"
    assert (await app.user(users[5]))["active"] is False
    assert (await app.user(stranger["userName"]))["active"] is False, "deactivated, never deleted"
    members = {m["value"] for m in (await app.group(group)).get("members", [])}
    assert members == {remote[users[0]], remote[users[1]]}
    assert (await app.user(users[3]))["id"] != remote[users[3]], "made again"


async def test_orphans_are_reported_not_touched_by_default(hub: Hub, peer: Peer, app: App) -> None:
    await hub.add_target("app", peer)
    await seed(hub, 2)
    stranger = await app.client.create("Users", {"schemas": [USER_SCHEMA], "userName": name("stranger")})
    await hub.reconcile(repair=True)
    await hub.push()
    assert keys(await hub.open_findings()) == {("orphaned_account", stranger["id"], "")}
    assert (await hub.reconcile()).open == 1
    assert (await app.user(stranger["userName"])).get("active") is not False


async def test_an_account_the_hub_did_not_link_is_missing_and_adopted(hub: Hub, peer: Peer, app: App) -> None:
    """An account naming a hub identity by externalId that the hub has not linked: a push adopts it."""
    target = await hub.add_target("app", peer)
    users, ids, _, _ = await seed(hub, 3)
    remote = (await app.user(users[2]))["id"]
    async with hub.db.write() as conn:
        await conn.execute(
            sa.text("delete from links where target_id = :t and identity_id = :i"), {"t": target.id, "i": ids[2]}
        )
    found = await hub.open_findings() if (await hub.reconcile()).open else []
    assert keys(found) == {("missing_account", ids[2], "")}
    assert found[0].actual["id"] == remote
    await hub.reconcile(repair=True)
    await hub.push()
    assert (await hub.reconcile()).open == 0
    assert (await app.user(users[2]))["id"] == remote, "adopted, not duplicated"


# -- the three states ------------------------------------------------------------------------------


async def test_attribute_drift_is_a_hub_change_that_never_arrived(hub: Hub, peer: Peer) -> None:
    """Desired differs from actual while actual still matches last pushed: the mapping changed
    and nothing pushed it."""
    await hub.add_target("app", peer)
    _users, ids, _, _ = await seed(hub, 2)
    rules = (
        *(rule for rule in DEFAULT_USER_RULES if rule.target != "nickName"),
        AttributeRule("nickName", constant="hub"),
    )
    await hub.configure(TargetConfig(mapping=rules))
    await hub.reconcile()
    found = await hub.open_findings()
    assert keys(found) == {("attribute_drift", i, "nickName") for i in ids}
    assert {(f.desired, f.last_pushed, f.actual) for f in found} == {("hub", None, None)}
    await hub.reconcile(repair=True)
    await hub.push()
    assert (await hub.reconcile()).open == 0


async def test_a_push_on_its_way_is_not_drift(hub: Hub, peer: Peer) -> None:
    await hub.add_target("app", peer)
    _users, ids, _group, group_id = await seed(hub, 3)
    await hub.patch("User", ids[0], {"op": "replace", "path": "title", "value": "Director"})
    await hub.user(name("newcomer"))
    await hub.patch("Group", group_id, {"op": "add", "path": "members", "value": [{"value": ids[2]}]})
    assert (await hub.reconcile()).open == 0, await hub.open_findings()


async def test_a_disabled_identity_active_in_the_app_is_critical(hub: Hub, peer: Peer, app: App) -> None:
    await hub.add_target("app", peer)
    users, ids, _, _ = await seed(hub, 2)
    await hub.patch("User", ids[1], {"op": "replace", "path": "active", "value": False})
    await hub.push()
    await app.set("Users", (await app.user(users[1]))["id"], "active", True)
    await hub.reconcile()
    [finding] = await hub.open_findings()
    assert (finding.kind, finding.severity, finding.attribute) == ("active_should_be_inactive", "critical", "active")
    assert (finding.desired, finding.last_pushed, finding.actual) == (False, False, True)


async def test_out_of_scope_account_reactivated_in_the_app(hub: Hub, peer: Peer, app: App) -> None:
    await hub.add_target("app", peer, TargetConfig(scope='userType eq "Employee"', push_groups=False))
    user = name("mover")
    user_id = await hub.user(user, userType="Employee")
    await hub.push()
    await hub.patch("User", user_id, {"op": "replace", "path": "userType", "value": "Contractor"})
    await hub.push()
    await app.set("Users", (await app.user(user))["id"], "active", True)
    await hub.reconcile(repair=True)
    [finding] = await hub.open_findings()
    assert finding.kind == "active_should_be_inactive" and "scope" in (finding.detail or "")
    await hub.push()
    assert (await hub.reconcile()).open == 0
    assert (await app.user(user))["active"] is False


# -- findings persist ------------------------------------------------------------------------------


async def test_a_persisting_finding_keeps_first_seen_and_a_fixed_one_closes(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    users, _ids, _, _ = await seed(hub, 2)
    async with TargetClient(downstream.base_url, downstream.token) as client:
        app = App(client)
        account = await app.user(users[0])
        await app.set("Users", account["id"], "title", "Intern")
        first = await hub.reconcile()
        [seen] = await hub.open_findings()
        second = await hub.reconcile()
        [again] = await hub.open_findings()
        assert again.id == seen.id and again.first_seen == seen.first_seen == first.started
        assert again.last_seen == second.started > first.started
        await app.set("Users", account["id"], "title", "Engineer")  # fixed in the application
    third = await hub.reconcile()
    assert third.open == 0 and third.resolved == 1
    [closed] = await FindingStore(hub.db).list(include_resolved=True)
    assert closed.status == "resolved" and closed.resolved_at is not None


async def test_a_finding_stays_open_until_a_read_shows_it_fixed(hub: Hub, peer: Peer, app: App) -> None:
    """Issue 19, item 9: after a repair whose pushes have not gone yet, a report-only run reads the
    same target and must not close what it did not see fixed; once the pushes went, it closes them."""
    await hub.add_target("app", peer)
    users, ids, group, group_id = await seed(hub, 3)
    account = await app.user(users[0])
    member = (await app.user(users[1]))["id"]
    await app.set("Users", account["id"], "title", "Intern")
    await app.remove_member((await app.group(group))["id"], member)
    repaired = await hub.reconcile(repair=True)
    assert repaired.enqueued == 2
    before = keys(await hub.open_findings())
    assert before == {("changed_in_app", ids[0], "title"), ("missing_membership", group_id, members_path(member))}
    unchanged = await hub.reconcile()  # the repairs are still in the outbox: the target is as it was
    assert unchanged.resolved == 0 and keys(await hub.open_findings()) == before
    await hub.push()
    fixed = await hub.reconcile()
    assert fixed.open == 0 and fixed.resolved == 2


async def test_a_second_reconcile_of_a_target_waits_its_turn(hub: Hub, downstream: Peer) -> None:
    target = await hub.add_target("app", downstream)
    runs = RunStore(hub.db)
    await runs.start(target.id, "cli", False)
    with pytest.raises(ReconcileBusy):
        await hub.reconcile()


async def test_the_schedule_runs_targets_that_are_due(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream, TargetConfig(extra={"reconcile_every": "1h"}))
    await hub.add_target("never", downstream, TargetConfig(extra={"reconcile_every": "0"}))
    await seed(hub, 1)
    assert await run_due_reconciles(hub.db, secrets=hub.secrets) == [], "first due an hour after it was added"
    async with hub.db.write() as conn:
        await conn.execute(targets.update().values(created=datetime(2000, 1, 1)))
    reports = await run_due_reconciles(hub.db, secrets=hub.secrets)
    assert [r.target for r in reports] == ["app"] and reports[0].trigger == "schedule"
    assert await run_due_reconciles(hub.db, secrets=hub.secrets) == [], "not due again for an hour"


async def test_a_lost_member_account_is_made_again_with_its_memberships(hub: Hub, peer: Peer, app: App) -> None:
    await hub.add_target("app", peer)
    users, ids, group, group_id = await seed(hub, 3)
    lost = (await app.user(users[1]))["id"]
    await app.client.delete("Users", lost)
    await hub.reconcile(repair=True)
    found = keys(await hub.open_findings())
    # A target that drops a deleted account's memberships shows that too; one that keeps a dangling
    # member (scim2-server) does not, until the account is made again.
    assert ("missing_account", ids[1], "") in found
    assert found <= {("missing_account", ids[1], ""), ("missing_membership", group_id, members_path(lost))}
    await hub.push()
    # scim2-server still names the deleted account in the group: a member that is no identity.
    await hub.reconcile(repair=True)
    assert keys(await hub.open_findings()) <= {("extra_membership", group_id, members_path(lost))}
    await hub.push()
    assert (await hub.reconcile()).open == 0, await hub.open_findings()
    members = {m["value"] for m in (await app.group(group)).get("members", [])}
    assert (await app.user(users[1]))["id"] in members


# -- the command line ------------------------------------------------------------------------------


def scimward(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, timeout=120, env={**os.environ, "SCIMWARD_DATABASE_URL": url, "COLUMNS": "250"})


@pytest.mark.slow  # a dozen `scimward` commands against a hub and a downstream
def test_reconcile_and_findings_on_the_command_line(tmp_path: Path, downstream: Peer) -> None:
    url = f"sqlite:///{tmp_path / 'cli-hub.db'}"
    upgrade(url)
    user = name("cli")

    async def prepare() -> None:
        db = Database(url)
        hub = Hub(db, identity_store(db), Propagator(db), SecretBox(), Reconciler(db))  # the key the CLI reads
        await hub.add_target("app", downstream)
        await hub.user(user, title="Engineer")
        await hub.push()
        await hub.propagator.close()
        async with downstream.client() as client:
            app = App(client)
            await app.set("Users", (await app.user(user))["id"], "title", "CEO")
        await db.dispose()

    asyncio.run(prepare())
    found = scimward("reconcile", "app", "--json", url=url)
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert report["counts"]["changed_in_app"] == {"open": 1, "new": 1, "repaired": 0}
    assert [(f["kind"], f["attribute"], f["actual"], f["name"]) for f in report["findings"]] == [
        ("changed_in_app", "title", "CEO", user)
    ]
    listed = scimward("findings", "--target", "app", "--json", url=url)
    assert [(f["first_seen"], f["name"]) for f in json.loads(listed.stdout)] == [(report["started"], user)]
    table = scimward("findings", url=url)
    assert table.returncode == 0 and "changed_in_app" in table.stdout and "CEO" in table.stdout
    assert user in table.stdout, "the table names the account, not only its id"
    repaired = scimward("reconcile", "app", "--repair", url=url)
    assert repaired.returncode == 0 and "1 corrections enqueued" in repaired.stderr and "1 pushed" in repaired.stderr
    clean = scimward("reconcile", "app", url=url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "1 resolved" in clean.stderr and "changed_in_app" in clean.stdout
    assert scimward("reconcile", "nope", url=url).returncode == 2


# -- the admin API ---------------------------------------------------------------------------------


def test_reconcile_over_the_admin_api(tmp_path: Path, downstream: Peer) -> None:
    url = f"sqlite:///{tmp_path / 'api-hub.db'}"
    upgrade(url)
    admin_token = issue_token(url, "ops", scopes="admin")
    user = name("api")
    with (
        ServerThread(Settings(database_url=url, run_worker=False)) as server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/admin/v1",
            timeout=60,
            headers={"Authorization": f"Bearer {admin_token}"},
        ) as admin,
    ):
        added = admin.post("/targets", json={"name": "app", "url": downstream.base_url, "token": downstream.token})
        assert added.status_code == 201, added.text

        async def seed_and_tamper() -> None:
            db = Database(url)
            hub = Hub(db, identity_store(db), Propagator(db), SecretBox(), Reconciler(db))
            await hub.user(user, title="Engineer")
            await hub.push()
            await hub.propagator.close()
            async with downstream.client() as client:
                await App(client).set("Users", (await App(client).user(user))["id"], "title", "CEO")
            await db.dispose()

        asyncio.run(seed_and_tamper())
        report = admin.post("/targets/app/reconcile")
        assert report.status_code == 200, report.text
        assert report.json()["counts"]["changed_in_app"]["open"] == 1 and report.json()["repair"] is False
        repaired = admin.post("/targets/app/reconcile", json={"repair": True})
        assert repaired.json()["enqueued"] == 1
        assert admin.post("/targets/app/reconcile", json={"repair": "yes"}).status_code == 400
        assert admin.post("/targets/nope/reconcile").status_code == 404
        assert "/targets/{name}/reconcile" in admin.get("/openapi.json").json()["paths"]


# -- settings --------------------------------------------------------------------------------------


def test_reconcile_settings_come_from_the_target_configuration() -> None:
    assert parse_every(None) == timedelta(days=1), "daily unless configured"
    assert parse_every("30m") == timedelta(minutes=30) and parse_every(3600) == timedelta(hours=1)
    assert parse_every("0") is None and parse_every("off") is None and parse_every(False) is None
    with pytest.raises(InvalidValue):
        parse_every("daily")
    policy = ReconcilePolicy.from_config({"orphans": "deactivate", "reconcile_repair": True, "reconcile_every": "12h"})
    assert policy == ReconcilePolicy(repair=True, orphans="deactivate", every=timedelta(hours=12))
    assert ReconcilePolicy.from_config({}) == ReconcilePolicy(repair=False, orphans="report", every=timedelta(days=1))
    with pytest.raises(InvalidValue, match="never deleted"):
        ReconcilePolicy.from_config({"orphans": "delete"})


async def test_the_schedule_loop_runs_until_stopped(hub: Hub, downstream: Peer) -> None:
    """What ``scimward serve`` and ``scimward worker`` run beside their propagate worker."""
    await hub.add_target("app", downstream, TargetConfig(extra={"reconcile_every": "1s"}))
    async with hub.db.write() as conn:
        await conn.execute(targets.update().values(created=datetime(2000, 1, 1)))
    stop = asyncio.Event()
    loop = asyncio.create_task(run_reconcile_schedule(hub.db, stop, secrets=hub.secrets, poll_seconds=0.05))
    for _ in range(200):
        if len(await RunStore(hub.db).last_started()) == 1:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(loop, timeout=10)
    assert len(await RunStore(hub.db).last_started()) == 1


async def test_findings_are_recorded_by_a_prepared_statement_too(hub: Hub, downstream: Peer) -> None:
    """psycopg prepares a statement on its sixth run and PostgreSQL plans it generically from the sixth
    prepared run on: the upsert must still find the partial index without the parameter's value."""
    target = await hub.add_target("app", downstream)
    store = FindingStore(hub.db)
    seen = datetime(2026, 1, 1)
    for n in range(15):
        await store.record(
            target.id,
            seen,
            [
                Observation(
                    kind="changed_in_app",
                    subject=f"id-{n}",
                    severity="medium",
                    attribute="title",
                    identity_id=f"id-{n}",
                    remote_id=f"r-{n}",
                    desired="a",
                    last_pushed="a",
                    data="b",
                )
            ]
            * 2,
        )
    assert len(await store.list()) == 15
