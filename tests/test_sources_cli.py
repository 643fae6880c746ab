"""``scimward source ...``, ``scimward import`` and ``token create --source``, run as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database, create_sync_engine
from scimward.store.tables import changes
from tests import forkserver
from tests.conftest import ServerThread, migrated_sqlite
from tests.hub import ENTERPRISE


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, env={**os.environ, "SCIMWARD_ACTOR": "alice"})


@pytest.fixture
def url(tmp_path: Path, sqlite_template: Path) -> str:
    url = migrated_sqlite(sqlite_template, tmp_path / "sources.db")
    return url


def seed(url: str, *users: tuple[str, str]) -> None:
    async def go() -> None:
        database = Database(url)
        try:
            for user_name, employee in users:
                await identity_store(database).create(
                    USER_TYPE,
                    normalize(
                        {
                            "schemas": [USER_SCHEMA, ENTERPRISE],
                            "userName": user_name,
                            "active": True,
                            "emails": [{"value": user_name}],
                            ENTERPRISE: {"employeeNumber": employee},
                        },
                        USER_TYPE,
                    ),
                    source="scim:okta",
                )
        finally:
            await database.dispose()

    asyncio.run(go())


def test_sources_are_added_and_listed(url: str) -> None:
    assert run("source", "add", "okta", "--kind", "scim", "--database-url", url).returncode == 0
    added = run("source", "add", "workday", "--kind", "csv", "--priority", "10", "--database-url", url)
    assert added.returncode == 0, added.stderr
    listed = json.loads(run("source", "list", "--json", "--database-url", url).stdout)
    assert [(s["name"], s["kind"], s["priority"]) for s in listed] == [("workday", "csv", 10), ("okta", "scim", 100)]
    again = run("source", "add", "okta", "--kind", "scim", "--database-url", url)
    assert again.returncode == 2 and "Traceback" not in again.stderr
    bad = run("source", "add", "sap", "--kind", "xml", "--database-url", url)
    assert bad.returncode == 2 and "--kind must be scim, csv, json" in bad.stderr


def test_an_import_with_a_bad_row_names_its_line_and_exits_1(url: str, tmp_path: Path) -> None:
    seed(url, ("ada@example.com", "E1"), ("bob@example.com", "E2"))
    run("source", "add", "workday", "--kind", "csv", "--database-url", url)
    export = tmp_path / "export.csv"
    export.write_text(
        "employee_id,email,status,title\nE1,ada@example.com,active,Architect\nE2,bob@example.com,retired,Chef\n"
    )
    result = run("import", "workday", str(export), "--database-url", url)
    assert result.returncode == 1, result.stderr
    assert "rejected line 3: status 'retired' is not one of active, leave, terminated" in result.stderr
    assert "Traceback" not in result.stderr
    dry = json.loads(run("import", "workday", str(export), "--dry-run", "--json", "--database-url", url).stdout)
    assert (dry["rows"], dry["unchanged"], dry["changed"]) == (2, 1, 0)  # E1's title is applied already


def test_an_export_without_the_needed_columns_is_a_usage_error(url: str, tmp_path: Path) -> None:
    run("source", "add", "workday", "--kind", "csv", "--database-url", url)
    export = tmp_path / "export.csv"
    export.write_text("id,mail\n1,a@example.com\n")
    result = run("import", "workday", str(export), "--database-url", url)
    assert result.returncode == 2
    assert "line 1: the header has no column employee_id, status" in result.stderr


def test_a_scim_token_belongs_to_its_source_and_its_changes_carry_it(url: str) -> None:
    run("source", "add", "okta", "--kind", "scim", "--database-url", url)
    run("source", "add", "workday", "--kind", "csv", "--database-url", url)
    refused = run("token", "create", "--name", "hr-token", "--source", "workday", "--database-url", url)
    assert refused.returncode == 2 and "a SCIM token belongs to a scim source" in refused.stderr
    created = run("token", "create", "--name", "okta-prod", "--source", "okta", "--database-url", url)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    listed = json.loads(run("token", "list", "--json", "--database-url", url).stdout)
    assert [(t["name"], t["source"]) for t in listed] == [("okta-prod", "okta")]
    with ServerThread(Settings(database_url=url, run_worker=False)) as server:
        response = httpx.post(
            f"http://127.0.0.1:{server.port}/scim/v2/Users",
            headers={"Authorization": f"Bearer {token}"},
            json={"schemas": [USER_SCHEMA], "userName": "ada@example.com"},
        )
        assert response.status_code == 201, response.text
    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.select(changes.c.source, changes.c.actor)).all() == [("scim:okta", "okta-prod")]
    finally:
        engine.dispose()
