"""The command line's one error chokepoint (``cli/exits.py``): one line, the documented exit code, no
traceback and no credential (issue 12, items 1, 2, 9 and 14)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from scimward.cli.exits import ExitCode, classify
from scimward.cli.redact import redact
from scimward.policy import identity_store
from scimward.scim.errors import NotFound
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database, upgrade
from scimward.store.errors import DatabaseUnavailable, SchemaMismatch
from scimward.store.provisioning import TargetRepository
from scimward.sync.errors import AuthError, TransientError
from scimward.sync.propagate import Propagator
from tests import forkserver
from tests.conftest import Peer, free_port, issue_token

SECRET_URL = "postgresql+psycopg://scimward:S3cr%40tPw@127.0.0.1:1/scimward"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCIMWARD_")}
    return forkserver.run(args, env={**environ, **(env or {})})


@pytest.mark.parametrize(
    "args",
    [
        ("db", "upgrade", "--database-url", SECRET_URL),
        ("token", "list", "--database-url", SECRET_URL),
        ("target", "list", "--database-url", SECRET_URL),
        ("findings", "--database-url", SECRET_URL),
        ("sync", "crm", f"--database-url={SECRET_URL}"),
    ],
)
def test_an_unreachable_database_is_one_line_exit_3_without_the_password(args: tuple[str, ...]) -> None:
    result = run(*args)
    assert result.returncode == ExitCode.DATABASE, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: cannot open the database")
    assert "S3cr" not in result.stderr + result.stdout and "Traceback" not in result.stderr
    assert "scimward:***@127.0.0.1:1" in result.stderr


def test_the_password_is_hidden_when_the_url_comes_from_the_environment() -> None:
    result = run("token", "list", env={"SCIMWARD_DATABASE_URL": SECRET_URL})
    assert result.returncode == ExitCode.DATABASE and "S3cr" not in result.stderr


def test_debug_shows_the_traceback_still_without_the_password() -> None:
    result = run("--debug", "db", "upgrade", "--database-url", SECRET_URL)
    assert result.returncode == ExitCode.DATABASE
    assert "Traceback" in result.stderr and "S3cr" not in result.stderr


def test_db_upgrade_success_names_the_database_without_its_password(tmp_path: Path) -> None:
    # SQLite has no password; the rendering is the one PostgreSQL URLs get (store.database.shown_url).
    result = run("db", "upgrade", "--database-url", f"sqlite:///{tmp_path / 'x.db'}")
    assert result.returncode == 0 and "newest schema" in result.stderr


def test_a_schema_behind_is_refused_with_the_command_that_fixes_it(tmp_path: Path) -> None:
    """Commands check the schema instead of migrating (issue 12 item 11); `db upgrade` migrates."""
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '0008'"))
    engine.dispose()
    result = run("token", "list", "--database-url", url)
    assert result.returncode == ExitCode.DATABASE
    assert "0008" in result.stderr and "scimward db upgrade" in result.stderr and "Traceback" not in result.stderr
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one() == "0008"
    engine.dispose()


def test_an_unknown_name_is_a_usage_error() -> None:
    assert classify(NotFound("no target named 'x'")) == (ExitCode.USAGE, "no target named 'x'")


def test_the_classes_decide_the_exit_code() -> None:
    assert classify(DatabaseUnavailable("down"))[0] == ExitCode.DATABASE  # type: ignore[index]
    assert classify(SchemaMismatch("behind"))[0] == ExitCode.DATABASE  # type: ignore[index]
    assert classify(TransientError("timed out"))[0] == ExitCode.TARGET  # type: ignore[index]
    assert classify(AuthError("401", status=401))[0] == ExitCode.TARGET  # type: ignore[index]
    assert classify(RuntimeError("a bug")) is None


def test_redact_hides_raw_and_percent_decoded_passwords() -> None:
    text = "failed for postgresql+psycopg://scimward:S3cr%40tPw@host/db (password S3cr@tPw)"
    assert redact(text, [SECRET_URL]) == "failed for postgresql+psycopg://scimward:***@host/db (password ***)"


def test_version_and_python_dash_m() -> None:
    from importlib.metadata import version

    assert run("--version").stdout.strip() == f"scimward {version('scimward')}"
    for program in ([forkserver.SCIMWARD], [sys.executable, "-m", "scimward"]):  # exec'd, not forked
        done = subprocess.run([*program, "--version"], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and done.stdout.strip() == f"scimward {version('scimward')}"


def test_an_unknown_command_is_clicks_usage_error() -> None:
    result = run("nosuchcommand")
    assert result.returncode == ExitCode.USAGE and "Traceback" not in result.stderr


@pytest.mark.parametrize("answer", ["unreachable", "404"])
def test_sync_and_reconcile_against_a_failing_target_print_no_traceback(
    tmp_path: Path, answer: str, downstream: Peer
) -> None:
    """Issue 12 item 1: `sync` printed ~200 lines of traceback for an unreachable target, or one answering 404."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {"SCIMWARD_DATABASE_URL": url, "SCIMWARD_KEY_FILE": str(tmp_path / "secret.key"), "T": "x"}
    base = f"http://127.0.0.1:{free_port()}/scim/v2" if answer == "unreachable" else downstream.base_url + "/nothing"
    assert run("target", "add", "app", "--url", base, "--token-env", "T", env=env).returncode == 0
    issue_token(url, "seed")  # a database with content, so that the sync has a user to push
    seed_user(url)
    synced = run("sync", "app", env=env)
    assert "Traceback" not in synced.stderr and synced.returncode in {ExitCode.ATTENTION, ExitCode.TARGET}
    # Item 6: a target that cannot be read shows its error and its backlog, not "healthy"...
    status = json.loads(run("target", "status", "app", "--json", env=env).stdout)
    assert status["last_error"].startswith("sync: ") and status["pending"] == 1, status
    if answer == "404":  # ...and once a worker's create was refused, the failure, not "failed 0"
        assert drain(url, env["SCIMWARD_KEY_FILE"]) == 1
        status = json.loads(run("target", "status", "app", "--json", env=env).stdout)
        assert (status["failed"], status["pending"], status["linked_users"]) == (1, 0, 0), status
    reconciled = run("reconcile", "app", env=env)
    assert "Traceback" not in reconciled.stderr and reconciled.returncode == ExitCode.TARGET, reconciled.stderr
    assert reconciled.stderr.strip().splitlines()[-1].startswith("error: the target failed")
    tested = run("target", "test", "app", env=env)
    assert tested.returncode == ExitCode.TARGET, tested.stdout  # 1 is kept for a refused token (docs/cli.md)


