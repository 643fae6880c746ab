"""Propagation through a misbehaving network: a fault-injecting proxy in front of a real downstream scimward.

The hub runs on SQLite and on PostgreSQL, a fresh database per test. Its target points at
``tests/peers/faulty_proxy.py``, which forwards to a second scimward unless told to answer 503 or
429 with Retry-After, to hold answers past the client's timeout, to refuse connections, or to
answer 401. Whatever the fault, once it clears every identity is on the downstream exactly once
with the right attributes; Retry-After is honoured; a persistent failure quarantines the target,
which then receives nothing until resumed, and receives everything it missed when it is.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.cli.provisioning import target_status
from scimward.policy import identity_store
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.identity.identities import IdentityStore
from scimward.store.provisioning.targets import TargetRepository, TargetRow
from scimward.store.tables import outbox
from scimward.store.timeutil import utcnow
from scimward.sync.propagate import Propagator
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.targets import DeprovisionMode, Target, TargetConfig
from tests.conftest import Peer
from tests.peers.faulty_proxy import FaultyProxy

pytestmark = pytest.mark.anyio

#: Slack for "after": the proxy stamps its answer a moment before the hub reads it, never after.
CLOCK_SLACK = 0.05


@pytest.fixture
def proxy(downstream: Peer) -> Iterator[FaultyProxy]:
    with FaultyProxy(downstream.base_url.removesuffix("/scim/v2")) as faulty:
        yield faulty


@dataclass
class Hub:
    db: Database
    store: IdentityStore
    secrets: SecretBox
    prefix: str = field(default_factory=lambda: f"f{uuid.uuid4().hex[:8]}-")
    propagators: list[Propagator] = field(default_factory=list)

    def propagator(self, **options: Any) -> Propagator:
        propagator = Propagator(self.db, secrets=self.secrets, poll_seconds=0.05, **options)
        self.propagators.append(propagator)
        return propagator

    async def add_target(self, name: str, base_url: str, token: str, config: TargetConfig | None = None) -> Target:
        row = await TargetRepository(self.db).add(
            name, base_url, self.secrets.encrypt(token), (config or TargetConfig()).to_json()
        )
        return Target.from_row(row)

    async def user(self, short: str, **attributes: Any) -> str:
        body = {"schemas": [USER_SCHEMA], "userName": f"{self.prefix}{short}@example.com", **attributes}
        return (await self.store.create(USER_TYPE, normalize(body, USER_TYPE))).id

    async def retitle(self, user_id: str, title: str) -> None:
        await self.store.patch(
            USER_TYPE,
            user_id,
            {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": title}]},
        )

    async def row(self, target: Target) -> TargetRow:
        return await TargetRepository(self.db).by_id(target.id)

    async def outbox_rows(self, target: Target) -> list[Any]:
        async with self.db.read() as conn:
            return list(
                await conn.execute(
                    sa.text("select identity_id, attempts, last_error from outbox where target_id = :t"),
                    {"t": target.id},
                )
            )

    async def pending(self, target: Target) -> int:
        return len(await self.outbox_rows(target))


@pytest.fixture
async def hub(hub_url: str) -> AsyncIterator[Hub]:
    db = Database(hub_url)
    hub = Hub(db, identity_store(db), SecretBox(key=generate_key()))
    yield hub
    for propagator in hub.propagators:
        await propagator.close()
    await db.dispose()


async def target_for(hub: Hub, proxy: FaultyProxy, downstream: Peer, **extra: Any) -> Target:
    return await hub.add_target("app", proxy.url("/scim/v2"), downstream.token, TargetConfig(extra=extra))


async def converge(hub: Hub, propagator: Propagator, target: Target, timeout: float = 30.0) -> float:
    """Drain until the target's outbox is empty (rows retried later need time); the seconds it took."""
    started = time.monotonic()
    while True:
        await propagator.drain()
        if await hub.pending(target) == 0:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            rows = await hub.outbox_rows(target)
            raise AssertionError(f"not converged after {timeout} s: {len(rows)} rows left, e.g. {rows[:3]}")
        await asyncio.sleep(0.05)


async def downstream_users(peer: Peer, prefix: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}) as c:
        response = await c.get("/Users", params={"filter": f'userName sw "{prefix}"', "count": 1000})
        response.raise_for_status()
        page = response.json()
    resources = list(page.get("Resources", []))
    assert page["totalResults"] == len(resources), "more than one page: make the test smaller"
    return resources


