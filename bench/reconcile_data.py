"""The data side of ``bench/reconcile.py``: seed the hub and the target, tamper, check the findings.

Run by ``bench/reconcile.py`` as a child process, so that the process that starts the measured
reconcile stays small: Linux counts a child's ``ru_maxrss`` from the RSS its parent had when the
child was forked, and seeding 100,000 users takes a few hundred megabytes.

    python bench/reconcile_data.py seed   --users N --groups G --leavers L --seed S --hub-url U --target-url U \
                                          --base-url URL --key KEY          # prints the target token
    python bench/reconcile_data.py tamper --users N ... --token T --count C  # prints expected findings (JSON)
    python bench/reconcile_data.py check  --hub-url U --expected FILE        # prints the comparison (JSON)

Seeding goes through the store's own insert statements (``store.identity.writes.INSERT_IDENTITY`` with the
columns ``IdentityStore.create`` derives), 2,000 rows per transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from scimward.scim.resource import normalize
from scimward.scim.resource_types import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.auth.tokens import TokenStore
from scimward.store.database import Database
from scimward.store.governance.findings import FindingStore
from scimward.store.identity import counts, writes
from scimward.store.identity.identities import IdentityStore
from scimward.store.identity.identity_rows import columns as _columns
from scimward.store.identity.identity_rows import email_rows as _email_rows  # the columns create derives
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import link_members, links, memberships
from scimward.store.timeutil import utcnow
from scimward.sync.client import TargetClient
from scimward.sync.drift import member_path
from scimward.sync.mapping import desired_group, desired_user
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import TargetConfig

BATCH = 2000
KINDS = ("title", "deactivated", "deleted", "left_group", "joined_group", "orphan", "reactivated", "department")


# -- seeding ----------------------------------------------------------------------------------------


class Seed:
    """Who is who: hub ids and remote ids of users, groups and leavers."""

    def __init__(self, users: int, groups: int, leavers: int, seed: int) -> None:
        self.users, self.groups, self.leavers = users, groups, leavers
        rng = random.Random(seed)  # the same ids in every phase

        def ids(n: int) -> list[str]:
            return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]

        self.hub_user, self.remote_user = ids(users), ids(users)
        self.hub_group, self.remote_group = ids(groups), ids(groups)
        self.hub_leaver, self.remote_leaver = ids(leavers), ids(leavers)

    def user_doc(self, i: int) -> dict[str, Any]:
        email = f"user{i:06d}@bench.example"
        enterprise: dict[str, Any] = {"department": f"dept-{i % 50}", "employeeNumber": str(100000 + i)}
        if i % 100 and i < self.users:
            enterprise["manager"] = {"value": self.hub_user[i - i % 100]}
        return normalize({"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": email,
                          "displayName": f"Bench User {i}", "name": {"givenName": f"Given{i}", "familyName": "Bench"},
                          "title": "Engineer", "active": True,
                          "emails": [{"value": email, "type": "work", "primary": True}],
                          ENTERPRISE_USER_SCHEMA: enterprise}, USER_TYPE)

    def manager_remote(self, i: int) -> str | None:
        return self.remote_user[i - i % 100] if i % 100 else None

    def group_of(self, i: int) -> int:
        return i % self.groups


async def insert_identities(db: Database, rt: Any, rows: Sequence[tuple[str, dict[str, Any]]],
                            members: Sequence[dict[str, str]] = ()) -> None:
    """What ``IdentityStore.create`` writes, for many identities per transaction."""
    store = IdentityStore(db)  # its driver transactions only: these rows bypass the gate, as a restore would
    now = utcnow()
    for start in range(0, len(rows), BATCH):
        chunk = rows[start:start + BATCH]
        async with store.direct.transaction() as tx:
            await tx.run(writes.INSERT_IDENTITY, [
                {"id": identity_id, "created": tx.time(now), "last_modified": tx.time(now), "version": 1,
                 "source": "bench", "password_hash": None, **_columns(tx, rt, doc)} for identity_id, doc in chunk])
            await tx.run(writes.INSERT_EMAIL, [row for identity_id, doc in chunk
                                               for row in _email_rows(identity_id, doc)])
            await counts.adjust(tx, db.dialect, rt.name, len(chunk))
    for start in range(0, len(members), BATCH * 5):
        async with store.direct.transaction() as tx:
            await tx.run(memberships.insert(), list(members[start:start + BATCH * 5]))


async def insert_rows(db: Database, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        async with db.write() as conn:
            await conn.execute(table.insert(), rows[start:start + BATCH])


async def seed(seed_: Seed, hub_url: str, target_url: str, base_url: str, key: str) -> str:
    """Both databases; the token the hub uses on the target (which tampering uses too)."""
    hub, down = Database(hub_url), Database(target_url)
    try:
        token = await TokenStore(down).create("hub", created_by="bench/reconcile.py")
        target = await TargetRepository(hub).add("app", base_url, SecretBox(key=key).encrypt(token),
                                                 TargetConfig(extra={"reconcile_every": "0"}).to_json())
        now = utcnow()
        hub_users, down_users, user_links = [], [], []
        for i in range(seed_.users):
            doc = seed_.user_doc(i)
            desired = desired_user(seed_.hub_user[i], doc, None, seed_.manager_remote(i))
            hub_users.append((seed_.hub_user[i], doc))
            down_users.append((seed_.remote_user[i], desired))
            user_links.append({"target_id": target.id, "identity_id": seed_.hub_user[i], "resource_type": "User",
                               "remote_id": seed_.remote_user[i], "state": desired, "status": "active",
                               "acknowledged": now})
        for n in range(seed_.leavers):  # deleted in the hub; deactivated on the target
            doc = seed_.user_doc(seed_.users + n)
            gone = {**desired_user(seed_.hub_leaver[n], doc, None), "active": False}
            down_users.append((seed_.remote_leaver[n], gone))
            user_links.append({"target_id": target.id, "identity_id": seed_.hub_leaver[n], "resource_type": "User",
                               "remote_id": seed_.remote_leaver[n], "state": gone, "status": "deactivated",
                               "acknowledged": now})
        hub_groups, down_groups, group_links, hub_members, down_members, acked = [], [], [], [], [], []
        for j in range(seed_.groups):
            doc = normalize({"schemas": [GROUP_SCHEMA], "displayName": f"bench-group-{j:04d}"}, GROUP_TYPE)
            desired = desired_group(seed_.hub_group[j], doc)
            hub_groups.append((seed_.hub_group[j], doc))
            down_groups.append((seed_.remote_group[j], desired))
            group_links.append({"target_id": target.id, "identity_id": seed_.hub_group[j], "resource_type": "Group",
                                "remote_id": seed_.remote_group[j], "state": desired, "status": "active",
                                "acknowledged": now})
        for i in range(seed_.users):
            j = seed_.group_of(i)
            hub_members.append({"group_id": seed_.hub_group[j], "member_id": seed_.hub_user[i], "member_type": "User"})
            down_members.append({"group_id": seed_.remote_group[j], "member_id": seed_.remote_user[i],
                                 "member_type": "User"})
            acked.append({"target_id": target.id, "group_id": seed_.hub_group[j], "member_id": seed_.hub_user[i]})
        await insert_identities(hub, USER_TYPE, hub_users)
        await insert_identities(hub, GROUP_TYPE, hub_groups, hub_members)
        await insert_identities(down, USER_TYPE, down_users)
        await insert_identities(down, GROUP_TYPE, down_groups, down_members)
        await insert_rows(hub, links, user_links + group_links)
        await insert_rows(hub, link_members, acked)
        for db in (hub, down):  # the statistics autovacuum would have gathered after such a load
            async with db.write() as conn:
                await conn.execute(sa.text("ANALYZE"))
        return token
    finally:
        await hub.dispose()
        await down.dispose()


# -- tampering ---------------------------------------------------------------------------------------


async def tamper(seed_: Seed, base_url: str, token: str, count: int, rng: random.Random
                 ) -> tuple[set[tuple[str, str, str]], set[tuple[str, str, str]], dict[str, int]]:
    """Change ``count`` accounts on the target; the findings expected, those a deletion drags along,
    and how many of each kind."""
    chosen = rng.sample(range(seed_.users), count)
    leavers = iter(rng.sample(range(seed_.leavers), seed_.leavers))
    expected: set[tuple[str, str, str]] = set()
    derived: set[tuple[str, str, str]] = set()
    made: dict[str, int] = dict.fromkeys(KINDS, 0)
    gate = asyncio.Semaphore(8)
    async with TargetClient(base_url, token) as client:

        async def one(n: int, i: int) -> None:
            kind = KINDS[n % len(KINDS)]
            hub_id, remote = seed_.hub_user[i], seed_.remote_user[i]
            group = seed_.group_of(i)
            async with gate:
                if kind == "title":
                    await client.patch("Users", remote, [{"op": "replace", "path": "title", "value": "Owner"}])
                    expected.add(("changed_in_app", hub_id, "title"))
                elif kind == "deactivated":
                    await client.patch("Users", remote, [{"op": "replace", "path": "active", "value": False}])
                    expected.add(("changed_in_app", hub_id, "active"))
                elif kind == "deleted":
                    await client.delete("Users", remote)
                    expected.add(("missing_account", hub_id, ""))
                    derived.add(("missing_membership", seed_.hub_group[group], member_path(remote)))
                elif kind == "left_group":
                    await client.patch("Groups", seed_.remote_group[group],
                                       [{"op": "remove", "path": f'members[value eq "{remote}"]'}])
                    expected.add(("missing_membership", seed_.hub_group[group], member_path(remote)))
                elif kind == "joined_group":
                    other = (group + 1) % seed_.groups
                    await client.patch("Groups", seed_.remote_group[other],
                                       [{"op": "add", "path": "members", "value": [{"value": remote}]}])
                    expected.add(("extra_membership", seed_.hub_group[other], member_path(remote)))
                elif kind == "orphan":
                    made_account = await client.create("Users", {"schemas": [USER_SCHEMA],
                                                                 "userName": f"stranger{n}@bench.example"})
                    expected.add(("orphaned_account", made_account["id"], ""))
                elif kind == "reactivated":
                    leaver = next(leavers)
                    await client.patch("Users", seed_.remote_leaver[leaver],
                                       [{"op": "replace", "path": "active", "value": True}])
                    expected.add(("active_should_be_inactive", seed_.hub_leaver[leaver], "active"))
                else:
                    await client.patch("Users", remote, [{"op": "replace",
                                                          "path": f"{ENTERPRISE_USER_SCHEMA}:department",
                                                          "value": "Shadow IT"}])
                    expected.add(("changed_in_app", hub_id, f"{ENTERPRISE_USER_SCHEMA}:department"))
            made[kind] += 1

        await asyncio.gather(*(one(n, i) for n, i in enumerate(chosen)))
    return expected, derived, made


async def findings_in(hub_url: str) -> set[tuple[str, str, str]]:
    """The open findings in the hub, as (kind, subject, attribute)."""
    db = Database(hub_url)
    try:
        return {(f.kind, f.subject, f.attribute) for f in await FindingStore(db).list()}
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("phase", choices=["seed", "tamper", "check"])
    for name in ("--users", "--groups", "--leavers", "--seed", "--count"):
        parser.add_argument(name, type=int, default=0)
    for name in ("--hub-url", "--target-url", "--base-url", "--key", "--token"):
        parser.add_argument(name)
    parser.add_argument("--expected", type=Path)
    a = parser.parse_args()
    if a.phase == "seed":
        print(asyncio.run(seed(Seed(a.users, a.groups, a.leavers, a.seed), a.hub_url, a.target_url, a.base_url,
                               a.key)))
    elif a.phase == "tamper":
        seeded = Seed(a.users, a.groups, a.leavers, a.seed)
        expected, derived, made = asyncio.run(tamper(seeded, a.base_url, a.token, a.count, random.Random(a.seed)))
        print(json.dumps({"expected": sorted(expected), "derived": sorted(derived), "made": made}))
    else:
        wanted = json.loads(a.expected.read_text())
        expected = {tuple(item) for item in wanted["expected"]}
        derived = {tuple(item) for item in wanted["derived"]}
        found = asyncio.run(findings_in(a.hub_url))
        unexpected = found - expected - derived
        print(json.dumps({"expected": len(expected), "found": len(expected & found),
                          "missed": sorted(expected - found)[:20], "derived_found": len(derived & found),
                          "unexpected_count": len(unexpected), "unexpected": sorted(unexpected)[:20]}))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