def drain(url: str, key_file: str) -> int:
    """What a worker does with the target's outbox: push it once."""

    async def go() -> int:
        database = Database(url)
        propagator = Propagator(database)
        try:
            return await propagator.drain((await TargetRepository(database).by_name("app")).id)
        finally:
            await propagator.close()
            await database.dispose()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCIMWARD_KEY_FILE", key_file)
        return asyncio.run(go())


def seed_user(url: str) -> None:
    async def go() -> None:
        database = Database(url)
        try:
            await identity_store(database).create(
                USER_TYPE, normalize({"schemas": [USER_SCHEMA], "userName": "pushed", "active": True}, USER_TYPE)
            )
        finally:
            await database.dispose()

    asyncio.run(go())


def test_ctrl_c_while_the_command_line_is_imported_exits_as_the_chokepoint_does() -> None:
    """The program's entry point guards the import of the command line itself (cli/entry.py), so a
    Ctrl-C in its first 0.3 s is exit 130 and no traceback, like one during a command."""
    import tomllib

    from scimward.cli import entry

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts == {"scimward": "scimward.cli.entry:main"} and entry.INTERRUPTED == ExitCode.INTERRUPTED
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            # Python's own SIGINT handler, even when this suite was started as a background job (SIGINT ignored)
            "import signal, os, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from scimward.cli import entry; "
            "sys.argv = ['scimward', '--version']; "
            "import scimward.cli.main as m; m.main = lambda: os.kill(os.getpid(), signal.SIGINT); "
            "entry.main()",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == ExitCode.INTERRUPTED and "Traceback" not in result.stderr, result.stderr