async def assert_converged(hub: Hub, peer: Peer, target: Target, expected: dict[str, dict[str, Any]]) -> None:
    """The downstream holds exactly the expected users (by short name: attributes), each once, each linked."""
    accounts = await downstream_users(peer, hub.prefix)
    names = [account["userName"] for account in accounts]
    assert len(names) == len(set(names)), f"duplicated on the target: {sorted(names)}"
    wanted = {f"{hub.prefix}{short}@example.com": attributes for short, attributes in expected.items()}
    assert set(names) == set(wanted), f"missing {set(wanted) - set(names)}, unexpected {set(names) - set(wanted)}"
    for account in accounts:
        for attribute, value in wanted[account["userName"]].items():
            assert account.get(attribute) == value, (account["userName"], attribute, account.get(attribute))
    async with hub.db.read() as conn:
        links = {
            row.identity_id: row.remote_id
            for row in await conn.execute(
                sa.text("select identity_id, remote_id from links where target_id = :t"), {"t": target.id}
            )
        }
    by_id = {account["id"]: account for account in accounts}
    assert sorted(links.values()) == sorted(by_id), "every account linked once, and every link to a real account"
    for identity_id, remote_id in links.items():
        assert by_id[remote_id]["externalId"] == identity_id


# -- Retry-After ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
async def test_retry_after_is_honoured(hub: Hub, proxy: FaultyProxy, downstream: Peer, status: int) -> None:
    """After a 503 or 429 with Retry-After: 1, the hub sends nothing to the target for a second."""
    target = await target_for(hub, proxy, downstream)
    propagator = hub.propagator(concurrency=1)
    expected = {f"u{i}": {"title": f"t{i}"} for i in range(6)}
    for short, attributes in expected.items():
        await hub.user(short, **attributes)
    proxy.fail(status, count=2, retry_after=1)

    await propagator.drain()  # meets the first fault and stops: every row is due later now
    rows = await hub.outbox_rows(target)
    assert len(rows) == 6
    failed = [row for row in rows if row.attempts > 0]
    assert failed and all(str(status) in row.last_error for row in failed), "the backoff is recorded"
    row = await hub.row(target)
    assert row.consecutive_failures == 1 and row.last_error and str(status) in row.last_error

    took = await converge(hub, propagator, target)
    faults = proxy.faulted()
    assert [hit.status for hit in faults] == [status, status]
    hits = proxy.hits
    for fault in faults:
        assert fault.answered is not None
        too_soon = [hit for hit in hits if fault.answered + CLOCK_SLACK < hit.arrived < fault.answered + 1.0]
        assert not too_soon, f"{len(too_soon)} requests within Retry-After of a {status}: {too_soon[:3]}"
    assert took >= 1.0
    await assert_converged(hub, downstream, target, expected)
    row = await hub.row(target)
    assert row.quarantined is None and row.consecutive_failures == 0


async def test_a_burst_of_concurrent_failures_counts_once(hub: Hub, proxy: FaultyProxy, downstream: Peer) -> None:
    """Eight pushes in flight when the target starts answering 503 are one failure of the target, not
    eight: a one-second blip must not quarantine a target allowed five failures in a row."""
    target = await target_for(hub, proxy, downstream, quarantine_after=5)
    propagator = hub.propagator(concurrency=8)
    expected = {f"b{i}": {"displayName": f"B {i}"} for i in range(24)}
    for short, attributes in expected.items():
        await hub.user(short, **attributes)
    proxy.fail(503, count=8, retry_after=1)
    await converge(hub, propagator, target)
    assert len(proxy.faulted()) == 8
    row = await hub.row(target)
    assert row.quarantined is None, row.quarantine_reason
    assert row.consecutive_failures == 0
    await assert_converged(hub, downstream, target, expected)


# -- timeouts ---------------------------------------------------------------------------------------


