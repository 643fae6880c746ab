"""The command line, run as a user runs it: ``scimward`` in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests import forkserver
from tests.conftest import free_port, migrated_sqlite

SCIMWARD = str(Path(sys.executable).parent / "scimward")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, env={**os.environ, **(env or {})})


@pytest.fixture
def sqlite_url(tmp_path: Path, sqlite_template: Path) -> str:
    return migrated_sqlite(sqlite_template, tmp_path / "cli.db")


@pytest.fixture
def empty_sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'empty.db'}"


def test_token_create_prints_the_token_alone_on_the_last_line(empty_sqlite_url: str) -> None:
    """The first command on a database with no table at all gives it the schema (and says so)."""
    result = run("token", "create", "--name", "okta-prod", "--expires-in", "90d", "--database-url", empty_sqlite_url)
    assert result.returncode == 0, result.stderr
    assert "Created the scimward schema" in result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("scimward_") and " " not in lines[-1]


def test_token_list_shows_name_creator_expiry_and_status(sqlite_url: str) -> None:
    run("token", "create", "--name", "entra", "--expires-in", "30d", "--database-url", sqlite_url)
    result = run("token", "list", "--database-url", sqlite_url)
    assert result.returncode == 0, result.stderr
    assert "entra" in result.stdout and "active" in result.stdout


def test_database_url_comes_from_the_environment(sqlite_url: str) -> None:
    run("token", "create", "--name", "from-env", env={"SCIMWARD_DATABASE_URL": sqlite_url})
    listed = run("token", "list", "--database-url", sqlite_url)
    assert "from-env" in listed.stdout


def test_revoked_token_is_listed_as_revoked(sqlite_url: str) -> None:
    run("token", "create", "--name", "old", "--database-url", sqlite_url)
    assert run("token", "revoke", "old", "--database-url", sqlite_url).returncode == 0
    assert "revoked" in run("token", "list", "--database-url", sqlite_url).stdout


def test_revoking_an_unknown_token_names_it(sqlite_url: str) -> None:
    result = run("token", "revoke", "nobody", "--database-url", sqlite_url)
    assert result.returncode == 2
    assert "nobody" in result.stderr


def test_duplicate_token_name_is_refused(sqlite_url: str) -> None:
    run("token", "create", "--name", "twice", "--database-url", sqlite_url)
    result = run("token", "create", "--name", "twice", "--database-url", sqlite_url)
    assert result.returncode == 2
    assert "already exists" in result.stderr


def test_bad_duration_is_explained(sqlite_url: str) -> None:
    result = run("token", "create", "--name", "x", "--expires-in", "forever", "--database-url", sqlite_url)
    assert result.returncode != 0
    assert "forever" in result.stderr and "90d" in result.stderr


def test_unsupported_database_url_is_explained() -> None:
    result = run("db", "upgrade", "--database-url", "mysql://root@127.0.0.1/test")
    assert result.returncode == 2
    assert "unsupported database" in result.stderr


def test_db_upgrade_migrates(empty_sqlite_url: str) -> None:
    result = run("db", "upgrade", "--database-url", empty_sqlite_url)
    assert result.returncode == 0, result.stderr
    assert "newest schema" in result.stderr


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    port = free_port()
    process = subprocess.Popen(
        [SCIMWARD, "serve", "--demo", "--port", str(port), "--database-url", f"sqlite:///{tmp_path / 'demo.db'}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        base = token = ""
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while not (base and token) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if line.startswith("SCIM base URL:"):
                base = line.split(": ", 1)[1].strip()
            if line.startswith("Admin token"):
                token = line.rsplit(" ", 1)[1].strip()
        assert base and token, "serve --demo did not print the base URL and a token"
        while time.monotonic() < deadline:
            try:
                httpx.get(base.replace("/scim/v2", "/healthz"), timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base, token
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_serve_demo_prints_base_url_and_a_working_token(demo_server: tuple[str, str]) -> None:
    base, token = demo_server
    response = httpx.get(f"{base}/Users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["totalResults"] == 12
    groups = httpx.get(f"{base}/Groups", headers={"Authorization": f"Bearer {token}"}).json()
    assert {g["displayName"] for g in groups["Resources"]} >= {"dept-engineering", "prod-admins"}


def test_token_bound_to_an_unknown_user_is_refused(sqlite_url: str) -> None:
    result = run("token", "create", "--name", "me", "--user", "nobody@example.com", "--database-url", sqlite_url)
    assert result.returncode == 2
    assert "nobody@example.com" in result.stderr


def test_token_create_grants_the_admin_scope_when_asked(sqlite_url: str) -> None:
    assert run("token", "create", "--name", "ops", "--scope", "admin", "--database-url", sqlite_url).returncode == 0
    assert run("token", "create", "--name", "idp", "--database-url", sqlite_url).returncode == 0
    listed = run("token", "list", "--database-url", sqlite_url).stdout
    assert "admin" in next(line for line in listed.splitlines() if "ops" in line)
    assert "scim" in next(line for line in listed.splitlines() if "idp" in line)


def test_an_unknown_token_scope_is_refused(sqlite_url: str) -> None:
    result = run("token", "create", "--name", "x", "--scope", "root", "--database-url", sqlite_url)
    assert result.returncode == 2 and "root" in result.stderr
