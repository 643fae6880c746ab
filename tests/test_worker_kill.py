"""A propagate worker killed with SIGKILL in the middle of pushing thousands of identities loses nothing.

The hub runs on SQLite and on PostgreSQL. A worker process pushes 3,000 new users to a downstream
scimward; when some but not all are linked it is killed without warning, leaving claimed rows,
accounts made on the downstream whose links were never saved, and half-written nothing (every
step is its own transaction). A new worker takes the dead one's rows once their lease runs out and
finishes: the downstream holds each user exactly once, every one linked to the hub's identity.

The killed worker runs ``Propagator.run`` in a subprocess with a 3-second lease: ``scimward worker``
has no option for the lease and keeps the default of 120 s, which would make this test wait two
minutes for the dead worker's rows. The worker that finishes is ``scimward worker`` itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.timeutil import utcnow
from scimward.sync.secrets import KEY_ENV, SecretBox, generate_key
from scimward.sync.targets import TargetConfig
from tests.conftest import Peer, repo_root

pytestmark = pytest.mark.anyio

USERS = 3000
LEASE_SECONDS = 3

WORKER = """
import asyncio, signal, sys
from datetime import timedelta

from scimward.store.database import Database
from scimward.sync.propagate import Propagator


async def main(url: str, lease: float) -> None:
    database = Database(url)
    propagator = Propagator(database, concurrency=8, lease=timedelta(seconds=lease), poll_seconds=0.1)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        await propagator.run(stop)
    finally:
        await propagator.close()
        await database.dispose()


asyncio.run(main(sys.argv[1], float(sys.argv[2])))
"""


@pytest.fixture
async def hub_db(hub_url: str) -> AsyncIterator[Database]:
    db = Database(hub_url)
    yield db
    await db.dispose()


class Workers:
    """Worker subprocesses; whatever a test leaves running is killed at the end."""

    def __init__(self, url: str, key: str, logs: Path) -> None:
        self.url, self.key, self.logs = url, key, logs
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, *, cli: bool = False) -> subprocess.Popen[bytes]:
        """A worker with a short lease, or with ``cli`` the command line's ``scimward worker``."""
        env = {**os.environ, KEY_ENV: self.key, "PYTHONPATH": str(repo_root() / "src")}
        command = (
            [
                str(Path(sys.executable).with_name("scimward")),
                "worker",
                "--database-url",
                self.url,
                "--concurrency",
                "8",
                "--log-level",
                "warning",
            ]
            if cli
            else [sys.executable, "-c", WORKER, self.url, str(LEASE_SECONDS)]
        )
        log = (self.logs / f"worker-{len(self.started)}.log").open("wb")
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.started.append(process)
        return process

    def output(self, process: subprocess.Popen[bytes]) -> str:
        return (self.logs / f"worker-{self.started.index(process)}.log").read_text(errors="replace")[-3000:]

    def close(self) -> None:
        for process in self.started:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.fixture
def workers(hub_url: str, tmp_path: Path) -> Iterator[Workers]:
    pool = Workers(hub_url, generate_key(), tmp_path)
    yield pool
    pool.close()


async def scalar(db: Database, sql: str, **params: Any) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.text(sql), params)).scalar_one())


async def downstream_users(peer: Peer, prefix: str) -> list[dict[str, Any]]:
    """Every account under the prefix, page by page (the downstream serves at most 1,000 a page)."""
    found: list[dict[str, Any]] = []
    async with httpx.AsyncClient(
        base_url=peer.base_url, headers={"Authorization": f"Bearer {peer.token}"}, timeout=30
    ) as client:
        while True:
            response = await client.get(
                "/Users",
                params={
                    "filter": f'userName sw "{prefix}"',
                    "startIndex": len(found) + 1,
                    "count": 1000,
                    "attributes": "userName,externalId",
                },
            )
            response.raise_for_status()
            page = response.json()
            found += page.get("Resources", [])
            if not page.get("Resources") or len(found) >= page["totalResults"]:
                return found


