"""A target's credential appears nowhere, even when the target echoes it back (issue 11, item 3).

Two targets repeat the request's ``Authorization`` header in every error body, as some applications
do: one answers 500 to every write of one user (a change it cannot take: parked as poison), the
other refuses the hub's token (401: quarantined). A worker runs the scenario with debug logs, then
every command an operator would look with runs (status, show, list, test, findings, reconcile),
then both targets are removed. Neither token is in any log line, any command's output (stdout and
stderr), any stored error or any column of any table, nor, on SQLite, anywhere in the database
files, free pages and write-ahead log included.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from scimward.policy import identity_store
from scimward.store.database import Database
from scimward.store.governance import FindingStore
from scimward.store.provisioning import TargetRepository
from scimward.sync.propagate import Propagator
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import TargetConfig
from tests import forkserver
from tests.conftest import Peer
from tests.hub import Hub
from tests.peers.quirky_server import Quirks, QuirkyServer

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

POISON = "poison@example.com"
SCIMWARD = str(Path(sys.executable).parent / "scimward")


@pytest.fixture
def echoing() -> Iterator[QuirkyServer]:
    """Takes the hub's token, echoes it in its errors, and cannot store one user."""
    with QuirkyServer(
        Quirks(echo_authorization=True, refused=frozenset({POISON})), token=f"app-secret-{uuid.uuid4().hex}"
    ) as server:
        yield server


@pytest.fixture
def refusing() -> Iterator[QuirkyServer]:
    """Refuses the token the hub holds for it (another was issued), echoing the one it got."""
    with QuirkyServer(Quirks(echo_authorization=True)) as server:
        yield server


def run(*args: str, url: str) -> str:
    done = forkserver.run(args, timeout=120, env={**os.environ, "SCIMWARD_DATABASE_URL": url, "COLUMNS": "250"})
    assert done.returncode in (0, 1, 2, 4), done.stderr  # answers, never a crash
    return done.stdout + done.stderr


async def wait_for(condition: Callable[[], Awaitable[bool]], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        assert time.monotonic() < deadline, "the worker did not get there in time"
        await asyncio.sleep(0.2)


async def stored_text(db: Database) -> str:
    """Every row of every table of the hub's database, as text."""
    async with db.read() as conn:
        names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
        rows: list[str] = []
        for name in names:
            result = await conn.execute(sa.text(f'SELECT * FROM "{name}"'))
            rows.extend(repr(tuple(row)) for row in result)
    return "\n".join(rows)


async def test_an_echoed_credential_is_in_no_log_output_or_database(
    hub_url: str, echoing: QuirkyServer, refusing: QuirkyServer
) -> None:
    app_token, locked_token = echoing.token, f"locked-secret-{uuid.uuid4().hex}"
    db = Database(hub_url)
    hub = Hub(db, identity_store(db), Propagator(db), SecretBox())  # the key file the commands read
    await hub.add_target("app", echoing.peer, TargetConfig(extra={"poison_after": 2}))
    await hub.add_target("locked", Peer(refusing.peer.base_url, locked_token))
    await hub.user("ada@example.com", displayName="Ada")
    await hub.user(POISON, displayName="Poison")

    worker = subprocess.Popen(
        [SCIMWARD, "worker", "--log-level", "debug"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SCIMWARD_DATABASE_URL": hub_url},
    )
    try:

        async def parked_and_quarantined() -> bool:
            poisoned = await FindingStore(db).list(kinds=["push_poisoned"])
            return bool(poisoned) and (await TargetRepository(db).by_name("locked")).quarantined is not None

        await wait_for(parked_and_quarantined)
    finally:
        worker.send_signal(signal.SIGINT)
        logs = "".join(worker.communicate(timeout=30))
    assert "push parked" in logs and "target quarantined" in logs, "the worker logged what the targets said"
    echoed = [r for server in (echoing, refusing) for r in server.requests if r.status >= 400]
    assert any(r.status == 500 for r in echoed) and any(r.status == 401 for r in echoed), "the targets echoed"

    # Each place the targets' words are shown, once (a JSON form where it holds more than the table).
    outputs = [
        run(*command, url=hub_url)
        for command in (
            ("target", "show", "locked"),
            ("target", "status", "app"),
            ("target", "status", "locked", "--json"),
            ("target", "test", "locked", "--json"),
            ("findings", "--all", "--json"),
            ("reconcile", "locked"),
        )
    ]
    assert "[redacted]" in "".join(outputs), "the targets' words are shown, without the credential"
    during = await stored_text(db)
    outputs += [run("target", "remove", name, "--yes", url=hub_url) for name in ("app", "locked")]
    after = await stored_text(db)
    await db.dispose()

    files = b""
    if hub_url.startswith("sqlite"):
        path = Path(hub_url.removeprefix("sqlite:///"))
        files = b"".join(p.read_bytes() for p in path.parent.glob(f"{path.name}*"))
    for token in (app_token, locked_token):
        assert token not in logs
        assert not [out for out in outputs if token in out]
        assert token not in during and token not in after
        assert token.encode() not in files


#: A process set up as every command sets itself up at ``--log-level debug``, then sending a credential
#: the ways the hub does: in a request header (httpx, httpcore) and as a bound SQL parameter (the driver).
DEBUG_PROCESS = """
import asyncio, logging, sys
import httpx
import sqlalchemy as sa
from scimward.cli.logs import configure_logging
from scimward.store.database import Database

token, url, database_url = sys.argv[1:]
configure_logging("debug", "json")
logging.getLogger("scimward.tests").debug("scimward's own debug line")

async def main() -> None:
    async with httpx.AsyncClient() as client:
        await client.get(url, headers={"Authorization": f"Bearer {token}"})
    database = Database(database_url)
    async with database.read() as conn:
        await conn.execute(sa.text("SELECT :token"), {"token": token})
    await database.dispose()

asyncio.run(main())
"""


def test_third_party_loggers_never_log_at_debug(refusing: QuirkyServer, hub_url: str) -> None:
    """httpcore logs every request at debug level and the SQLite driver every statement with its
    parameters: at ``--log-level debug`` only scimward's own loggers go to debug."""
    token = f"header-secret-{uuid.uuid4().hex}"
    done = subprocess.run(
        [sys.executable, "-c", DEBUG_PROCESS, token, f"{refusing.peer.base_url}/Users", hub_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "scimward's own debug line" in done.stderr
    assert token not in done.stderr + done.stdout
