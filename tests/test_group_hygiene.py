"""Group hygiene findings, time-bound memberships, target campaigns and the recommendation (issue 15)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from scimward.governance import catalogue
from scimward.governance.expiry import expire_memberships
from scimward.governance.groups import GovernanceUpdate, set_governance
from scimward.governance.hygiene import KINDS, observe_groups
from scimward.governance.reviews import Reviews
from scimward.governance.reviews.context import Peers, recommend
from scimward.governance.schedule import governance_round
from scimward.scim.resource_types import GROUP_TYPE
from scimward.store.database import Database
from scimward.store.governance.reviews import Account, IdentityRow
from scimward.store.tables import findings, review_reminders
from scimward.store.timeutil import utcnow
from tests.conftest import Peer
from tests.hub import ENTERPRISE, Hub, open_hub
from tests.test_propagate import remote_group_members, remote_user

pytestmark = pytest.mark.anyio


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    async with open_hub(hub_url, fresh_policy=True) as opened:
        yield opened


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _open(db: Database) -> set[tuple[str, str, str]]:
    f = findings.c
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(f.kind, f.subject, f.attribute).where(f.kind.in_(KINDS), f.status == "open")
        )
        return {(r.kind, r.subject, r.attribute) for r in rows}


def test_the_hygiene_kinds_are_catalogued_for_pr_aa_05_and_nhi5() -> None:
    assert set(KINDS) <= set(catalogue.kinds_for("csf:PR.AA-05"))
    assert set(catalogue.kinds_for("owasp-nhi:NHI5")) >= {"privileged_nhi_inactive", "nhi_membership_expired"}
    assert "privileged_member_inactive" not in catalogue.kinds_for("owasp-nhi:NHI5")


async def test_hygiene_findings_open_and_resolve_as_the_state_changes(hub: Hub) -> None:
    owner = unique("olga")
    await hub.user(owner)
    bot = unique("bot")
    bot_id = await hub.user(bot, userType="service", active=False)
    group_name = unique("root")
    await hub.group(group_name, [bot_id])
    await set_governance(hub.db, group_name, GovernanceUpdate(privileged=True), "tests", store=hub.store)
    await observe_groups(hub.db)
    found = await _open(hub.db)
    assert {
        ("group_without_owner", group_name, ""),
        ("privileged_group_without_cadence", group_name, ""),
        ("privileged_nhi_inactive", group_name, bot),
    } <= found

    await set_governance(
        hub.db, group_name, GovernanceUpdate(owners=[owner], review_cadence=30), "tests", store=hub.store
    )
    await observe_groups(hub.db)
    found = await _open(hub.db)
    assert ("group_without_owner", group_name, "") not in found
    assert ("privileged_group_without_cadence", group_name, "") not in found
    assert ("review_overdue", group_name, "") not in found  # made today, cadence 30 days
    await observe_groups(hub.db, now=utcnow() + timedelta(days=31))
    assert ("review_overdue", group_name, "") in await _open(hub.db)
    await Reviews(hub.db, hub.store).start(unique("q"), groups=f'displayName eq "{group_name}"', actor="tests")
    await observe_groups(hub.db)
    assert ("review_overdue", group_name, "") not in await _open(hub.db)  # the campaign is the review


async def test_a_catch_all_group_is_found(hub: Hub) -> None:
    users = [await hub.user(unique("u")) for _ in range(10)]
    everyone = unique("everyone")
    await hub.group(everyone, users[:9])
    few = unique("few")
    await hub.group(few, users[:2])
    await observe_groups(hub.db)
    found = {s for k, s, _ in await _open(hub.db) if k == "catch_all_group"}
    assert everyone in found and few not in found


async def test_a_time_bound_membership_expires_through_the_gate(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    temp = unique("tess")
    member = await hub.user(temp)
    stays = await hub.user(unique("sam"))
    group_name = unique("oncall")
    group = await hub.group(group_name, [member, stays])
    await set_governance(hub.db, group_name, GovernanceUpdate(membership_expires=30), "tests", store=hub.store)
    await hub.push()
    assert len(await remote_group_members(downstream, group_name)) == 2
    assert await expire_memberships(hub.db, hub.store) == {}  # not yet
    # Sam leaves the normal way (the IdP); Tess's membership expires by itself.
    await hub.patch("Group", group, {"op": "remove", "path": f'members[value eq "{stays}"]'})
    removed = await expire_memberships(hub.db, hub.store, utcnow() + timedelta(days=31))
    assert {(g, m): r.outcome for (g, m), r in removed.items()} == {(group, member): "applied"}
    await hub.push()
    assert await remote_group_members(downstream, group_name) == set()
    assert (await hub.store.get(GROUP_TYPE, group)).members == []


async def test_a_target_campaign_revokes_the_groups_that_put_the_account_there(hub: Hub, downstream: Peer) -> None:
    await hub.add_target("app", downstream)
    names = [unique("acc") for _ in range(2)]
    users = [await hub.user(n) for n in names]
    group_name = unique("app-users")
    await hub.group(group_name, users)
    await hub.push()
    reviews = Reviews(hub.db, hub.store)
    campaign = unique("app-q")
    started = await reviews.start(campaign, target="app", reviewer=names[1], actor="tests")
    assert started.items >= 2
    _, items = await reviews.show(campaign)
    first = next(i for i in items if i.member_name == names[0])
    assert first.kind == "account" and first.target_name == "app" and first.reviewers == [names[1]]
    decided = await reviews.decide(campaign, [first.number], "revoke", names[1])
    assert decided[0].outcome == "applied"
    await hub.push()
    assert len(await remote_group_members(downstream, group_name)) == 1
    assert await remote_user(downstream, names[0]) is not None  # the scope takes everyone: the account stays


async def test_reminders_are_recorded_once_a_day(hub: Hub) -> None:
    owner = unique("olga")
    await hub.user(owner)
    member = await hub.user(unique("m"))
    group_name = unique("g")
    await hub.group(group_name, [member])
    await set_governance(hub.db, group_name, GovernanceUpdate(owners=[owner]), "tests", store=hub.store)
    reviews = Reviews(hub.db, hub.store)
    await reviews.start(unique("r"), groups=f'displayName eq "{group_name}"', actor="tests")
    assert await reviews.remind() == {}
    later = utcnow() + timedelta(days=1, minutes=1)
    assert await reviews.remind(later) == {owner: 1}
    assert await reviews.remind(later) == {}
    round_ = await governance_round(hub.db, hub.store, utcnow() + timedelta(days=15))
    assert round_.closed  # past due: the default applied
    async with hub.db.read() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(review_reminders))).scalar_one() == 1


def _person(department: str | None = None, /, **doc: object) -> IdentityRow:
    extension = {ENTERPRISE: {"department": department}} if department else {}
    return IdentityRow(uuid.uuid4().hex, "User", "p", {**extension, **doc})


def test_the_recommendation_says_why() -> None:
    when = datetime.now(UTC).replace(tzinfo=None)
    assert recommend(_person("Eng"), [], Peers.of(Counter({"Eng": 4})), None).decision == "keep"
    none = Peers.of(Counter())
    assert recommend(_person(active=False), [], none, None).reasons == ["inactive in the hub (active is false)"]
    off = recommend(_person(), [Account(1, "crm", "active", False, when)], Peers.of(Counter()), None)
    assert off.decision == "revoke" and "inactive on crm" in off.reasons[0]
    outlier = recommend(_person("Sales"), [], Peers.of(Counter({"Eng": 5})), None)
    assert outlier.decision == "revoke" and outlier.reasons[0].startswith("outlier")
    assert recommend(_person("Sales"), [], Peers.of(Counter({"Eng": 3})), None).decision == "keep"  # too few peers
    assert recommend(_person(userType="service"), [], Peers.of(Counter()), None).reasons == [
        "non-human identity without an owner"
    ]
    orphan = recommend(_person(**{ENTERPRISE: {"manager": {"value": "gone"}}}), [], Peers.of(Counter()), None)
    assert orphan.reasons == ["orphaned: its manager no longer exists"]


async def test_the_next_campaign_is_scheduled_from_the_cadence(hub: Hub) -> None:
    owner = unique("olga")
    await hub.user(owner)
    member = await hub.user(unique("m"))
    group_name = unique("cadenced")
    await hub.group(group_name, [member])
    await hub.group(unique("empty"), [])
    await set_governance(
        hub.db, group_name, GovernanceUpdate(owners=[owner], review_cadence=30), "tests", store=hub.store
    )
    assert (await governance_round(hub.db, hub.store)).started == []
    later = utcnow() + timedelta(days=31)
    first = await governance_round(hub.db, hub.store, later)
    assert first.started == [f"{group_name} review {later:%Y-%m-%d}"]
    shown, items = await Reviews(hub.db, hub.store).show(first.started[0])
    assert shown.created_by == "scimward (review cadence)" and shown.default_decision == "keep"
    assert [(i.member_id, i.reviewers) for i in items] == [(member, [owner])]
    assert (await governance_round(hub.db, hub.store, later)).started == []  # one is open
