"""Access reviews against a real downstream scimward, on both hub dialects (issue 15's "done when").

Changes are made through the hub's gated store (what the SCIM endpoint runs) and pushed by draining
a Propagator; the downstream group is then read over SCIM.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from scimward.governance.groups import GovernanceUpdate, list_groups, set_governance
from scimward.governance.reviews import ReviewError, Reviews
from scimward.policy import Approvals
from scimward.policy.gate import REVIEW_RULE
from scimward.scim.errors import ScimError
from scimward.scim.resource_types import GOVERNANCE_GROUP_SCHEMA, GROUP_TYPE
from scimward.store.timeutil import utcnow
from tests.conftest import Peer
from tests.hub import ENTERPRISE, Hub, open_hub
from tests.test_propagate import remote_group_members

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url, fresh_policy=True) as opened:
        yield opened


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def privileged_group(hub: Hub, size: int, owner: str) -> tuple[str, str, list[str]]:
    """A privileged group of ``size`` members in one department, owned by ``owner``: name, id, member ids."""
    prefix = unique("m")
    members = [
        await hub.user(f"{prefix}-{n:02d}@example.com", **{ENTERPRISE: {"department": "Platform"}}) for n in range(size)
    ]
    name = unique("admins")
    group = await hub.group(name, members)
    await set_governance(
        hub.db,
        name,
        GovernanceUpdate(owners=[owner], purpose="production access", privileged=True, review_cadence=90),
        "tests",
        store=hub.store,
    )
    return name, group, members


async def test_group_governance_is_in_the_scim_extension_and_listed(hub: Hub) -> None:
    owner = unique("olga") + "@example.com"
    await hub.user(owner)
    name, group, _ = await privileged_group(hub, 2, owner)
    doc = (await hub.store.get(GROUP_TYPE, group)).doc
    assert doc[GOVERNANCE_GROUP_SCHEMA]["privileged"] is True
    assert doc[GOVERNANCE_GROUP_SCHEMA]["owners"][0]["display"] == owner
    assert GOVERNANCE_GROUP_SCHEMA in doc["schemas"]
    listed = {g.name: g for g in await list_groups(hub.db, privileged=True)}
    assert listed[name].owner_names == [owner] and listed[name].members == 2
    assert listed[name].review_cadence == 90
    unowned = await hub.group(unique("plain"), [])
    assert unowned in {g.id for g in await list_groups(hub.db, unowned=True)}
    assert group not in {g.id for g in await list_groups(hub.db, unowned=True)}
    changes = await Approvals(hub.db, hub.store.direct).changes(identity_id=group)
    assert changes[0].source == "cli" and changes[0].actor == "tests"


async def test_three_revoked_seven_kept_leaves_seven_downstream(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    owner = unique("olga") + "@example.com"
    await hub.user(owner)
    name, group, members = await privileged_group(hub, 10, owner)
    await hub.push()
    assert len(await remote_group_members(downstream, name)) == 10

    reviews = Reviews(hub.db, hub.store)
    campaign = unique("q4")
    started = await reviews.start(campaign, groups=f'displayName eq "{name}"', reviewer="owner", actor="tests")
    assert started.items == 10
    _, items = await reviews.show(campaign)
    assert {i.member_id for i in items} == set(members)
    assert all(i.group_name == name and i.reviewers == [owner] and i.granted is not None for i in items)
    revoked = await reviews.decide(campaign, [1, 2, 3], "revoke", owner, "no longer on call")
    assert [d.outcome for d in revoked] == ["applied"] * 3
    await reviews.decide(campaign, [4, 5, 6, 7, 8, 9], "keep", owner)
    closed = await reviews.close(campaign, "tests")
    assert [(d.number, d.decision) for d in closed] == [(10, "keep")]  # the default
    await hub.push()

    kept = {i.member_id for i in items if i.number > 3}
    hub_members = {m["value"] for m in (await hub.store.get(GROUP_TYPE, group)).members or []}
    assert hub_members == kept
    assert len(await remote_group_members(downstream, name)) == 7
    _, after = await reviews.show(campaign)
    assert [(i.decision, i.outcome) for i in after[:3]] == [("revoke", "applied")] * 3
    assert after[9].defaulted and after[9].decided_by
    changes = await Approvals(hub.db, hub.store.direct).changes(identity_id=group)
    assert changes[0].source == f"review:{campaign}" and changes[0].actor == owner
    assert len(changes[0].members_removed) == 3


async def test_an_undecided_item_takes_the_default_at_the_due_date(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    owner = unique("olga") + "@example.com"
    await hub.user(owner)
    name, group, _members = await privileged_group(hub, 3, owner)
    await hub.push()
    reviews = Reviews(hub.db, hub.store)
    campaign = unique("due")
    await reviews.start(
        campaign, groups=f'displayName eq "{name}"', due=timedelta(days=1), default="revoke", actor="tests"
    )
    await reviews.decide(campaign, [1, 2], "keep", owner)
    assert await reviews.apply_due(utcnow()) == []  # not due yet
    assert campaign in await reviews.apply_due(utcnow() + timedelta(days=2))
    shown, items = await reviews.show(campaign)
    assert shown.status == "closed"
    assert (items[2].decision, items[2].defaulted, items[2].outcome) == ("revoke", True, "applied")
    await hub.push()
    hub_members = {m["value"] for m in (await hub.store.get(GROUP_TYPE, group)).members or []}
    assert hub_members == {items[0].member_id, items[1].member_id}
    assert len(await remote_group_members(downstream, name)) == 2


async def test_nobody_reviews_their_own_access(hub: Hub) -> None:
    owner = unique("olga") + "@example.com"
    await hub.user(owner)
    name, _group, _members = await privileged_group(hub, 2, owner)
    reviews = Reviews(hub.db, hub.store)
    campaign = unique("self")
    await reviews.start(campaign, groups=f'displayName eq "{name}"', actor="tests")
    _, items = await reviews.show(campaign)
    with pytest.raises(ReviewError, match="cannot review their own access"):
        await reviews.decide(campaign, [1, 2], "keep", items[0].member_name)
    _, untouched = await reviews.show(campaign)
    assert [i.decision for i in untouched] == [None, None]  # all or nothing


async def test_an_idp_re_adding_revoked_access_is_held(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    owner = unique("olga") + "@example.com"
    await hub.user(owner)
    name, group, _members = await privileged_group(hub, 4, owner)
    await hub.push()
    reviews = Reviews(hub.db, hub.store)
    campaign = unique("readd")
    await reviews.start(campaign, groups=f'displayName eq "{name}"', actor="tests")
    _, items = await reviews.show(campaign)
    await reviews.decide(campaign, [1], "revoke", owner)
    await hub.push()
    assert len(await remote_group_members(downstream, name)) == 3

    await hub.store.patch(
        GROUP_TYPE,
        group,
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": items[0].member_id}]}],
        },
        source="scim:okta",
        actor="okta",
    )
    await hub.push()
    assert len(await remote_group_members(downstream, name)) == 3  # held: not effective
    pending = await Approvals(hub.db, hub.store.direct).changes(status="pending", identity_id=group)
    assert len(pending) == 1 and pending[0].members_added == [items[0].member_id]
    assert pending[0].rules[0]["name"] == REVIEW_RULE and campaign in pending[0].rules[0]["reason"]


async def test_the_recommendation_reads_peers_departments_and_activity(hub: Hub) -> None:
    prefix = unique("p")
    platform = [await hub.user(f"{prefix}-{n}", **{ENTERPRISE: {"department": "Platform"}}) for n in range(5)]
    seller = await hub.user(f"{prefix}-sales", **{ENTERPRISE: {"department": "Sales"}})
    leaver = await hub.user(f"{prefix}-leaver", active=False, **{ENTERPRISE: {"department": "Platform"}})
    name = unique("ops")
    await hub.group(name, [*platform, seller, leaver])
    reviews = Reviews(hub.db, hub.store)
    campaign = unique("peers")
    await reviews.start(campaign, groups=f'displayName eq "{name}"', actor="tests")
    _, items = await reviews.show(campaign)
    advice = {i.member_name: (i.recommendation, i.reasons) for i in items}
    assert advice[f"{prefix}-sales"][0] == "revoke" and advice[f"{prefix}-sales"][1][0].startswith("outlier")
    assert advice[f"{prefix}-leaver"] == ("revoke", ["inactive in the hub (active is false)"])
    assert advice[f"{prefix}-0"] == ("keep", [])
    assert [i.member_name for i in items] == sorted(advice)  # by member name
    assert items[0].context["peer_departments"] == {"Platform": 5, "Sales": 1}
    with pytest.raises(ReviewError, match="exists already"):
        await reviews.start(campaign, groups=f'displayName eq "{name}"', actor="tests")
    with pytest.raises(ScimError, match="--groups"):
        await reviews.start(unique("bad"), groups="displayName eq", actor="tests")
    assert [c.name for c in await reviews.campaigns()] == [campaign]


async def test_a_campaign_is_paged_by_number_with_its_filters_in_the_store(hub: Hub) -> None:
    """Issue 18: the console's review page reads a page of items past a number, not every item; walked to
    its end, the pages hold what the whole list filtered holds (a reviewer's own in any case, undecided)."""
    owners = [unique(n) + "@example.com" for n in ("olga", "omar")]
    for owner in owners:
        await hub.user(owner)
    names = [(await privileged_group(hub, 3 + 2 * n, owner))[0] for n, owner in enumerate(owners)]  # 3 and 5
    reviews = Reviews(hub.db, hub.store)
    campaign = unique("q1")
    scope = " or ".join(f'displayName eq "{name}"' for name in names)
    started = await reviews.start(campaign, groups=scope, reviewer="owner", actor="tests")
    assert started.items == 8
    await reviews.decide(campaign, [1, 4, 8], "keep", "tests-reviewer")

    async def walk(**given: object) -> list[int]:
        numbers: list[int] = []
        after, more = 0, True
        while more:
            _, items, more = await reviews.page(campaign, after=after, limit=2, **given)  # type: ignore[arg-type]
            assert len(items) <= 2 and (items or not more)
            numbers += [i.number for i in items]
            after = items[-1].number if items else after
        return numbers

    _, everything = await reviews.show(campaign)
    for reviewer in (None, owners[0].upper(), owners[1]):
        for undecided in (False, True):
            expected = [
                i.number
                for i in everything
                if (reviewer is None or reviewer.lower() in [r.lower() for r in i.reviewers])
                and (not undecided or i.decision is None)
            ]
            assert await walk(reviewer=reviewer, undecided=undecided) == expected, (reviewer, undecided)
    assert len(await walk()) == 8
