"""Shared fixtures: real scimward servers on 127.0.0.1, on SQLite and on PostgreSQL.

PostgreSQL tests use ``$SCIMWARD_TEST_POSTGRES_URL`` (default: the local ``test`` database) and a
fresh database created for the session. Without PostgreSQL they skip with the reason, unless
``SCIMWARD_REQUIRE_POSTGRES=1`` (as in CI), where they fail instead.

The suite runs in parallel (``python3 tasks.py test`` passes ``-n auto`` to pytest-xdist): each
worker process is a session of its own, with its own servers and databases, so nothing here is
shared between workers but the PostgreSQL server. A test's fresh database (``hub_url``) is a copy of
one migrated once per session: a file copy on SQLite; on PostgreSQL ``CREATE DATABASE ... TEMPLATE``,
or one an earlier test used, emptied back to the template's state (``tests/postgres_hubs.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from scimward.api.app import create_app
from scimward.api.settings import Settings
from scimward.store.auth.tokens import TokenStore
from scimward.store.database import Database, upgrade
from scimward.sync.client import TargetClient
from tests.postgres_hubs import Hubs

POSTGRES_URL = os.environ.get("SCIMWARD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("SCIMWARD_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_unavailable() -> str | None:
    engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect():
            return None
    except (sa.exc.DBAPIError, OSError) as exc:
        return f"PostgreSQL at {POSTGRES_URL} is unavailable: {str(exc).splitlines()[0]}"
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``pytest.mark.anyio``) run on asyncio, as the hub does."""
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def secret_key_file(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The hub's key for target credentials, in a temporary file for the whole session.

    Servers and propagators built in this process read it; without it they would create
    ``./scimward-secret.key`` in the working directory. A developer's own ``SCIMWARD_SECRET_KEY``
    is set aside.
    """
    path = tmp_path_factory.mktemp("secrets") / "secret.key"
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SCIMWARD_SECRET_KEY", raising=False)
        patch.setenv("SCIMWARD_KEY_FILE", str(path))
        yield path


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session; its URL."""
    reason = _postgres_unavailable()
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} (SCIMWARD_REQUIRE_POSTGRES=1: PostgreSQL tests may not skip)")
        pytest.skip(reason)
    name = f"scimward_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A migrated, empty database on each backend."""
    if request.param == "postgresql":
        url: str = request.getfixturevalue("postgres_database")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'scimward.db'}"
    upgrade(url)
    return url


def issue_token(url: str, name: str, **kwargs: object) -> str:
    async def run() -> str:
        database = Database(url)
        try:
            return await TokenStore(database).create(name, created_by="tests", **kwargs)  # type: ignore[arg-type]
        finally:
            await database.dispose()

    return asyncio.run(run())


@dataclass
class LiveServer:
    base_url: str
    token: str
    database_url: str
    dialect: str

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token or self.token}", "Accept": "application/scim+json"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)


class _Server(uvicorn.Server):
    """``uvicorn.Server`` whose main loop ends as soon as it is told to (``stop``), where uvicorn's
    looks at ``should_exit`` every 0.1 s: hundreds of servers stop in a run of the suite."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # the date header, once a second, as uvicorn's own loop
            counter += 10
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), 1.0)
            if self._stopping.is_set():
                return

    def stop(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._stopping is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                self._loop.call_soon_threadsafe(self._stopping.set)


class ServerThread:
    """uvicorn serving a scimward app on a real socket, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", access_log=False, lifespan="on"
        )
        self.server = _Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def live_server(database_url: str) -> Iterator[LiveServer]:
    token = issue_token(database_url, f"tests-{uuid.uuid4().hex[:8]}")
    with ServerThread(Settings(database_url=database_url, max_body_bytes=64 * 1024)) as thread:
        yield LiveServer(
            f"http://127.0.0.1:{thread.port}/scim/v2",
            token,
            database_url,
            "postgresql" if database_url.startswith("postgresql") else "sqlite",
        )


@pytest.fixture
def scim(live_server: LiveServer) -> Iterator[httpx.Client]:
    with live_server.client() as client:
        yield client


@pytest.fixture
def unique() -> str:
    """A short unique marker for names, so tests sharing a server never collide."""
    return uuid.uuid4().hex[:10]


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@dataclass
class Peer:
    """A downstream SCIM server on loopback, as a target sees it."""

    base_url: str
    token: str

    def client(self) -> TargetClient:
        return TargetClient(self.base_url, self.token)


