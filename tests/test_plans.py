"""A configuration change's plan (``policy.plans``: ``target set --dry-run`` and the console's preview)
counts what a pass over every identity and its link would count, from counts of the links, of the
scope and of their overlap (issue 18: the preview on 100,000 identities), on both dialects."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from scimward.policy import PolicyGate, identity_store
from scimward.policy.plans import plan_config
from scimward.scim.filter import parse_filter
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.identity import SearchQuery
from scimward.store.provisioning import TargetRepository
from scimward.store.tables import links
from scimward.store.timeutil import utcnow
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import TargetConfig

#: (userName, userType, the link's status on the target: None when it has no account there)
USERS: list[tuple[str, str | None, str | None]] = [
    ("ann@example.com", "Employee", "active"),
    ("anna@example.com", "Contractor", "active"),
    ("annie_b@example.com", "Employee", None),
    ("bob@example.com", "Employee", "active"),
    ("bobby@example.com", None, "deactivated"),
    ("Carl@Example.com", "Contractor", None),
    ("carla@example.com", "Employee", "active"),
    ("dora@example.com", None, None),
]
GROUPS: list[tuple[str, str | None]] = [("admins", "active"), ("admins-eu", None), ("staff", "active")]

#: A scope and which users it takes, as a person reads it.
SCOPES: list[tuple[str | None, Callable[[str, str | None], bool]]] = [
    (None, lambda name, kind: True),
    ('userName sw "ann"', lambda name, kind: name.startswith("ann")),
    ('userName sw "CARL"', lambda name, kind: name.lower().startswith("carl")),
    ('userName co "_b"', lambda name, kind: "_b" in name),
    ('userName ew "a@example.com"', lambda name, kind: name.endswith("a@example.com")),
    ('userType eq "Employee"', lambda name, kind: kind == "Employee"),
    ('not (userName sw "b")', lambda name, kind: not name.startswith("b")),
    ('userName eq "nobody@example.com"', lambda name, kind: False),
]


async def _world(url: str) -> int:
    db = Database(url)
    try:
        store = identity_store(db, PolicyGate(db, refresh_seconds=0))
        target = await TargetRepository(db).add(
            "app", "http://127.0.0.1:9/scim/v2", SecretBox().encrypt("t"), TargetConfig().to_json()
        )
        held: list[tuple[str, str, str]] = []
        for name, kind, status in USERS:
            body: dict[str, Any] = {"schemas": [USER_SCHEMA], "userName": name}
            if kind:
                body["userType"] = kind
            user = await store.create(USER_TYPE, normalize(body, USER_TYPE), "scim:okta", "okta")
            if status:
                held.append((user.id, "User", status))
        for name, status in GROUPS:
            body = {"schemas": [GROUP_SCHEMA], "displayName": name}
            group = await store.create(GROUP_TYPE, normalize(body, GROUP_TYPE), "scim:okta", "okta")
            if status:
                held.append((group.id, "Group", status))
        async with db.write() as conn:
            await conn.execute(
                links.insert(),
                [
                    {
                        "target_id": target.id,
                        "identity_id": identity_id,
                        "resource_type": rt,
                        "remote_id": f"r{n}",
                        "status": status,
                        "acknowledged": utcnow(),
                    }
                    for n, (identity_id, rt, status) in enumerate(held)
                ],
            )
        return target.id
    finally:
        await db.dispose()


async def _plans(url: str, target_id: int, configs: list[dict[str, Any] | None]) -> list[Any]:
    db = Database(url)
    try:
        return [await plan_config(db, target_id, "app", {}, config) for config in configs]
    finally:
        await db.dispose()


def test_a_plan_counts_what_every_identity_and_its_link_would(hub_url: str) -> None:
    target_id = asyncio.run(_world(hub_url))
    configs: list[dict[str, Any] | None] = [{"scope": scope, "push_groups": True} for scope, _ in SCOPES]
    plans = asyncio.run(_plans(hub_url, target_id, configs))
    linked = [(name, kind) for name, kind, status in USERS if status == "active"]
    unlinked = [(name, kind) for name, kind, status in USERS if status != "active"]
    for (scope, takes), plan in zip(SCOPES, plans, strict=True):
        leaving = sorted(name for name, kind in linked if not takes(name, kind))
        entering = sorted(name for name, kind in unlinked if takes(name, kind))
        assert (plan.accounts, plan.deprovision, plan.create) == (len(linked), len(leaving), len(entering)), scope
        assert (plan.groups_remove, plan.groups_create) == (0, 1), scope  # admins-eu has no account yet
        # The samples are names from those counted (every one here: fewer than the sample's five).
        assert sorted(plan.samples["deprovision"]) == leaving[:5], scope
        assert sorted(n.lower() for n in plan.samples["create"]) == sorted(n.lower() for n in entering), scope


def test_a_plan_without_groups_removes_every_group_account_and_removing_the_target_every_user_account(
    hub_url: str,
) -> None:
    target_id = asyncio.run(_world(hub_url))
    without_groups, removed = asyncio.run(_plans(hub_url, target_id, [{"scope": None, "push_groups": False}, None]))
    active_groups = sum(1 for _, status in GROUPS if status == "active")
    active_users = sum(1 for _, _, status in USERS if status == "active")
    assert (without_groups.groups_remove, without_groups.groups_create) == (active_groups, 0)
    assert (removed.accounts, removed.deprovision) == (active_users, active_users)
    assert len(removed.samples["deprovision"]) == active_users


@pytest.mark.parametrize("prefix", ["ann", "annie_", "carl@"])
def test_an_sw_scope_counts_alike_with_and_without_its_index_range(hub_url: str, prefix: str) -> None:
    """On SQLite ``sw`` on a lower-cased column is bounded to an index range (``filter_sql._prefix_range``):
    the same users as a plain prefix test."""
    target_id = asyncio.run(_world(hub_url))
    (plan,) = asyncio.run(_plans(hub_url, target_id, [{"scope": f'userName sw "{prefix.upper()}"'}]))
    names = [name.lower() for name, _, _ in USERS]
    in_scope = sum(1 for name in names if name.startswith(prefix))
    staying = sum(1 for name, _, status in USERS if status == "active" and name.lower().startswith(prefix))
    assert plan.create == in_scope - staying
    assert plan.deprovision == sum(1 for _, _, status in USERS if status == "active") - staying


async def _delete(url: str, user_name: str) -> None:
    db = Database(url)
    try:
        store = identity_store(db, PolicyGate(db, refresh_seconds=0))
        found = await store.search(USER_TYPE, SearchQuery(filter=parse_filter(f'userName eq "{user_name}"')))
        await store.delete(USER_TYPE, found.items[0].id, source="scim:okta", actor="okta")
    finally:
        await db.dispose()


def test_an_account_whose_identity_is_gone_is_counted_as_leaving(hub_url: str) -> None:
    """The plan counts what the target holds: an account whose identity was deleted (its deprovisioning
    not pushed yet) is one of the target's accounts, and one the change leaves to deprovision."""
    target_id = asyncio.run(_world(hub_url))
    asyncio.run(_delete(hub_url, "bob@example.com"))
    (plan,) = asyncio.run(_plans(hub_url, target_id, [{"scope": None}]))
    linked = sum(1 for _, _, status in USERS if status == "active")
    assert (plan.accounts, plan.deprovision, plan.update) == (linked, 1, 0)
    assert plan.samples["deprovision"] == []  # no name to show: the identity is gone
