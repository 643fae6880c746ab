"""``target test`` probes what a target really does, by reading only (issue 19, "Know each target").

The quirky server claims full filter support and answers an empty list to every filter but
``userName eq``; a second scimward evaluates them all. The probe tells them apart, keeps what it
found in the target's capability profile (shown by ``target show``), and ``target status`` names
the attributes a target was found not to store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from scimward.cli.provisioning import target_status
from scimward.scim.errors import InvalidValue
from scimward.sync.reconcile import Reconciler
from scimward.sync.target_admin import TargetAdmin, parse_config
from tests.conftest import Peer
from tests.hub import Hub, open_hub
from tests.peers.quirky_server import Quirks, QuirkyServer

pytestmark = pytest.mark.anyio

ALL = {"Users.externalId", "Users.userName", "Groups.externalId", "Groups.displayName"}


@pytest.fixture
def quirky() -> Iterator[QuirkyServer]:
    with QuirkyServer(Quirks.all()) as server:
        yield server


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url) as opened:
        yield opened


async def test_the_probe_finds_the_filters_a_target_only_pretends_to_evaluate(hub: Hub, quirky: QuirkyServer) -> None:
    quirky.store.seed("Users", {"userName": "ada@example.com", "externalId": "hub-1"})
    quirky.store.seed("Groups", {"displayName": "admins", "externalId": "hub-2"})
    await hub.add_target("app", quirky.peer)
    admin = TargetAdmin(hub.db, hub.secrets)
    report = await admin.test("app")
    assert report["ok"]
    expected = {
        "Users.userName": True,
        "Users.externalId": False,
        "Groups.externalId": False,
        "Groups.displayName": False,
    }
    [filters] = [check for check in report["checks"] if check["check"] == "filters"]
    assert filters["evaluated"] == expected
    assert report["capabilities"]["filters"] == expected and report["capabilities"]["probed"]
    shown = (await admin.show("app"))["config"]["capabilities"]
    assert shown["filters"] == expected and shown["probed"] == report["capabilities"]["probed"]
    assert not [r for r in quirky.requests if r.method != "GET"], "the probe only reads"


async def test_a_target_with_nothing_to_search_for_is_not_judged(
    hub: Hub, quirky: QuirkyServer, downstream: Peer
) -> None:
    await hub.add_target("empty", quirky.peer)
    report = await TargetAdmin(hub.db, hub.secrets).test("empty")
    [filters] = [check for check in report["checks"] if check["check"] == "filters"]
    assert set(filters["evaluated"]) == ALL and set(filters["evaluated"].values()) == {None}
    assert "filters" not in report["capabilities"]
    # A server that evaluates what it says it does is found to, once it holds something to find.
    await hub.add_target("scimward", downstream)
    await hub.group("admins", [await hub.user("ada@example.com")])
    await hub.push()
    report = await TargetAdmin(hub.db, hub.secrets).test("scimward")
    assert report["capabilities"]["filters"] == dict.fromkeys(ALL, True)


async def test_status_names_what_the_target_does_not_store(hub: Hub, quirky: QuirkyServer, hub_url: str) -> None:
    await hub.add_target("app", quirky.peer)
    await hub.user("grace@example.com", title="Rear Admiral", emails=[{"value": "grace@example.com", "type": "work"}])
    await hub.push()
    status = await target_status(hub_url, "app")
    assert status["not_stored"] == ["emails.type", "title"]
    assert status["linked_users"] == 1 and status["capabilities"]["dropped"] == ["emails.type", "title"]


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"profile": "nuke"}, "profile must be one of standard, conservative, not 'nuke'"),
        ({"capabilities": {"member_remove": "regex"}}, "capabilities.member_remove must be one of filter, value_list"),
        ({"capabilities": {"filters": {"Users.email": True}}}, "capabilities.filters maps"),
        ({"capabilities": {"colour": "red"}}, "capabilities.colour is not a capability"),
    ],
)
def test_a_profile_propagate_could_not_follow_is_refused_when_given(option: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidValue, match=message.replace(".", r"\.")):
        parse_config(option)
    parse_config({"profile": "conservative", "capabilities": {"member_remove": "filter"}})


async def test_every_reconcile_probes_the_target_again(hub: Hub, quirky: QuirkyServer) -> None:
    """The periodic refresh: a target that stopped evaluating a filter is known not to, after a reconcile."""
    quirky.store.seed("Users", {"userName": "made-in-the-app", "externalId": "theirs"})
    await hub.add_target("app", quirky.peer)
    await hub.user("ada@example.com")
    await hub.push()  # its adoption lookup finds out that the target ignores externalId filters
    admin = TargetAdmin(hub.db, hub.secrets)
    first = (await admin.show("app"))["config"]["capabilities"]
    quirky.store.quirks.filters_empty = False  # the application was upgraded: it evaluates every filter
    await Reconciler(hub.db, secrets=hub.secrets).run("app")
    again = (await admin.show("app"))["config"]["capabilities"]
    assert first["filters"]["Users.externalId"] is False and again["filters"]["Users.externalId"] is True
    assert again["probed"] and again["probed"] != first.get("probed")
