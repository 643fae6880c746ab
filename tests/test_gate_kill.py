"""A writer killed with SIGKILL in the middle of a stream of gated changes loses nothing and half-writes
nothing: each change's decision, source state, effective state and outbox rows commit together.

A subprocess writes through the gated store (creates, then deactivations that a rule holds and title
changes it allows), printing each write's id once the write has returned. It is killed without
warning. Afterwards every identity's version equals the number of its change rows (the state and its
change row committed together or not at all, acknowledged or not), every acknowledged write is
there, every held change has its effective state kept, and every allowed one its outbox row.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from scimward.policy import policies
from scimward.store.database import Database
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import changes, effective_states, identities, outbox
from tests.conftest import repo_root

POLICY = """
rules:
  - name: leavers-are-held
    when: change.op == "deactivate"
    action: hold
    reason: checked by a person
breaker: false
"""

WRITER = """
import asyncio, sys
from scimward.policy import identity_store
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database


async def main(url: str) -> None:
    store = identity_store(Database(url))
    for n in range(100000):
        body = {"schemas": [USER_SCHEMA], "userName": f"k{n}@example.com", "active": True}
        created = await store.create(USER_TYPE, normalize(body, USER_TYPE), source="kill", actor="idp")
        print("create", created.id, flush=True)
        value = {"active": False} if n % 2 else {"title": f"t{n}"}
        op = {"op": "replace", "value": value}
        await store.patch(USER_TYPE, created.id, {"schemas": [PATCH_OP_SCHEMA], "Operations": [op]}, actor="idp")
        print("deactivate" if n % 2 else "title", created.id, flush=True)

asyncio.run(main(sys.argv[1]))
"""


def test_a_killed_writer_leaves_every_change_whole(hub_url: str, tmp_path: Path) -> None:
    async def prepare() -> None:
        db = Database(hub_url)
        await policies.apply(db, POLICY, "tests")
        await TargetRepository(db).add("app", "https://app.invalid/scim/v2", "x", {})
        await db.dispose()

    asyncio.run(prepare())
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    log = tmp_path / "acks.txt"
    with log.open("w") as acks:
        writer = subprocess.Popen(
            [sys.executable, str(script), hub_url],
            stdout=acks,
            cwd=repo_root(),
            env={**os.environ, "PYTHONPATH": str(repo_root())},
        )
        deadline = time.monotonic() + 60
        while len(log.read_text().splitlines()) < 300:
            assert writer.poll() is None, "the writer stopped by itself"
            assert time.monotonic() < deadline, "the writer made too little progress"
            time.sleep(0.05)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=10)
    text = log.read_text()
    # Only whole lines are acknowledgements: the kill can land between two writes of one line's bytes.
    acknowledged = [line.split() for line in text[: text.rfind("\n") + 1].splitlines()]

    async def check() -> None:
        db = Database(hub_url)
        t, c, e, o = identities.c, changes.c, effective_states.c, outbox.c
        async with db.read() as conn:
            versions = {r.id: r.version for r in await conn.execute(sa.select(t.id, t.version))}
            counted = {
                r[0]: r[1]
                for r in await conn.execute(sa.select(c.identity_id, sa.func.count()).group_by(c.identity_id))
            }
            pending = {r[0] for r in await conn.execute(sa.select(c.identity_id).where(c.status == "pending"))}
            kept = {r[0]: r[1] for r in await conn.execute(sa.select(e.identity_id, e.doc))}
            queued = {r[0] for r in await conn.execute(sa.select(o.identity_id))}
        await db.dispose()
        assert versions and versions == counted  # one change row per version, never one without the other
        assert pending == set(kept)
        for kind, identity_id in acknowledged:
            assert identity_id in versions
            if kind == "deactivate":
                assert identity_id in pending and kept[identity_id]["active"] is True
            else:
                assert identity_id in queued

    asyncio.run(check())
    assert len(acknowledged) >= 300
