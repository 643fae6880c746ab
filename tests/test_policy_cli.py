"""The gate's commands, run as a user runs them: ``scimward policy|changes|breaker|blast-radius``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.tables import changes
from tests import forkserver
from tests.conftest import migrated_sqlite, repo_root


def run(*args: str, actor: str = "alice") -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, env={**os.environ, "SCIMWARD_ACTOR": actor})


@pytest.fixture
def url(tmp_path: Path, sqlite_template: Path) -> str:
    url = migrated_sqlite(sqlite_template, tmp_path / "gate.db")
    return url


def test_an_invalid_policy_names_the_rule_and_position_and_changes_nothing(url: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - name: broken\n    when: change.op == \n    action: deny\n")
    result = run("policy", "apply", str(bad), "--database-url", url)
    assert result.returncode == 2
    assert "rule 'broken': invalid expression at line 1, column 14" in result.stderr
    assert "Traceback" not in result.stderr
    shown = json.loads(run("policy", "show", "--json", "--database-url", url).stdout)
    assert shown["version"] == 0 and shown["rules"] == []


def test_a_dry_run_names_the_identities_the_rules_would_catch(url: str) -> None:
    async def seed() -> None:
        database = Database(url)
        store = identity_store(database)
        for name in ("ada@example.com", "eve@evil.test"):
            body = {"schemas": [USER_SCHEMA], "userName": name, "emails": [{"value": name}]}
            await store.create(USER_TYPE, normalize(body, USER_TYPE), source="tests")
        await database.dispose()

    asyncio.run(seed())
    policy = repo_root() / "examples" / "policy.yaml"
    result = run("policy", "apply", str(policy), "--dry-run", "--database-url", url)
    assert result.returncode == 0, result.stderr
    assert "+ rule email-domain-allowed" in result.stdout
    assert "1 would be denied or held" in result.stdout and "eve@evil.test" in result.stdout
    assert "Dry run: nothing changed." in result.stdout
    assert json.loads(run("policy", "show", "--json", "--database-url", url).stdout)["version"] == 0
    assert run("policy", "apply", str(policy), "--database-url", url).returncode == 0
    assert json.loads(run("policy", "show", "--json", "--database-url", url).stdout)["version"] == 1


@pytest.mark.slow  # a dozen `scimward` commands
def test_held_changes_are_listed_approved_by_someone_else_and_expire(url: str) -> None:
    assert run("policy", "apply", str(repo_root() / "examples" / "policy.yaml"), "--database-url", url).returncode == 0

    async def seed() -> None:
        database = Database(url)
        store = identity_store(database)
        user = await store.create(
            USER_TYPE,
            normalize({"schemas": [USER_SCHEMA], "userName": "ada@example.com"}, USER_TYPE),
            source="scim:okta",
            actor="okta",
        )
        for name in ("prod-admins", "ops-admins"):
            body = {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": user.id}]}
            await store.create(GROUP_TYPE, normalize(body, GROUP_TYPE), source="scim:okta", actor="okta")
        await database.dispose()

    asyncio.run(seed())
    listed = json.loads(run("changes", "list", "--status", "pending", "--json", "--database-url", url).stdout)
    assert {c["name"] for c in listed} == {"prod-admins", "ops-admins"}
    assert all({"id", "status", "op", "type", "identity", "source", "actor", "reasons"} <= set(c) for c in listed)
    prod = next(c for c in listed if c["name"] == "prod-admins")
    refused = run("changes", "approve", prod["id"], "--database-url", url, actor="okta")
    assert refused.returncode == 2 and "cannot approve" in refused.stderr
    approved = run("changes", "approve", prod["id"][:13], "--note", "checked", "--database-url", url)
    assert approved.returncode == 0 and "approved and applied" in approved.stdout, approved.stderr
    shown = json.loads(run("changes", "show", prod["id"], "--json", "--database-url", url).stdout)
    assert shown["status"] == "approved" and shown["approvals"][0]["by"] == "alice"
    assert run("changes", "approve", prod["id"], "--database-url", url, actor="bob").returncode == 2
    diverged = json.loads(run("changes", "diverged", "--json", "--database-url", url).stdout)
    assert [d["name"] for d in diverged] == ["ops-admins"]

    async def age() -> None:  # the other held change is older than the policy's pending_expiry
        database = Database(url)
        async with database.write() as conn:
            await conn.execute(
                changes.update()
                .where(changes.c.status == "pending")
                .values(expires=datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=1))
            )
        await database.dispose()

    asyncio.run(age())
    statuses = {
        c["name"]: c["status"]
        for c in json.loads(run("changes", "list", "--json", "--database-url", url).stdout)
        if c["type"] == "Group"
    }
    assert statuses == {"prod-admins": "approved", "ops-admins": "expired"}
    status = json.loads(run("breaker", "status", "--json", "--database-url", url).stdout)
    assert status == {"targets": []}
    radius = json.loads(run("blast-radius", "group:prod-admins", "--json", "--database-url", url).stdout)
    assert radius["accounts"] == 0 and radius["type"] == "Group"
    unknown = run("blast-radius", "user:nobody", "--database-url", url)
    assert unknown.returncode == 2 and "no user 'nobody'" in unknown.stderr
