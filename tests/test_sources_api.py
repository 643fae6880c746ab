"""Sources in the admin API: list, add, show with the import status (issue 17), on both hub dialects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import httpx
import pytest

from scimward.api.settings import Settings
from scimward.governance.sources import Importer, RowFormat
from scimward.policy import identity_store
from scimward.store.database import Database
from scimward.store.governance import SourceRepository
from tests.conftest import ServerThread, issue_token

HEADER = "employee_id,email,status,hire_date,termination_date,department\n"


@pytest.fixture
def admin(hub_url: str) -> Iterator[httpx.Client]:
    with ServerThread(Settings(database_url=hub_url, run_worker=False)) as server:
        token = issue_token(hub_url, f"carol-{uuid.uuid4().hex[:6]}", scopes="admin")
        with httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/admin/v1", headers={"Authorization": f"Bearer {token}"}
        ) as client:
            yield client


def _import(url: str, path: Path) -> None:
    async def run() -> None:
        database = Database(url)
        try:
            source = await SourceRepository(database).get("workday")
            await Importer(database, identity_store(database), source, actor="hr-bot").run(path, "csv", RowFormat())
        finally:
            await database.dispose()

    asyncio.run(run())


def test_sources_are_added_listed_and_shown_with_their_import_status(
    admin: httpx.Client, hub_url: str, tmp_path: Path
) -> None:
    added = admin.post(
        "/sources", json={"name": "workday", "kind": "csv", "priority": 10, "correlate": ["employeeNumber", "emails"]}
    )
    assert added.status_code == 201, added.text
    assert added.json()["config"] == {"correlate": ["employeeNumber", "emails"]}
    assert added.json()["created_by"].startswith("carol-") and added.json()["records"]["records"] == 0
    assert admin.post("/sources", json={"name": "okta", "kind": "scim"}).status_code == 201
    assert [(s["name"], s["priority"]) for s in admin.get("/sources").json()["sources"]] == [
        ("workday", 10),
        ("okta", 100),
    ]

    export = tmp_path / "export.csv"
    export.write_text(
        HEADER + f"E1,e1@example.com,active,2020-01-01,,Sales\n"
        f"E2,e2@example.com,terminated,2020-01-01,{date.today().isoformat()},Sales\n"
    )
    _import(hub_url, export)
    shown = admin.get("/sources/workday").json()
    assert shown["last_import"] is not None
    assert shown["records"] == {"records": 2, "active": 1, "leave": 0, "terminated": 1, "uncorrelated": 2}
    assert "records" not in admin.get("/sources/okta").json()


BAD = [
    ({"name": "okta", "kind": "ldap"}, 400, "--kind must be scim, csv, json"),
    ({"name": "bad name", "kind": "csv"}, 400, "use letters, digits"),
    ({"name": "okta", "kind": "scim", "joiners": "create"}, 400, "are for HR sources"),
    ({"name": "hr", "kind": "csv", "correlate": ["badgeNumber"]}, 400, "unknown key badgeNumber"),
    ({"name": "hr", "kind": "csv", "priority": "first"}, 400, "priority is a whole number"),
    ({"name": "hr", "kind": "csv", "mapping": "/etc/passwd"}, 400, "unknown fields mapping"),
    ({"name": "okta", "kind": "scim"}, 409, "exists already"),
]


def test_a_bad_source_is_refused_with_what_is_wrong_and_nothing_is_added(admin: httpx.Client) -> None:
    assert admin.post("/sources", json={"name": "okta", "kind": "scim"}).status_code == 201
    for body, status, says in BAD:
        refused = admin.post("/sources", json=body)
        assert refused.status_code == status and says in refused.json()["detail"], (body, refused.text)
    assert [s["name"] for s in admin.get("/sources").json()["sources"]] == ["okta"]
    assert admin.get("/sources/nobody").status_code == 404
