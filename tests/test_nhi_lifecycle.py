"""The NHI worker's round against the store, on SQLite and PostgreSQL, with the clock given: the
leaver cascade by policy (reassign, disable, hold, grace), co-owned NHIs, service-account Users,
expiry, the breaker guarding a cascade, the joiner rules of the gate, and the NHI findings."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa

from scimward.governance.nhi import nhi_round
from scimward.governance.nhi.registry import Registry
from scimward.policy import identity_store, policies
from scimward.scim.resource import normalize
from scimward.scim.resource_types import (
    AGENT_TYPE,
    AGENTIC_APPLICATION_TYPE,
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    GROUP_TYPE,
    USER_SCHEMA,
    USER_TYPE,
)
from scimward.store.database import Database
from scimward.store.governance import PolicyDenied, nhi_rows
from scimward.store.identity import IdentityStore
from scimward.store.tables import changes, findings, links, targets
from scimward.store.timeutil import utcnow

AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
NHI = "urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TYPES = frozenset({"serviceaccount"})
T = TypeVar("T")


def run(url: str, work: Callable[[Database, IdentityStore], Awaitable[T]], policy: str | None = None) -> T:
    async def inside() -> T:
        database = Database(url)
        try:
            if policy is not None:
                await policies.apply(database, policy, "tests")
            return await work(database, identity_store(database))
        finally:
            await database.dispose()

    return asyncio.run(inside())


async def person(store: IdentityStore, name: str, manager: str | None = None, **extra: Any) -> str:
    body: dict[str, Any] = {"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": name, "active": True, **extra}
    if manager:
        body[ENTERPRISE_USER_SCHEMA] = {"manager": {"value": manager}}
    return (await store.create(USER_TYPE, normalize(body, USER_TYPE), source="tests")).id


async def agent(store: IdentityStore, name: str, owners: list[str], **ext: Any) -> str:
    body = {
        "schemas": [AGENT, NHI],
        "name": name,
        "active": True,
        "owners": [{"value": o, "type": "User"} for o in owners],
        NHI: {"kind": "api_key", **ext},
    }
    return (await store.create(AGENT_TYPE, normalize(body, AGENT_TYPE), source="tests")).id


async def deactivate(store: IdentityStore, rt: Any, identity_id: str, active: bool = False) -> None:
    await store.patch(
        rt,
        identity_id,
        {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "active", "value": active}]},
        source="tests",
    )


async def active(store: IdentityStore, identity_id: str, rt: Any = AGENT_TYPE) -> bool:
    return (await store.get(rt, identity_id)).doc.get("active") is not False


async def open_findings(database: Database) -> set[tuple[str, str, str | None]]:
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(findings.c.kind, findings.c.subject, findings.c.owner).where(
                findings.c.status != "resolved", findings.c.kind.like("nhi_%")
            )
        )
        return {(r.kind, r.subject, r.owner) for r in rows}


async def sources(database: Database, identity_id: str) -> list[tuple[str, str, str]]:
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(changes.c.op, changes.c.source, changes.c.status)
            .where(changes.c.identity_id == identity_id)
            .order_by(changes.c.created)
        )
        return [(r.op, r.source, r.status) for r in rows]


def test_reassign_asks_the_manager_then_disables_after_the_grace(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        boss = await person(store, "boss")
        alice = await person(store, "alice", manager=boss)
        unaccepted = await agent(store, "unaccepted", [alice])
        accepted = await agent(store, "accepted", [alice])
        now = utcnow()
        await deactivate(store, USER_TYPE, alice)
        first = await nhi_round(database, store, TYPES, now=now)
        assert set(first.orphaned) == {unaccepted, accepted} and first.disabled == []
        assert first.reassigning == {unaccepted: boss, accepted: boss}
        assert ("nhi_reassignment_pending", "unaccepted", "boss") in await open_findings(database)
        assert ("nhi_owner_gone", "unaccepted", None) in await open_findings(database)
        # The manager accepts one (what `nhi transfer accepted --to boss` does).
        await store.patch(
            AGENT_TYPE,
            accepted,
            {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": "owners", "value": [{"value": boss, "type": "User"}]}],
            },
            source="cli",
        )
        later = await nhi_round(database, store, TYPES, now=now + timedelta(days=8))
        assert later.disabled == [unaccepted]
        assert not await active(store, unaccepted) and await active(store, accepted)
        assert (await sources(database, unaccepted))[-1] == ("deactivate", "nhi:cascade", "applied")
        # Accepted: nothing of the leaver's remains open for it; the new owner is to attest it (and
        # its missing expiry is another matter).
        assert {f[0] for f in await open_findings(database) if f[1] == "accepted"} == {
            "nhi_no_expiry",
            "nhi_attestation_due",
        }

    run(hub_url, work, "nhi:\n  owner_leaves: reassign\n  grace: 7d\n")


def test_hold_keeps_the_nhi_and_its_finding_co_owned_ones_are_left_alone(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice, bob = await person(store, "alice"), await person(store, "bob")
        held = await agent(store, "held", [alice])
        shared = await agent(store, "shared", [alice, bob])
        await store.delete(USER_TYPE, alice, source="tests")
        result = await nhi_round(database, store, TYPES, now=utcnow() + timedelta(days=30))
        assert result.orphaned == [held] and result.disabled == []
        assert await active(store, held) and await active(store, shared)
        gone = {f[1] for f in await open_findings(database) if f[0] == "nhi_owner_gone"}
        assert gone == {"held"}

    run(hub_url, work, "nhi:\n  owner_leaves: hold\n")


def test_an_owner_back_before_the_grace_ends_stops_the_cascade(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice = await person(store, "alice")
        bot = await agent(store, "bot", [alice])
        now = utcnow()
        await deactivate(store, USER_TYPE, alice)
        assert (await nhi_round(database, store, TYPES, now=now)).orphaned == [bot]
        await deactivate(store, USER_TYPE, alice, active=True)
        await nhi_round(database, store, TYPES, now=now + timedelta(hours=1))
        await deactivate(store, USER_TYPE, alice)  # leaves again: the grace starts again
        result = await nhi_round(database, store, TYPES, now=now + timedelta(days=2))
        assert result.disabled == [] and await active(store, bot)

    run(hub_url, work, "nhi:\n  owner_leaves: disable\n  grace: 3d\n")


def test_a_service_account_user_follows_its_manager(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice = await person(store, "alice")
        service = await person(store, "svc-backup", manager=alice, userType="ServiceAccount")
        employee = await person(store, "eve", manager=alice, userType="Employee")
        await deactivate(store, USER_TYPE, alice)
        result = await nhi_round(database, store, TYPES)
        assert result.disabled == [service]
        assert not await active(store, service, USER_TYPE) and await active(store, employee, USER_TYPE)

    run(hub_url, work, "nhi:\n  owner_leaves: disable\n  grace: 0\n")


def test_an_expired_nhi_is_disabled_once(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice = await person(store, "alice")
        old = await agent(store, "old", [alice], expires="2020-01-01T00:00:00Z")
        fresh = await agent(store, "fresh", [alice], expires="2099-01-01T00:00:00Z")
        assert (await nhi_round(database, store, TYPES)).expired == [old]
        assert not await active(store, old) and await active(store, fresh)
        assert (await sources(database, old))[-1] == ("deactivate", "nhi:expiry", "applied")
        await deactivate(store, AGENT_TYPE, old, active=True)  # a person enables it again, knowingly
        assert (await nhi_round(database, store, TYPES)).expired == []
        assert await active(store, old)

    run(hub_url, work)


def test_the_breaker_guards_a_cascade(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        async with database.write() as conn:  # before any change: the gate reads targets once a second
            await conn.execute(
                targets.insert().values(
                    name="app", base_url="http://127.0.0.1:9/scim/v2", token_encrypted="x", config={}, created=utcnow()
                )
            )
            target_id = (await conn.execute(sa.select(targets.c.id))).scalar_one()
        alice = await person(store, "alice")
        bots = [await agent(store, f"bot-{n}", [alice]) for n in range(4)]
        async with database.write() as conn:
            await conn.execute(
                links.insert(),
                [
                    {
                        "target_id": target_id,
                        "identity_id": b,
                        "resource_type": "Agent",
                        "remote_id": f"r{b}",
                        "status": "active",
                        "acknowledged": utcnow(),
                    }
                    for b in bots
                ],
            )
        await deactivate(store, USER_TYPE, alice)
        await nhi_round(database, store, TYPES)
        last = {b: (await sources(database, b))[-1][2] for b in bots}
        assert sorted(last.values()) == ["applied", "applied", "pending", "pending"]
        # The held two stay active in the effective state (what targets receive) until released.
        effective = await nhi_rows.effective_by_id(database, bots)
        assert {b: effective[b].active for b in bots} == {b: status == "pending" for b, status in last.items()}
        again = await nhi_round(database, store, TYPES)  # held once is enough: no pile of held changes
        held = next(b for b, status in last.items() if status == "pending")
        assert again.disabled == [] and len(await sources(database, held)) == 2

    run(hub_url, work, "breaker:\n  max_count: 2\n  min_count: 100\nnhi:\n  owner_leaves: disable\n  grace: 0\n")


def test_the_gate_applies_the_joiner_requirements(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice = await person(store, "alice")
        with pytest.raises(PolicyDenied, match="needs an owner, a purpose, an expiry"):
            await store.create(AGENT_TYPE, normalize({"schemas": [AGENT], "name": "bare"}, AGENT_TYPE), source="t")
        with pytest.raises(PolicyDenied, match="maximum lifetime of 30 days"):
            await agent(store, "long", [alice], purpose="x", expires="2099-01-01T00:00:00Z")
        soon = (utcnow() + timedelta(days=10)).isoformat(timespec="seconds") + "Z"
        fine = await agent(store, "fine", [alice], purpose="export", expires=soon)
        # Disabling is never stopped by the requirements, even of an NHI that no longer meets them.
        await store.patch(
            AGENT_TYPE,
            fine,
            {
                "schemas": [PATCH],
                "Operations": [
                    {"op": "remove", "path": f"{NHI}:purpose"},
                    {"op": "replace", "path": "active", "value": False},
                ],
            },
            source="t",
        )
        assert not await active(store, fine)

    run(
        hub_url, work, "nhi:\n  require: [owner, purpose, expiry]\n  missing: deny\n  max_lifetime:\n    api_key: 30d\n"
    )


def test_held_when_the_policy_says_hold(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        made = await store.create(AGENT_TYPE, normalize({"schemas": [AGENT], "name": "bare"}, AGENT_TYPE), source="t")
        assert (await sources(database, made.id)) == [("create", "t", "pending")]

    run(hub_url, work, "nhi:\n  require: [owner]\n  missing: hold\n")


def test_findings_open_and_resolve(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice = await person(store, "alice")
        await store.create(AGENT_TYPE, normalize({"schemas": [AGENT], "name": "nobodys"}, AGENT_TYPE), source="t")
        long_lived = await agent(
            store,
            "long-lived",
            [alice],
            expires="2099-01-01T00:00:00Z",
            credentials=[{"identifier": "k1", "created": "2020-01-01T00:00:00Z"}],
        )
        await nhi_round(database, store, TYPES)
        found = {(kind, subject) for kind, subject, _ in await open_findings(database)}
        assert found == {
            ("nhi_no_owner", "nobodys"),
            ("nhi_no_expiry", "nobodys"),
            ("nhi_beyond_max_lifetime", "long-lived"),
            ("nhi_rotation_overdue", "long-lived"),
        }
        soon = (utcnow() + timedelta(days=10)).isoformat(timespec="seconds") + "Z"
        await store.patch(
            AGENT_TYPE,
            long_lived,
            {
                "schemas": [PATCH],
                "Operations": [
                    {"op": "replace", "path": f"{NHI}:expires", "value": soon},
                    {
                        "op": "replace",
                        "path": f"{NHI}:credentials",
                        "value": [{"identifier": "k1", "created": "2020-01-01T00:00:00Z", "lastRotated": soon}],
                    },
                ],
            },
            source="t",
        )
        await nhi_round(database, store, TYPES)
        found = {(kind, subject) for kind, subject, _ in await open_findings(database)}
        assert found == {("nhi_no_owner", "nobodys"), ("nhi_no_expiry", "nobodys")}

    run(hub_url, work)


def test_an_agentic_application_not_accessed_within_stale_after_is_a_finding(hub_url: str) -> None:
    """The issue's ``lastAccessed`` for stale-access findings: older than ``nhi.stale_after`` (30 days here)."""
    app_schema = "urn:ietf:params:scim:schemas:core:2.0:AgenticApplication"

    async def work(database: Database, store: IdentityStore) -> None:
        recent = (utcnow() - timedelta(days=3)).isoformat(timespec="seconds") + "Z"
        old = await store.create(
            AGENTIC_APPLICATION_TYPE,
            normalize(
                {"schemas": [app_schema], "name": "old-portal", "active": True, "lastAccessed": "2020-01-01T00:00:00Z"},
                AGENTIC_APPLICATION_TYPE,
            ),
            source="t",
        )
        for name, extra in (
            ("busy-portal", {"lastAccessed": recent}),
            ("off-portal", {"lastAccessed": "2020-01-01T00:00:00Z", "active": False}),
        ):
            await store.create(
                AGENTIC_APPLICATION_TYPE,
                normalize({"schemas": [app_schema], "name": name, **extra}, AGENTIC_APPLICATION_TYPE),
                source="t",
            )
        await nhi_round(database, store, TYPES)
        assert {(k, s) for k, s, _ in await open_findings(database)} == {("nhi_application_stale", "old-portal")}
        await store.patch(
            AGENTIC_APPLICATION_TYPE,
            old.id,
            {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "lastAccessed", "value": recent}]},
            source="t",
        )
        await nhi_round(database, store, TYPES)
        assert await open_findings(database) == set()

    run(hub_url, work, "nhi:\n  stale_after: 30d\n")


