"""``scimward sync`` and ``scimward target status``, run as a user runs them, into a real downstream."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import httpx

from scimward.api.settings import Settings
from scimward.cli.provisioning import full_sync
from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.store.database import Database, upgrade
from scimward.store.provisioning import Outbox
from tests import forkserver
from tests.conftest import Peer, ServerThread, issue_token


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, timeout=120, env={**os.environ, **env})


def seed(url: str, users: int) -> None:
    async def go() -> None:
        database = Database(url)
        store = identity_store(database)
        ids = []
        for n in range(users):
            body = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": f"sync-{n:03d}",
                "userType": "Employee" if n % 2 == 0 else "Contractor",
            }
            ids.append((await store.create(USER_TYPE, normalize(body, USER_TYPE))).id)
        group = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "everyone",
            "members": [{"value": i} for i in ids],
        }
        await store.create(GROUP_TYPE, normalize(group, GROUP_TYPE))
        await database.dispose()

    asyncio.run(go())


def test_sync_pushes_the_scope_and_status_reports_it(tmp_path: Path, downstream: Peer) -> None:
    hub = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {"SCIMWARD_DATABASE_URL": hub, "DOWNSTREAM_TOKEN": downstream.token}
    upgrade(hub)
    seed(hub, 40)
    added = run(
        "target",
        "add",
        "app",
        "--url",
        downstream.base_url,
        "--token-env",
        "DOWNSTREAM_TOKEN",
        "--scope",
        'userType eq "Employee"',
        env=env,
    )
    assert added.returncode == 0, added.stderr
    synced = run("sync", "app", "--json", env=env)
    assert synced.returncode == 0, synced.stderr
    result = json.loads(synced.stdout)
    assert result["target"] == "app" and result["remaining"] == 0 and result["retrying"] == 0
    assert result["pushed"] >= 21 and result["processed"] >= result["pushed"]  # 20 in scope and the group
    listed = httpx.get(
        f"{downstream.base_url}/Users",
        params={"filter": 'userName sw "sync-"', "count": 0},
        headers={"Authorization": f"Bearer {downstream.token}"},
    ).json()
    assert listed["totalResults"] == 20
    status = run("target", "status", "app", "--json", env=env)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["linked_users"] == 20 and report["linked_groups"] == 1
    assert report["pending"] == 0 and report["quarantined"] is False
    assert report["latency_p50_ms"] is not None


def test_sync_waits_for_the_rows_another_worker_holds(tmp_path: Path, downstream: Peer) -> None:
    """Issue 19, item 10: rows a worker claimed before the sync could are not "left": the sync waits
    for them, and pushes them itself when that worker lets them go (here it died: its lease runs out)."""
    hub = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {"SCIMWARD_DATABASE_URL": hub, "DOWNSTREAM_TOKEN": downstream.token}
    upgrade(hub)
    added = run(
        "target",
        "add",
        "app",
        "--url",
        downstream.base_url,
        "--token-env",
        "DOWNSTREAM_TOKEN",
        "--scope",
        'userType eq "Employee"',
        env=env,
    )
    assert added.returncode == 0, added.stderr
    seed(hub, 10)

    async def claim_then_sync() -> tuple[int, dict[str, int]]:
        database = Database(hub)
        try:  # a worker claims every row, and dies: they are its own until the lease runs out
            held = len(await Outbox(database).claim(1000, timedelta(seconds=5)))
        finally:
            await database.dispose()
        return held, await full_sync(hub, "app", quiet=True)

    held, result = asyncio.run(claim_then_sync())
    assert held == 11  # ten users and the group, written after the target was added
    assert result["remaining"] == 0 and result["pushed"] == held and result["processed"] >= held
    listed = httpx.get(
        f"{downstream.base_url}/Users",
        params={"filter": 'userName sw "sync-"', "count": 0},
        headers={"Authorization": f"Bearer {downstream.token}"},
    ).json()
    assert listed["totalResults"] == 5


def test_sync_of_an_unknown_target_names_it(tmp_path: Path) -> None:
    hub = f"sqlite:///{tmp_path / 'hub.db'}"
    result = run("sync", "nowhere", env={"SCIMWARD_DATABASE_URL": hub})
    assert result.returncode == 2 and "nowhere" in result.stderr


def test_a_scim_write_reaches_the_target_without_a_sync(tmp_path: Path, downstream: Peer) -> None:
    """serve runs its own worker, woken by the commit (latency is measured in bench/, not here)."""
    hub = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(hub)
    token = issue_token(hub, "idp")
    added = run(
        "target",
        "add",
        "app",
        "--url",
        downstream.base_url,
        "--token-env",
        "DOWNSTREAM_TOKEN",
        env={"SCIMWARD_DATABASE_URL": hub, "DOWNSTREAM_TOKEN": downstream.token},
    )
    assert added.returncode == 0, added.stderr
    with ServerThread(Settings(database_url=hub)) as server:
        started = time.monotonic()
        created = httpx.post(
            f"http://127.0.0.1:{server.port}/scim/v2/Users",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "fast"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert created.status_code == 201
        while time.monotonic() - started < 30:
            found = httpx.get(
                f"{downstream.base_url}/Users",
                params={"filter": 'userName eq "fast"'},
                headers={"Authorization": f"Bearer {downstream.token}"},
            ).json()
            if found["totalResults"] == 1:
                break
            time.sleep(0.02)
    assert found["totalResults"] == 1


def test_sync_adopts_accounts_it_found_in_its_scan(tmp_path: Path, downstream: Peer) -> None:
    """sync reads the target once instead of looking each account up; what it read is adopted."""
    hub = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {"SCIMWARD_DATABASE_URL": hub, "DOWNSTREAM_TOKEN": downstream.token}
    upgrade(hub)
    seed(hub, 4)
    headers = {"Authorization": f"Bearer {downstream.token}"}
    made = httpx.post(
        f"{downstream.base_url}/Users",
        headers=headers,
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "SYNC-002"},
    )
    assert made.status_code == 201
    assert (
        run("target", "add", "app", "--url", downstream.base_url, "--token-env", "DOWNSTREAM_TOKEN", env=env).returncode
        == 0
    )
    assert run("sync", "app", env=env).returncode == 0
    found = httpx.get(
        f"{downstream.base_url}/Users", headers=headers, params={"filter": 'userName sw "sync-"', "count": 10}
    ).json()
    assert found["totalResults"] == 4
    adopted = [u for u in found["Resources"] if u["userName"].lower() == "sync-002"]
    assert len(adopted) == 1 and adopted[0]["id"] == made.json()["id"] and adopted[0]["externalId"]