async def test_timeouts_duplicate_nothing(hub: Hub, proxy: FaultyProxy, downstream: Peer) -> None:
    """POSTs reach the downstream but the answer comes after the client gave up: the accounts exist
    there unknown to the hub. Retrying finds and adopts them instead of making them twice."""
    target = await target_for(hub, proxy, downstream)
    propagator = hub.propagator(concurrency=2, client_timeout=0.5)
    expected = {f"s{i}": {"title": f"slow {i}"} for i in range(6)}
    ids = [await hub.user(short, **attributes) for short, attributes in expected.items()]
    proxy.slow(1.5, count=3, forward=True, methods={"POST"})

    await propagator.drain()
    rows = await hub.outbox_rows(target)
    assert any(row.attempts > 0 and "Timeout" in (row.last_error or "") for row in rows), rows
    async with hub.db.read() as conn:
        linked = (await conn.execute(sa.text("select count(*) from links"))).scalar_one()
    assert len(await downstream_users(downstream, hub.prefix)) > linked, "made there, unknown to the hub"

    await converge(hub, propagator, target)
    assert [hit.method for hit in proxy.faulted()] == ["POST"] * 3
    await assert_converged(hub, downstream, target, expected)
    async with hub.db.read() as conn:
        actions = [
            r.action
            for r in await conn.execute(
                sa.text("select action from push_log where target_id = :t and outcome = 'ok'"), {"t": target.id}
            )
        ]
    assert sorted(actions) == ["adopt"] * 3 + ["create"] * 3
    await hub.retitle(ids[0], "after the storm")
    await converge(hub, propagator, target)
    await assert_converged(hub, downstream, target, {**expected, "s0": {"title": "after the storm"}})


# -- down for a while -------------------------------------------------------------------------------


async def test_down_for_a_while_then_back(hub: Hub, proxy: FaultyProxy, downstream: Peer) -> None:
    """Connections are refused for a while, during which identities are made and changed; once the
    target listens again everything arrives, once, with the latest attributes."""
    target = await target_for(hub, proxy, downstream)
    propagator = hub.propagator(concurrency=4)
    expected = {f"d{i}": {"title": "before"} for i in range(8)}
    ids = {short: await hub.user(short, **attributes) for short, attributes in expected.items()}
    await converge(hub, propagator, target)
    await assert_converged(hub, downstream, target, expected)

    proxy.down()
    for short in ("d0", "d1", "d2"):
        await hub.retitle(ids[short], "during")
        expected[short] = {"title": "during"}
    for i in range(8, 14):
        expected[f"d{i}"] = {"title": "new"}
        await hub.user(f"d{i}", title="new")
    outage_ends = time.monotonic() + 2.0
    while time.monotonic() < outage_ends:
        await propagator.drain()
        await asyncio.sleep(0.1)
    rows = await hub.outbox_rows(target)
    assert len(rows) == 9 and any(row.attempts > 0 and "Connect" in (row.last_error or "") for row in rows), rows
    row = await hub.row(target)
    assert row.consecutive_failures >= 1 and row.quarantined is None

    proxy.up()
    await converge(hub, propagator, target)
    await assert_converged(hub, downstream, target, expected)
    row = await hub.row(target)
    assert row.quarantined is None and row.consecutive_failures == 0


# -- quarantine -------------------------------------------------------------------------------------


