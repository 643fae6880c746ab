"""Propagation by claimed batch: what a batch reads is fetched once, what it did is written once.

The hub runs on SQLite and on PostgreSQL; the target is a second scimward on loopback. These tests
pin down what batching must not change: a change arriving during a push is pushed next, a worker
dying before the batch's commit loses nothing and duplicates nothing, a failing row does not cost
the others their work, and a user whose manager got its account in the same batch gets the manager.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from scimward.policy import identity_store
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.identity.identities import IdentityStore
from scimward.store.provisioning import batch_reads
from scimward.store.provisioning.batch_reads import BatchReads
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import links
from scimward.sync import propagate
from scimward.sync.propagate import Outcome, Propagator
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.targets import Target, TargetConfig
from tests.conftest import Peer

pytestmark = pytest.mark.anyio
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass
class Hub:
    db: Database
    store: IdentityStore
    secrets: SecretBox

    def propagator(self, **options: Any) -> Propagator:
        return Propagator(self.db, secrets=self.secrets, **options)

    async def add_target(self, name: str, peer: Peer) -> Target:
        row = await TargetRepository(self.db).add(
            name, peer.base_url, self.secrets.encrypt(peer.token), TargetConfig().to_json()
        )
        return Target.from_row(row)

    async def user(self, user_name: str, **attributes: Any) -> str:
        body = {"schemas": [USER_SCHEMA, ENTERPRISE], "userName": f"{user_name}@example.com", **attributes}
        return (await self.store.create(USER_TYPE, normalize(body, USER_TYPE))).id

    async def retitle(self, identity_id: str, title: str) -> None:
        await self.store.patch(
            USER_TYPE,
            identity_id,
            {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": title}]},
        )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(sa.text(sql), params)).scalar_one()


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    db = Database(hub_url)
    yield Hub(db, identity_store(db), SecretBox(key=generate_key()))
    await db.dispose()


async def accounts(peer: Peer) -> dict[str, dict[str, Any]]:
    """userName -> account, of every user on the downstream (few, one page)."""
    async with httpx.AsyncClient(base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}) as c:
        page = (await c.get("/Users", params={"count": 1000})).json()
    found = page.get("Resources", [])
    assert page["totalResults"] == len(found)
    names = [account["userName"] for account in found]
    assert len(names) == len(set(names)), f"duplicated on the target: {sorted(names)}"
    return {account["userName"]: account for account in found}


async def test_a_batch_costs_the_same_statements_whatever_its_size(hub: Hub, downstream: Peer) -> None:
    """Per batch, not per row: claiming, reading and recording 40 pushes takes as many statements as
    5, and two write transactions (the claim and the commit of the outcomes)."""
    ids = [await hub.user(f"size{i}") for i in range(40)]
    propagator = hub.propagator(batch=100)
    statements, commits = [0], [0]

    def count_statement(*_: Any) -> None:
        statements[0] += 1

    def count_commit(*_: Any) -> None:
        commits[0] += 1

    engine = hub.db.engine.sync_engine
    sa.event.listen(engine, "before_cursor_execute", count_statement)
    sa.event.listen(engine, "commit", count_commit)
    seen = []
    try:
        for size in (1, 5, 40):  # the first batch also checks, once, that PostgreSQL has statistics
            target = await hub.add_target(f"app{size}", downstream)
            await propagator.outbox.enqueue_all(target.id, "User", ids[:size])
            statements[0] = commits[0] = 0
            assert await propagator.run_once(target.id) == size
            seen.append((statements[0], commits[0]))
    finally:
        sa.event.remove(engine, "before_cursor_execute", count_statement)
        sa.event.remove(engine, "commit", count_commit)
        await propagator.close()
    assert seen[1] == seen[2], seen
    assert seen[2][1] == 2, seen
    assert await hub.scalar("select count(*) from outbox") == 0
    assert await hub.scalar("select count(*) from push_log where outcome = 'ok'") == 46


async def test_a_change_made_during_the_push_is_pushed_next(
    hub: Hub, downstream: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch's commit removes a row only if no change bumped it meanwhile: newest wins."""
    await hub.add_target("app", downstream)
    user = await hub.user("changing", title="before")
    propagator = hub.propagator()
    push_user = propagator.push_user

    async def push_then_change(*args: Any) -> Outcome:
        action = await push_user(*args)
        await hub.retitle(user, "during")  # lands while the batch is still uncommitted
        return action

    monkeypatch.setattr(propagator, "push_user", push_then_change)
    try:
        assert await propagator.run_once() == 1
        assert await hub.scalar("select count(*) from outbox where claimed_until is null") == 1, "kept, released"
        monkeypatch.undo()
        assert await propagator.drain() == 1
    finally:
        await propagator.close()
    assert (await accounts(downstream))["changing@example.com"]["title"] == "during"
    assert await hub.scalar("select count(*) from outbox") == 0


