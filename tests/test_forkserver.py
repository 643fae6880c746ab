"""``tests.forkserver`` gives what the installed ``scimward`` script gives: the same commands run both
ways print the same lines and exit with the same codes, and each forked call is a process of its own."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import forkserver
from tests.conftest import migrated_sqlite


def exec_run(args: list[str], env: dict[str, str], input: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [forkserver.SCIMWARD, *args], capture_output=True, text=True, timeout=60, env=env, input=input, cwd=env["HOME"]
    )


@pytest.fixture
def env(tmp_path: Path, sqlite_template: Path) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SCIMWARD_")}
    return {
        **environ,
        "HOME": str(tmp_path),
        "COLUMNS": "200",
        "SCIMWARD_DATABASE_URL": migrated_sqlite(sqlite_template, tmp_path / "hub.db"),
        "SCIMWARD_KEY_FILE": str(tmp_path / "secret.key"),
        "SCIMWARD_ACTOR": "alice",
    }


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["token", "list"],
        ["target", "list", "--json"],
        ["nosuchcommand"],  # click's usage error, exit 2
        ["token", "create"],  # a missing option
        ["target", "show", "nobody"],  # the project's own error, one line
        ["db", "upgrade", "--database-url", "postgresql+psycopg://scimward:S3cr%40t@127.0.0.1:1/x"],  # redacted
    ],
)
def test_forked_and_exec_d_commands_print_and_exit_alike(args: list[str], env: dict[str, str]) -> None:
    forked = forkserver.run(args, env=env, cwd=env["HOME"])
    real = exec_run(args, env)
    assert (forked.returncode, forked.stdout, forked.stderr) == (real.returncode, real.stdout, real.stderr)
    assert "S3cr" not in forked.stderr + forked.stdout


def test_standard_input_environment_and_working_directory_are_the_callers(env: dict[str, str], tmp_path: Path) -> None:
    add = ["target", "add", "crm", "--url", "http://127.0.0.1:9/scim/v2", "--token-file", "-"]
    empty = forkserver.run(add, env=env, input="")
    assert empty.returncode == 2 and "token" in empty.stderr, empty.stderr
    added = forkserver.run(add, env=env, input="scimward_from_stdin\n")
    assert added.returncode == 0, added.stderr
    assert "crm" in forkserver.run(["target", "list"], env=env).stdout  # the database the caller's env names
    report = forkserver.run(["report", "--format", "json", "--out", "report.json"], env=env, cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert (tmp_path / "report.json").exists() and not (Path.cwd() / "report.json").exists()


def test_a_call_past_its_timeout_is_killed_and_the_next_call_is_served(env: dict[str, str]) -> None:
    with pytest.raises(subprocess.TimeoutExpired):
        forkserver.run(["worker"], env=env, timeout=2)  # runs until stopped
    assert forkserver.run(["--version"], env=env).returncode == 0