async def test_persistent_failure_quarantines_and_resume_delivers_what_was_missed(
    hub: Hub, proxy: FaultyProxy, downstream: Peer, hub_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = await target_for(hub, proxy, downstream, quarantine_after=3)
    propagator = hub.propagator(concurrency=4)
    expected = {f"q{i}": {"title": "first"} for i in range(4)}
    ids = {short: await hub.user(short, **attributes) for short, attributes in expected.items()}
    await converge(hub, propagator, target)

    proxy.fail(500, detail="the application's database is down")
    await hub.user("q4", title="first")
    expected["q4"] = {"title": "first"}
    deadline = time.monotonic() + 20
    while (await hub.row(target)).quarantined is None:
        assert time.monotonic() < deadline, "a target failing persistently is quarantined"
        await propagator.drain()
        await asyncio.sleep(0.05)
    row = await hub.row(target)
    assert row.quarantine_reason and "3 failures in a row" in row.quarantine_reason
    assert "the application's database is down" in row.quarantine_reason
    status = await target_status(hub_url, "app")
    assert status["quarantined"] is True and status["quarantine_reason"] == row.quarantine_reason
    # Three pushes, each 500 followed by a read of the target which, failing too, shows the outage is
    # the target's and not one request's (issue 19): only then does it count toward quarantine.
    assert len(proxy.faulted()) == 3 * 2

    # The target is healthy again, but quarantined: it receives nothing, however much changes.
    proxy.passthrough()
    quarantined_at = time.monotonic()
    await hub.retitle(ids["q0"], "while quarantined")
    expected["q0"] = {"title": "while quarantined"}
    for i in range(5, 8):
        await hub.user(f"q{i}", title="missed")
        expected[f"q{i}"] = {"title": "missed"}
    assert await propagator.drain() == 0
    # A worker runs until it has done three rounds (proven by counting them, not by waiting a while):
    # each would have pushed what is due, had the target not been quarantined.
    stop = asyncio.Event()
    worker = hub.propagator(concurrency=4)
    rounds: list[int] = []
    claim = worker.run_once

    async def counted(target_id: int | None = None) -> int:
        done = await claim(target_id)
        rounds.append(done)
        if len(rounds) == 3:
            stop.set()
        return done

    monkeypatch.setattr(worker, "run_once", counted)
    await asyncio.wait_for(worker.run(stop), timeout=60)
    assert rounds == [0, 0, 0]
    assert proxy.hits_since(quarantined_at) == [], "nothing is sent to a quarantined target"
    assert await hub.pending(target) == 5

    await TargetRepository(hub.db).resume("app")
    await propagator.drain()  # on resume, at once: no waiting out backoffs from before the quarantine
    assert await hub.pending(target) == 0
    await assert_converged(hub, downstream, target, expected)
    row = await hub.row(target)
    assert row.quarantined is None and row.consecutive_failures == 0


async def test_revoked_credential_quarantines_at_once(hub: Hub, proxy: FaultyProxy, downstream: Peer) -> None:
    """A 401 stops the target after one request: no other identity is tried with a dead credential."""
    target = await target_for(hub, proxy, downstream)
    propagator = hub.propagator(concurrency=1)
    expected = {f"r{i}": {"title": "ok"} for i in range(3)}
    for short, attributes in expected.items():
        await hub.user(short, **attributes)
    await converge(hub, propagator, target)

    proxy.fail(401, detail="the token was revoked")
    for i in range(3, 6):
        await hub.user(f"r{i}", title="later")
        expected[f"r{i}"] = {"title": "later"}
    await propagator.drain()
    assert [hit.status for hit in proxy.faulted()] == [401], "halted after the first refusal"
    row = await hub.row(target)
    assert row.quarantined is not None and row.quarantine_reason
    assert "401" in row.quarantine_reason and "the token was revoked" in row.quarantine_reason
    assert await hub.pending(target) == 3
    assert await propagator.drain() == 0

    proxy.passthrough()  # the admin fixed the credential
    await TargetRepository(hub.db).resume("app")
    await propagator.drain()
    assert await hub.pending(target) == 0
    await assert_converged(hub, downstream, target, expected)


async def test_a_quarantine_does_not_postpone_a_tombstone(hub: Hub, proxy: FaultyProxy, downstream: Peer) -> None:
    """Resuming makes every waiting row due at once, tombstones included: looking at a tombstone early
    must keep its deletion at the end of the grace that began with the deactivation, not restart it."""
    config = TargetConfig(deprovision=DeprovisionMode.TOMBSTONE, tombstone_days=1)
    target = await hub.add_target("app", proxy.url("/scim/v2"), downstream.token, config)
    propagator = hub.propagator(concurrency=1)
    leaver = await hub.user("leaver", title="x")
    await converge(hub, propagator, target)
    await hub.store.delete(USER_TYPE, leaver)
    await propagator.drain()
    half_a_day_ago = utcnow() - timedelta(hours=12)
    async with hub.db.write() as conn:  # twelve hours pass
        await conn.execute(
            sa.text("update links set acknowledged = :a where identity_id = :i"), {"a": half_a_day_ago, "i": leaver}
        )
        await conn.execute(
            sa.text("update outbox set due = :d where identity_id = :i"),
            {"d": half_a_day_ago + timedelta(days=1), "i": leaver},
        )

    proxy.fail(401, detail="the token was revoked")
    await hub.user("newcomer", title="y")
    await propagator.drain()
    assert (await hub.row(target)).quarantined is not None
    proxy.passthrough()
    await TargetRepository(hub.db).resume("app")
    await propagator.drain()

    async with hub.db.read() as conn:
        due = (await conn.execute(sa.select(outbox.c.due).where(outbox.c.identity_id == leaver))).scalar_one()
    assert abs(due - (half_a_day_ago + timedelta(days=1))) < timedelta(minutes=1), due
    await assert_converged(hub, downstream, target, {"leaver": {"active": False}, "newcomer": {"title": "y"}})
