"""Provisioning converges against imperfect applications (issue 19, "Done when").

One hub (SQLite or PostgreSQL) provisions three targets at once: the quirky server
(``tests/peers/quirky_server.py`` with every quirk on: 500 on a complex replace, 501 on filtered
member removal, on a group rename and on an ``externalId`` PATCH, empty lists for filters it cannot
evaluate, attributes dropped on every write), a second scimward, and scim2-server (PyPI; nobody here
wrote it). 30 users and 5 groups, some accounts already on each target to adopt, then every kind of
change: attribute updates (complex ones too), a manager change, member additions and removals,
deactivations bundled with other attributes, deletions, a group rename. Afterwards every target holds
the same effective state on every attribute it supports, without a duplicate account or group; every
deactivation went out in a request of its own; and reconcile finds nothing, twice.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from scimward.scim.resource_types import USER_TYPE
from scimward.store.governance import FindingStore
from scimward.sync.client import TargetClient
from scimward.sync.reconcile import Reconciler
from tests.conftest import Peer
from tests.hub import ENTERPRISE, Hub, open_hub
from tests.peers.quirky_server import Quirks, QuirkyServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow, pytest.mark.emptied_peers]

USERS, GROUPS, MEMBERS = 30, 5, 6
#: The issue's bound for convergence after the changes.
CONVERGE_SECONDS = 60.0
TARGETS = ("quirky", "scimward", "scim2")


@pytest.fixture
def quirky() -> Iterator[QuirkyServer]:
    with QuirkyServer(Quirks.all()) as server:
        yield server


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url) as opened:
        yield opened


@dataclass
class Person:
    """What the test made of one user: the state every target should end with."""

    user_name: str
    display_name: str
    given: str
    family: str
    title: str
    manager: str | None  # the manager's userName
    active: bool = True


def person(i: int, run: str) -> Person:
    return Person(
        f"u{i:02d}-{run}@example.com",
        f"User {i}",
        f"Given{i}",
        "Family",
        "Engineer",
        None if i == 0 else f"u00-{run}@example.com",
    )


async def view(client: TargetClient, *, supported: bool) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    """A target's state as comparable values: users by userName, groups' members' userNames by
    displayName. ``supported``: also the attributes the quirky server drops (title, the extension)."""
    accounts = [a async for a in client.iterate("Users")]
    names = [a["userName"] for a in accounts]
    assert len(names) == len(set(names)), f"duplicated accounts: {sorted(n for n in names if names.count(n) > 1)}"
    by_id = {a["id"]: a["userName"] for a in accounts}
    users: dict[str, dict[str, Any]] = {}
    for a in accounts:
        users[a["userName"]] = {
            "active": a.get("active", True),
            "displayName": a.get("displayName"),
            "name": {k: a.get("name", {}).get(k) for k in ("givenName", "familyName")},
            "emails": sorted(e["value"] for e in a.get("emails") or []),
            "linked": bool(a.get("externalId")),
        }
        if supported:
            enterprise = a.get(ENTERPRISE) or {}
            manager = (enterprise.get("manager") or {}).get("value")
            users[a["userName"]].update(
                title=a.get("title"),
                department=enterprise.get("department"),
                manager=by_id.get(manager) if manager else None,
            )
    groups: dict[str, list[str]] = {}
    summaries = [g async for g in client.iterate("Groups", attributes=["id", "displayName"])]
    titles = [g["displayName"] for g in summaries]
    assert len(titles) == len(set(titles)), f"duplicated groups: {titles}"
    for summary in summaries:
        group = await client.get("Groups", summary["id"])
        groups[group["displayName"]] = sorted(by_id.get(m["value"], m["value"]) for m in group.get("members") or [])
    return users, groups


def expected(
    people: list[Person], teams: dict[str, list[int]], *, supported: bool
) -> tuple[dict[str, dict[str, Any]], dict[str, list[str]]]:
    users: dict[str, dict[str, Any]] = {}
    for p in people:
        users[p.user_name] = {
            "active": p.active,
            "displayName": p.display_name,
            "name": {"givenName": p.given, "familyName": p.family},
            "emails": [p.user_name],
            "linked": True,
        }
        if supported:
            users[p.user_name].update(title=p.title, department="R&D", manager=p.manager)
    return users, {title: sorted(people[i].user_name for i in members) for title, members in teams.items()}


def assert_same(
    actual: tuple[dict[str, Any], dict[str, Any]], wanted: tuple[dict[str, Any], dict[str, Any]], where: str
) -> None:
    """Equal, or an assertion naming only the accounts and groups that differ."""
    differ = {
        key: (a.get(key), w.get(key))
        for a, w in zip(actual, wanted, strict=True)
        for key in a.keys() | w.keys()
        if a.get(key) != w.get(key)
    }
    assert not differ, f"{where}: (actual, expected) {differ}"


async def test_users_and_groups_converge_on_quirky_and_real_targets(
    hub: Hub, quirky: QuirkyServer, downstream: Peer, scim2_server: Peer
) -> None:
    run = uuid.uuid4().hex[:6]
    peers = {"quirky": quirky.peer, "scimward": downstream, "scim2": scim2_server}
    for target, peer in peers.items():
        await hub.add_target(target, peer)
    people = [person(i, run) for i in range(USERS)]
    teams = {f"team{g}-{run}": list(range(g * MEMBERS, (g + 1) * MEMBERS)) for g in range(GROUPS)}

    # Accounts the applications' own admins made before the hub: three users and a group, to adopt.
    for peer in (downstream, scim2_server):
        async with peer.client() as client:
            for p in people[25:28]:
                await client.create(
                    "Users",
                    {
                        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                        "userName": p.user_name,
                        "displayName": "made in the app",
                    },
                )
            await client.create(
                "Groups", {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": f"team4-{run}"}
            )
    for p in people[25:28]:
        quirky.store.seed("Users", {"userName": p.user_name, "displayName": "made in the app"})
    quirky.store.seed("Groups", {"displayName": f"team4-{run}"})

    ids: list[str] = []
    for p in people:
        enterprise: dict[str, Any] = {"department": "R&D"}
        if ids:
            enterprise["manager"] = {"value": ids[0]}
        ids.append(
            await hub.user(
                p.user_name,
                displayName=p.display_name,
                title=p.title,
                active=True,
                name={"givenName": p.given, "familyName": p.family},
                emails=[{"value": p.user_name, "type": "work", "primary": True}],
                **{ENTERPRISE: enterprise},
            )
        )
    group_ids = {title: await hub.group(title, [ids[i] for i in members]) for title, members in teams.items()}
    await hub.push()
    for target, peer in peers.items():
        async with peer.client() as client:
            assert_same(
                await view(client, supported=target != "quirky"),
                expected(people, teams, supported=target != "quirky"),
                f"{target} after the first push",
            )

    # Every kind of change.
    for i in range(1, 6):  # complex replaces (500 on the quirky server) with a plain one
        people[i].given, people[i].title = f"Renamed{i}", "Staff Engineer"
        await hub.patch(
            "User",
            ids[i],
            {"op": "replace", "path": "name", "value": {"givenName": people[i].given, "familyName": "Family"}},
            {"op": "replace", "path": "title", "value": people[i].title},
        )
    for i in (6, 7, 8):  # a deactivation bundled with an attribute the quirky server refuses whole
        people[i].active, people[i].family = False, "Leaver"
        await hub.patch(
            "User",
            ids[i],
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": "name", "value": {"givenName": people[i].given, "familyName": "Leaver"}},
        )
    for i in (9, 10):  # deleted in the hub: deactivated downstream (the default deprovisioning)
        await hub.store.delete(USER_TYPE, ids[i])
        people[i].active = False
    people[11].manager = people[2].user_name  # a manager change: a complex replace of the reference
    await hub.patch("User", ids[11], {"op": "replace", "path": f"{ENTERPRISE}:manager", "value": {"value": ids[2]}})
    old, renamed = f"team0-{run}", f"renamed0-{run}"  # a group rename (501 by PATCH on the quirky server)
    await hub.patch("Group", group_ids[old], {"op": "replace", "path": "displayName", "value": renamed})
    teams[renamed] = teams.pop(old)
    team1 = f"team1-{run}"  # members added and removed (filtered removal: 501 on the quirky server)
    await hub.patch(
        "Group",
        group_ids[team1],
        {"op": "add", "path": "members", "value": [{"value": ids[20]}]},
        {"op": "remove", "path": f'members[value eq "{ids[6]}"]'},
    )
    teams[team1] = [i for i in teams[team1] if i != 6] + [20]
    team2 = f"team2-{run}"
    await hub.patch("Group", group_ids[team2], {"op": "remove", "path": f'members[value eq "{ids[13]}"]'})
    teams[team2].remove(13)
    # A deleted user leaves the hub's groups: the targets' copies follow.
    teams[f"team1-{run}"].remove(9)
    teams[f"team1-{run}"].remove(10)

    started = time.monotonic()
    await hub.propagator.drain(deadline=started + CONVERGE_SECONDS)
    assert time.monotonic() - started < CONVERGE_SECONDS
    for target, peer in peers.items():
        async with peer.client() as client:
            assert_same(
                await view(client, supported=target != "quirky"),
                expected(people, teams, supported=target != "quirky"),
                f"{target} after the changes",
            )

    # Deprovisioning first and alone: every deactivation the quirky server got was a request of its own.
    deactivations = [
        r
        for r in quirky.sent("PATCH", "Users")
        if any(op.get("path") == "active" and op.get("value") is False for op in r.body["Operations"])
    ]
    assert len(deactivations) == 5
    assert all(len(r.body["Operations"]) == 1 and r.status == 200 for r in deactivations)

    reconciler = Reconciler(hub.db, secrets=hub.secrets, page_size=7, group_page_size=2)
    for target in TARGETS:
        for _ in range(2):
            report = await reconciler.run(target)
            assert report.open == 0, (target, report.counts)
    assert await FindingStore(hub.db).list() == []