class Scim2Server:
    """scim2-server (PyPI; nobody here wrote it) under uvicorn in a subprocess on a free port."""

    def __init__(self) -> None:
        self.port, self.token = free_port(), uuid.uuid4().hex
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Peer:
        command = [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",
            str(repo_root() / "tests" / "peers"),
            "scim2_server_app:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
        ]
        self.process = subprocess.Popen(
            command, env={**os.environ, "SCIM2_TOKEN": self.token}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        base_url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/ServiceProviderConfig", timeout=1).status_code == 200:
                    return Peer(base_url, self.token)
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError("scim2-server did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file that ``hub_url`` copies, so that each test does not migrate its own."""
    path = tmp_path_factory.mktemp("template") / "hub.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_template(postgres_database: str) -> Iterator[str]:
    """The name of a migrated PostgreSQL database that ``hub_url`` clones; nobody connects to it after."""
    name = f"scimward_template_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    upgrade(sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False))
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated hub database for one test, as fresh as the template: a SQLite file, or a PostgreSQL
    database made from the template or emptied back to its state (``postgres_hubs``)."""
    if request.param == "sqlite":
        yield migrated_sqlite(request.getfixturevalue("sqlite_template"), tmp_path / "hub.db")
        return
    hubs: Hubs = request.getfixturevalue("postgres_hubs")  # skips or fails when PostgreSQL is down
    url = hubs.take()
    try:
        yield url
    finally:
        hubs.give_back(url)


@pytest.fixture(scope="session")
def postgres_hubs(postgres_template: str) -> Iterator[Hubs]:
    """This worker's PostgreSQL hub databases: made from the template, emptied back to it after each
    test and reused (``tests/postgres_hubs.py``), dropped at the end of the session."""
    hubs = Hubs(POSTGRES_URL, postgres_template)
    try:
        yield hubs
    finally:
        hubs.close()


# -- downstream peers: the targets tests provision into ------------------------------------------
#
# ``downstream`` and ``application``: a second scimward (fresh for each test, or one per module);
# ``scim2_server``: scim2-server, one process per module, emptied before each test in a module marked
# ``pytest.mark.emptied_peers``; ``peer``: each test once against either kind.


def migrated_sqlite(template: Path, path: Path) -> str:
    """A migrated SQLite database at ``path``, copied from the session's template (migrating a new
    file runs every migration: a fifth of a second in process, over a second in a ``scimward``
    command); its URL."""
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return f"sqlite:///{path}"


@contextmanager
def second_scimward(url: str) -> Iterator[Peer]:
    """A second scimward as a target, on the migrated SQLite database ``url``, with the token it
    issued to the hub (no worker: it has no targets)."""
    token = issue_token(url, "hub")
    with ServerThread(Settings(database_url=url, run_worker=False)) as server:
        yield Peer(f"http://127.0.0.1:{server.port}/scim/v2", token)


@pytest.fixture
def downstream(tmp_path: Path, sqlite_template: Path) -> Iterator[Peer]:
    """A second scimward of the test's own: it holds only what the test sent."""
    with second_scimward(migrated_sqlite(sqlite_template, tmp_path / "downstream.db")) as peer:
        yield peer


@pytest.fixture(scope="module")
def application(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Iterator[Peer]:
    """The downstream application of a module's tests: a second scimward they share (their targets'
    names tell their accounts apart)."""
    path = tmp_path_factory.mktemp("application") / "app.db"
    with second_scimward(migrated_sqlite(sqlite_template, path)) as peer:
        yield peer


@pytest.fixture(scope="module")
def scim2_process() -> Iterator[Peer]:
    """scim2-server, started once for the module's tests."""
    with Scim2Server() as peer:
        yield peer


def empty(peer: Peer) -> None:
    """Delete every Group and User on ``peer``."""
    headers = {"Authorization": f"Bearer {peer.token}"}
    with httpx.Client(base_url=peer.base_url, headers=headers, timeout=10) as http:
        for resource in ("Groups", "Users"):
            while found := http.get(f"/{resource}", params={"attributes": "id", "count": 100}).json().get("Resources"):
                for item in found:
                    http.delete(f"/{resource}/{item['id']}").raise_for_status()


@pytest.fixture
def scim2_server(request: pytest.FixtureRequest, scim2_process: Peer) -> Peer:
    """The module's scim2-server for one test: as the module's earlier tests left it, or, in a module
    marked ``emptied_peers``, emptied (a reconcile sees everything on its target, the accounts other
    tests and the other dialect's run left there too)."""
    if request.node.get_closest_marker("emptied_peers") is not None:
        empty(scim2_process)
    return scim2_process


@pytest.fixture(params=["downstream", "scim2_server"])
def peer(request: pytest.FixtureRequest) -> Peer:
    """Each test once against a second scimward and once against scim2-server."""
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


#: The ``record_property`` key whose values the terminal summary prints, so CI logs show the
#: conformance counts. Properties travel with each test's report, from xdist's workers too.
REPORT_PROPERTY = "scimward_report"
_REPORTED: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _REPORTED.extend(str(value) for key, value in report.user_properties if key == REPORT_PROPERTY)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORTED:
        terminalreporter.section("scimward conformance")
        for line in sorted(_REPORTED):
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The declared ``postgres`` marker on every test that runs on PostgreSQL (a ``postgresql``
    parameter of ``database_url`` or ``hub_url``): ``-m "not postgres"`` runs the rest.

    Tests marked ``slow`` run first, so that in a parallel run a test of a minute does not start last
    and leave the other workers idle while it finishes."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "postgresql" in callspec.params.values():
            item.add_marker(pytest.mark.postgres)
    items[:] = slow_first(items, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def slow_first(items: list[pytest.Item], workers: int) -> list[pytest.Item]:
    """``items`` with the ``slow`` ones dealt out to the head of each worker's share.

    pytest-xdist's ``worksteal`` hands each worker a contiguous share of the collection at the start
    (the n-th of what is left, worker by worker) and later moves tests from the longest queue to an
    idle worker. So each share starts with its slow tests, one share after another in turn, and the
    rest keep their order (a module's tests stay together, sharing its fixtures)."""
    slow = [item for item in items if item.get_closest_marker("slow") is not None]
    rest = [item for item in items if item.get_closest_marker("slow") is None]
    ordered: list[pytest.Item] = []
    left = len(items)
    for worker in range(workers):
        size = left // (workers - worker)
        left -= size
        share = slow[worker::workers]
        ordered += share + rest[: max(size - len(share), 0)]
        del rest[: max(size - len(share), 0)]
    return ordered + rest