async def test_a_change_committed_during_an_empty_round_is_pushed_without_waiting_for_the_poll(
    hub: Hub, downstream: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wake is cleared before a round claims, not after: a change that commits while a round finds
    nothing starts the next round at once (it used to wait for the poll)."""
    await hub.add_target("app", downstream)
    propagator = hub.propagator(poll_seconds=60)
    hub.store.on_change = propagator.wake
    run_once = propagator.run_once
    rounds: list[int] = []

    async def round_then_change(target_id: int | None = None) -> int:
        done = await run_once(target_id)
        rounds.append(done)
        if len(rounds) == 1:
            await hub.user("late")  # commits after this round's claim found nothing
        return done

    monkeypatch.setattr(propagator, "run_once", round_then_change)
    stop = asyncio.Event()
    worker = asyncio.create_task(propagator.run(stop))
    try:
        for _ in range(200):
            if "late@example.com" in await accounts(downstream):
                break
            await asyncio.sleep(0.05)
        assert "late@example.com" in await accounts(downstream), f"not pushed within 10 s; rounds {rounds}"
        assert rounds[0] == 0
    finally:
        stop.set()
        await worker
        await propagator.close()


async def test_a_worker_dying_before_its_commit_loses_and_duplicates_nothing(
    hub: Hub, downstream: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The accounts were made but nothing was recorded: the rows stay in the outbox, are taken again
    when the lease runs out, and the accounts are adopted, not made twice."""
    target = await hub.add_target("app", downstream)
    ids = [await hub.user(f"crash{i}", title="t") for i in range(6)]

    async def die(*_: Any) -> None:
        raise RuntimeError("the worker died before its commit")

    monkeypatch.setattr(propagate, "commit", die)
    first = hub.propagator(lease=timedelta(seconds=0))
    with pytest.raises(RuntimeError, match="before its commit"):
        await first.run_once()
    await first.close()
    monkeypatch.undo()
    assert len(await accounts(downstream)) == 6, "made on the target"
    assert await hub.scalar("select count(*) from links") == 0, "unknown to the hub"
    assert await hub.scalar("select count(*) from outbox") == 6, "still to do"

    await asyncio.sleep(0.01)  # the dead worker's lease runs out
    second = hub.propagator()
    try:
        assert await second.drain() == 6
    finally:
        await second.close()
    found = await accounts(downstream)
    assert len(found) == 6
    async with hub.db.read() as conn:
        links: dict[str, str] = dict(
            (
                await conn.execute(
                    sa.text("select identity_id, remote_id from links where target_id = :t"), {"t": target.id}
                )
            ).all()
        )
        actions = [row[0] for row in await conn.execute(sa.text("select action from push_log"))]
    assert sorted(links) == sorted(ids)
    assert sorted(links.values()) == sorted(account["id"] for account in found.values())
    assert actions == ["adopt"] * 6
    assert await hub.scalar("select count(*) from outbox") == 0


async def test_an_unexpected_error_in_one_row_keeps_the_others_work(
    hub: Hub, downstream: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash in one row's push (a bug in its mapping, bad data) is that row's failure alone (issue 11
    item 4): the round goes on, the others are recorded, and the row waits out a backoff with the
    error on it instead of holding its claim."""
    await hub.add_target("app", downstream)
    ids = [await hub.user(f"mixed{i}") for i in range(5)]
    propagator = hub.propagator()
    push_user = propagator.push_user

    async def fail_one(lane: Any, identity_id: str, *rest: Any) -> Outcome:
        if identity_id == ids[2]:
            raise RuntimeError("a bug")
        return await push_user(lane, identity_id, *rest)

    monkeypatch.setattr(propagator, "push_user", fail_one)
    try:
        assert await propagator.run_once() == 5
    finally:
        await propagator.close()
    assert await hub.scalar("select count(*) from links") == 4
    async with hub.db.read() as conn:
        left = (
            await conn.execute(sa.text("select identity_id, claimed_until, attempts, last_error from outbox"))
        ).all()
    assert [row[0] for row in left] == [ids[2]]
    assert left[0][1] is None and left[0][2] == 1 and "RuntimeError: a bug" in left[0][3]


async def test_a_manager_linked_in_the_same_batch_reaches_the_report(hub: Hub, downstream: Peer) -> None:
    """Pushed side by side, the report goes before its manager has an account on the target; the
    report is pushed once more after the batch, with the manager's account id."""
    await hub.add_target("app", downstream)
    boss = await hub.user("boss")
    await hub.user("report", **{ENTERPRISE: {"manager": {"value": boss}}})
    propagator = hub.propagator()
    try:
        assert await propagator.run_once() == 2
        assert await propagator.drain() == 1, "the report, again"
    finally:
        await propagator.close()
    found = await accounts(downstream)
    assert found["report@example.com"][ENTERPRISE]["manager"]["value"] == found["boss@example.com"]["id"]


@pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True)  # SQLite plans IN (...) on the primary key
async def test_batch_reads_look_each_identity_up_by_primary_key(hub: Hub, hub_url: str) -> None:
    """On a PostgreSQL table never analyzed (autovacuum off, or a hub just made), a lookup of links by
    identity was planned as a scan of every link of the target; the first batch read analyzes it, and
    each id is looked up by primary key."""
    target = (await TargetRepository(hub.db).add("app", "http://127.0.0.1:9/scim/v2", "x", {})).id
    ids = [f"id-{i:05d}" for i in range(3000)]
    async with hub.db.write() as conn:
        await conn.execute(
            sa.text(
                "insert into links (target_id, identity_id, resource_type, remote_id, status, acknowledged) "
                "select :t, i, 'User', 'r' || i, 'active', now() from unnest(cast(:ids as varchar[])) as i"
            ),
            {"t": target, "ids": ids},
        )
    assert await hub.scalar("select reltuples from pg_class where relname = 'links'") < 0, "never analyzed"
    assert len(await BatchReads(hub.db).links(target, [*ids[:200], "absent"])) == 200
    assert await hub.scalar("select reltuples from pg_class where relname = 'links'") == 3000
    lookup = sa.select(links.c.identity_id).where(links.c.target_id == target)
    query = batch_reads._in(ids[:200], lookup, links.c.identity_id, "postgresql")
    async with hub.db.read() as conn:
        plan = "\n".join(
            row[0]
            for row in await conn.execute(
                sa.text(
                    "explain "
                    + str(
                        query.compile(
                            dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
                            compile_kwargs={"literal_binds": True},
                        )
                    )
                )
            )
        )
    assert "pk_links" in plan and "ix_links_remote_id" not in plan, plan