@pytest.mark.slow  # 3,000 users pushed, twice, and a lease to run out: about 40 s on each backend
async def test_a_killed_worker_loses_nothing(hub_db: Database, downstream: Peer, workers: Workers) -> None:
    secrets = SecretBox(key=workers.key)
    target = await TargetRepository(hub_db).add(
        "app", downstream.base_url, secrets.encrypt(downstream.token), TargetConfig().to_json()
    )
    store, prefix = identity_store(hub_db), f"k{uuid.uuid4().hex[:8]}-"

    async def create(i: int) -> None:
        body = {"schemas": [USER_SCHEMA], "userName": f"{prefix}{i:05d}@example.com", "title": f"n{i}"}
        await store.create(USER_TYPE, normalize(body, USER_TYPE))

    for start in range(0, USERS, 50):  # 50 at a time, as concurrent SCIM requests would arrive
        await asyncio.gather(*(create(i) for i in range(start, min(start + 50, USERS))))
    links_sql = "select count(*) from links where target_id = :t"
    outbox_sql = "select count(*) from outbox where target_id = :t"
    assert await scalar(hub_db, outbox_sql, t=target.id) == USERS

    first = workers.start()
    # The deadlines only stop a test that would otherwise wait for ever; they are generous because a
    # parallel suite on two cores can slow these 3,000 pushes several times over.
    deadline = time.monotonic() + 180
    while await scalar(hub_db, links_sql, t=target.id) < USERS // 5:
        assert first.poll() is None, f"the worker died by itself:\n{workers.output(first)}"
        assert time.monotonic() < deadline, "the first worker made no headway"
        await asyncio.sleep(0.05)
    # Frozen first, then killed once it is seen holding claimed rows (pushes in flight), so that the
    # kill never falls in the moment between two batches when it holds none.
    claimed_sql = "select count(*) from outbox where target_id = :t and claimed_until > :now"
    first.send_signal(signal.SIGSTOP)
    for _ in range(100):
        if await scalar(hub_db, claimed_sql, t=target.id, now=utcnow()) > 0:
            break
        first.send_signal(signal.SIGCONT)
        await asyncio.sleep(0.01)
        first.send_signal(signal.SIGSTOP)
    first.send_signal(signal.SIGKILL)
    assert first.wait(timeout=10) == -signal.SIGKILL

    linked = await scalar(hub_db, links_sql, t=target.id)
    waiting = await scalar(hub_db, outbox_sql, t=target.id)
    claimed = await scalar(hub_db, claimed_sql, t=target.id, now=utcnow())
    assert USERS // 5 <= linked < USERS, "killed in the middle"
    assert waiting >= USERS - linked and claimed > 0, "the dead worker left rows claimed under its lease"
    assert len(await downstream_users(downstream, prefix)) >= linked

    second = workers.start(cli=True)
    deadline = time.monotonic() + 300
    while await scalar(hub_db, outbox_sql, t=target.id) > 0:
        assert second.poll() is None, f"the worker died by itself:\n{workers.output(second)}"
        assert time.monotonic() < deadline, "the restarted worker did not finish"
        await asyncio.sleep(0.1)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=20) == 0, workers.output(second)

    async with hub_db.read() as conn:
        links = {
            row.identity_id: row.remote_id
            for row in await conn.execute(
                sa.text("select identity_id, remote_id from links where target_id = :t and status = 'active'"),
                {"t": target.id},
            )
        }
        identities = await scalar(hub_db, "select count(*) from identities where resource_type = 'User'")
    assert identities == USERS and len(links) == USERS
    assert len(set(links.values())) == USERS, "two identities linked to one account"
    accounts = await downstream_users(downstream, prefix)
    assert len(accounts) == USERS, f"{len(accounts)} accounts on the downstream for {USERS} users"
    by_id = {account["id"]: account for account in accounts}
    assert set(by_id) == set(links.values()), "every account linked, every link to an account"
    assert all(by_id[remote]["externalId"] == identity for identity, remote in links.items())
    names = [account["userName"] for account in accounts]
    assert len(set(names)) == USERS