def test_privilege_environment_and_reuse_findings(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice = await person(store, "alice")
        service = await person(store, "svc-deploy", manager=alice, userType="ServiceAccount")
        governance = "urn:scimward:params:scim:schemas:extension:governance:2.0:Group"
        await store.create(
            GROUP_TYPE,
            normalize(
                {
                    "schemas": [GROUP_SCHEMA, governance],
                    "displayName": "Admins",
                    "members": [{"value": service}],
                    governance: {"privileged": True},
                },
                GROUP_TYPE,
            ),
            source="t",
        )
        soon = (utcnow() + timedelta(days=10)).isoformat(timespec="seconds") + "Z"
        multi = await agent(store, "multi", [alice], expires=soon, maxApplications=1)
        async with database.write() as conn:
            for name, environment in (("crm-prod", "prod"), ("crm-staging", "staging")):
                await conn.execute(
                    targets.insert().values(
                        name=name,
                        base_url="http://127.0.0.1:9/scim/v2",
                        token_encrypted="x",
                        config={"environment": environment, "push_nhis": True},
                        created=utcnow(),
                    )
                )
            ids = [r[0] for r in await conn.execute(sa.select(targets.c.id).order_by(targets.c.id))]
            await conn.execute(
                links.insert(),
                [
                    {
                        "target_id": t,
                        "identity_id": multi,
                        "resource_type": "Agent",
                        "remote_id": f"r{t}",
                        "status": "active",
                        "acknowledged": utcnow(),
                    }
                    for t in ids
                ],
            )
        await nhi_round(database, store, TYPES)
        found = {(kind, subject) for kind, subject, _ in await open_findings(database)}
        assert {
            ("nhi_privileged", "svc-deploy"),
            ("nhi_environments_mixed", "multi"),
            ("nhi_too_many_applications", "multi"),
        } <= found
        assert ("nhi_environments_mixed", "svc-deploy") not in found

    run(hub_url, work)


def test_a_mover_owner_makes_the_nhi_due_for_attestation(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        department: dict[str, Any] = {ENTERPRISE_USER_SCHEMA: {"department": "R&D"}}
        alice = await person(store, "alice", None, **department)
        soon = (utcnow() + timedelta(days=10)).isoformat(timespec="seconds") + "Z"
        bot = await agent(store, "bot", [alice], expires=soon)
        await nhi_round(database, store, TYPES)  # first sight: who answers for it is recorded
        assert not {f for f in await open_findings(database) if f[0] == "nhi_attestation_due"}
        await store.patch(
            USER_TYPE,
            alice,
            {
                "schemas": [PATCH],
                "Operations": [{"op": "replace", "path": f"{ENTERPRISE_USER_SCHEMA}:department", "value": "Sales"}],
            },
            source="hr",
        )
        assert (await nhi_round(database, store, TYPES)).attestation_due == [bot]
        assert ("nhi_attestation_due", "bot", None) in await open_findings(database)
        registry = Registry(database, TYPES, store)
        await registry.attest("bot", "alice")
        assert (await nhi_round(database, store, TYPES)).attestation_due == []
        assert not {f for f in await open_findings(database) if f[0] == "nhi_attestation_due"}

    run(hub_url, work)


def test_a_review_cadence_makes_a_finding_when_it_passes(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        alice = await person(store, "alice")
        soon = (utcnow() + timedelta(days=10)).isoformat(timespec="seconds") + "Z"
        await agent(store, "bot", [alice], expires=soon, reviewCadence="30d")
        await nhi_round(database, store, TYPES)
        assert not {f for f in await open_findings(database) if f[0] == "nhi_review_overdue"}
        await nhi_round(database, store, TYPES, now=utcnow() + timedelta(days=31))
        assert {f[:2] for f in await open_findings(database) if f[0] == "nhi_review_overdue"} == {
            ("nhi_review_overdue", "bot")
        }

    run(hub_url, work)


def test_an_nhi_the_gate_holds_is_registered_as_pending(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        await person(store, "alice")
        view = await Registry(database, TYPES, store).add(
            "no-expiry", "bot", ["alice"], purpose=None, expires_in=None, environment=None, actor="carol"
        )
        assert view.pending and view.owners == ["alice"] and view.to_json()["pending"] is True
        assert [v.name for v in await Registry(database, TYPES, store).all()] == []  # not effective yet

    run(hub_url, work, "nhi:\n  require: [owner, expiry]\n  missing: hold\n")


def test_orphaned_accounts_that_look_non_human_are_listed_as_unmanaged(hub_url: str) -> None:
    async def work(database: Database, store: IdentityStore) -> None:
        async with database.write() as conn:
            await conn.execute(
                targets.insert().values(
                    name="crm", base_url="http://127.0.0.1:9/scim/v2", token_encrypted="x", config={}, created=utcnow()
                )
            )
            target_id = (await conn.execute(sa.select(targets.c.id))).scalar_one()
            await conn.execute(
                findings.insert(),
                [
                    {
                        "target_id": target_id,
                        "kind": "orphaned_account",
                        "severity": "high",
                        "resource_type": "User",
                        "subject": name,
                        "remote_id": f"r-{name}",
                        "attribute": "",
                        "status": "open",
                        "actual": {"userName": name, **({"userType": kind} if kind else {})},
                        "first_seen": utcnow(),
                        "last_seen": utcnow(),
                    }
                    for name, kind in (
                        ("svc-backup", None),
                        ("ada", None),
                        ("nightly", "ServiceAccount"),
                        ("renovate[bot]", None),
                    )
                ],
            )
        found = await Registry(database, TYPES, store).unmanaged("svc-*,*[[]bot[]]")
        assert {(f["account"], f["why"]) for f in found} == {
            ("svc-backup", "name matches svc-*"),
            ("nightly", "userType serviceaccount"),
            ("renovate[bot]", "name matches *[[]bot[]]"),
        }
        assert all(f["target"] == "crm" and f["adopt"].startswith("scimward nhi adopt crm ") for f in found)

    run(hub_url, work)
