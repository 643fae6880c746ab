"""``scimward group`` and ``scimward review``, run as a user runs them (issue 15)."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from tests import forkserver
from tests.conftest import migrated_sqlite


def run(*args: str, actor: str = "alice") -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, env={**os.environ, "SCIMWARD_ACTOR": actor})


@pytest.fixture
def url(tmp_path: Path, sqlite_template: Path) -> str:
    url = migrated_sqlite(sqlite_template, tmp_path / "reviews.db")

    async def seed() -> None:
        database = Database(url)
        store = identity_store(database)
        ids = []
        for name in ("olga", "ada", "bob", "cy"):
            body = {"schemas": [USER_SCHEMA], "userName": name}
            ids.append((await store.create(USER_TYPE, normalize(body, USER_TYPE), source="tests")).id)
        group = {"schemas": [GROUP_SCHEMA], "displayName": "prod-admins", "members": [{"value": i} for i in ids[1:]]}
        await store.create(GROUP_TYPE, normalize(group, GROUP_TYPE), source="scim:okta")
        await store.create(
            GROUP_TYPE,
            normalize({"schemas": [GROUP_SCHEMA], "displayName": "all-staff"}, GROUP_TYPE),
            source="scim:okta",
        )
        await database.dispose()

    asyncio.run(seed())
    return url


def test_group_set_and_list(url: str) -> None:
    result = run(
        "group",
        "set",
        "prod-admins",
        "--owner",
        "olga",
        "--purpose",
        "production root",
        "--privileged",
        "--review-every",
        "90d",
        "--membership-expires",
        "30d",
        "--database-url",
        url,
    )
    assert result.returncode == 0, result.stderr
    listed = json.loads(run("group", "list", "--privileged", "--json", "--database-url", url).stdout)["groups"]
    assert [(g["name"], g["owners"], g["reviewCadence"], g["membershipExpires"], g["members"]) for g in listed] == [
        ("prod-admins", ["olga"], 90, 30, 3)
    ]
    unowned = json.loads(run("group", "list", "--unowned", "--json", "--database-url", url).stdout)["groups"]
    assert [g["name"] for g in unowned] == ["all-staff"]


def test_group_set_refuses_an_unknown_owner_without_a_traceback(url: str) -> None:
    result = run("group", "set", "prod-admins", "--owner", "nobody", "--database-url", url)
    assert result.returncode == 2
    assert "owner 'nobody'" in result.stderr and "Traceback" not in result.stderr
    bad = run("group", "set", "prod-admins", "--review-every", "soon", "--database-url", url)
    assert bad.returncode == 2 and "--review-every" in bad.stderr


def test_a_group_name_where_a_filter_belongs_says_what_groups_takes(url: str) -> None:
    result = run("review", "start", "q4", "--groups", "prod-admins", "--database-url", url)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "--groups takes a SCIM filter over Groups, e.g. 'displayName eq \"prod-admins\"'" in result.stderr


def test_a_campaign_from_start_to_report(url: str) -> None:
    assert run("group", "set", "prod-admins", "--owner", "olga", "--privileged", "--database-url", url).returncode == 0
    started = run(
        "review",
        "start",
        "q4",
        "--groups",
        "urn:scimward:params:scim:schemas:extension:governance:2.0:Group:privileged eq true",
        "--due",
        "14d",
        "--default",
        "revoke",
        "--database-url",
        url,
    )
    assert started.returncode == 0, started.stderr
    shown = json.loads(run("review", "show", "q4", "--json", "--database-url", url).stdout)
    assert [(i["id"], i["member"], i["group"], i["decision"]) for i in shown["items"]] == [
        (1, "ada", "prod-admins", None),
        (2, "bob", "prod-admins", None),
        (3, "cy", "prod-admins", None),
    ]
    assert all(i["recommendation"] in ("keep", "revoke") for i in shown["items"])

    refused = run("review", "decide", "q4", "1", "2", "keep", "--as", "ada", "--database-url", url)
    assert refused.returncode == 2 and "cannot review their own access" in refused.stderr
    assert "Traceback" not in refused.stderr
    kept = run("review", "decide", "q4", "1-2", "keep", "--as", "olga", "--note", "on call", "--database-url", url)
    assert kept.returncode == 0, kept.stderr
    closed = run("review", "close", "q4", "--database-url", url)
    assert closed.returncode == 0, closed.stderr
    assert "item 3: revoke: applied" in closed.stdout

    listed = json.loads(run("review", "list", "--json", "--database-url", url).stdout)["campaigns"]
    assert listed[0]["status"] == "closed" and listed[0]["counts"] == {"keep": 2, "revoke": 1, "undecided": 0}
    members = json.loads(run("group", "list", "--json", "--database-url", url).stdout)["groups"]
    assert {g["name"]: g["members"] for g in members}["prod-admins"] == 2
    document = json.loads(run("review", "report", "q4", "--database-url", url).stdout)
    assert [(i["decision"], i["decided_by"], i["note"]) for i in document["items"][:2]] == [
        ("keep", "olga", "on call")
    ] * 2
    assert document["items"][2]["defaulted"] and document["items"][2]["outcome"] == "applied"
    rows = list(
        csv.DictReader(io.StringIO(run("review", "report", "q4", "--format", "csv", "--database-url", url).stdout))
    )
    assert [r["decision"] for r in rows] == ["keep", "keep", "revoke"]

    again = run("review", "decide", "q4", "1", "revoke", "--as", "olga", "--database-url", url)
    assert again.returncode == 2 and "closed" in again.stderr


def test_closing_a_campaign_with_every_item_decided(url: str) -> None:
    assert (
        run("review", "start", "all", "--groups", 'displayName eq "prod-admins"', "--database-url", url).returncode == 0
    )
    assert run("review", "decide", "all", "1-3", "keep", "--as", "olga", "--database-url", url).returncode == 0
    closed = run("review", "close", "all", "--database-url", url)
    assert closed.returncode == 0, closed.stderr
    assert "0 undecided item(s)" in closed.stdout
    twice = run("review", "close", "all", "--database-url", url)
    assert twice.returncode == 2 and "closed already" in twice.stderr and "Traceback" not in twice.stderr
