"""``scimward nhi ...`` and ``scimward token create --owner``, run as a user runs them, on SQLite and
PostgreSQL: every change goes through the gate with source ``cli`` and the ``--as`` actor."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from typing import Any

from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from tests import forkserver
from tests.hub import change_rows


def run(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run([*args, "--database-url", url], env={**os.environ, "SCIMWARD_ACTOR": "carol"})


def ok(url: str, *args: str) -> str:
    result = run(url, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def listed(url: str, *args: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = json.loads(ok(url, "nhi", "list", "--json", *args))
    return found


def seed(url: str, *names: str) -> dict[str, str]:
    async def inside() -> dict[str, str]:
        database = Database(url)
        try:
            store = identity_store(database)
            return {
                name: (
                    await store.create(
                        USER_TYPE,
                        normalize({"schemas": [USER_SCHEMA], "userName": name, "active": True}, USER_TYPE),
                        source="tests",
                    )
                ).id
                for name in names
            }
        finally:
            await database.dispose()

    return asyncio.run(inside())


def test_add_list_transfer_rotate_retire(hub_url: str) -> None:
    seed(hub_url, "alice", "bob")
    ok(
        hub_url,
        "nhi",
        "add",
        "export-bot",
        "--kind",
        "api_key",
        "--owner",
        "alice",
        "--purpose",
        "nightly export",
        "--expires",
        "30d",
        "--environment",
        "prod",
    )
    [bot] = listed(hub_url)
    assert {k: bot[k] for k in ("name", "kind", "owners", "active")} == {
        "name": "export-bot",
        "kind": "api_key",
        "owners": ["alice"],
        "active": True,
    }
    assert bot["expires"].endswith("Z") and bot["environment"] == "prod" and bot["purpose"] == "nightly export"
    assert change_rows(hub_url, bot["id"]) == [("create", "cli", "carol")]

    assert [v["name"] for v in listed(hub_url, "--owner", "alice")] == ["export-bot"]
    assert listed(hub_url, "--owner", "bob") == []
    assert [v["name"] for v in listed(hub_url, "--expiring", "60d")] == ["export-bot"]
    assert listed(hub_url, "--expiring", "7d") == []
    assert listed(hub_url, "--kind", "bot") == []

    ok(hub_url, "nhi", "transfer", "export-bot", "--to", "bob", "--as", "dave")
    assert listed(hub_url)[0]["owners"] == ["bob"]
    assert change_rows(hub_url, bot["id"])[-1] == ("update", "cli", "dave")

    ok(hub_url, "nhi", "rotate", "export-bot")
    shown = json.loads(ok(hub_url, "nhi", "show", "export-bot", "--json"))
    assert [c["identifier"] for c in shown["credentials"]] == ["export-bot"]
    assert shown["credentials"][0]["lastRotated"].endswith("Z")

    ok(hub_url, "nhi", "retire", "export-bot")
    assert listed(hub_url) == []
    assert change_rows(hub_url, bot["id"])[-1] == ("delete", "cli", "carol")


def test_bad_input_is_refused_without_a_traceback_and_writes_nothing(hub_url: str) -> None:
    seed(hub_url, "alice")
    unknown_kind = run(hub_url, "nhi", "add", "x", "--kind", "robot", "--owner", "alice")
    assert unknown_kind.returncode == 2 and "--kind must be one of" in unknown_kind.stderr
    unknown_owner = run(hub_url, "nhi", "add", "y", "--kind", "bot", "--owner", "nobody")
    assert unknown_owner.returncode != 0 and "no user with userName 'nobody'" in unknown_owner.stderr
    missing = run(hub_url, "nhi", "show", "nothing")
    assert missing.returncode != 0 and "no non-human identity named 'nothing'" in missing.stderr
    for result in (unknown_kind, unknown_owner, missing):
        assert "Traceback" not in result.stderr
    assert listed(hub_url) == []


def test_owned_hub_tokens_are_nhis_and_rotate_with_an_overlap(hub_url: str) -> None:
    seed(hub_url, "alice")
    first = ok(hub_url, "token", "create", "--name", "alice-ci", "--owner", "alice").strip().splitlines()[-1]
    [token] = listed(hub_url)
    assert {k: token[k] for k in ("name", "kind", "owners", "active")} == {
        "name": "alice-ci",
        "kind": "token",
        "owners": ["alice"],
        "active": True,
    }
    assert "scimward_" not in json.dumps(token)  # never the secret
    rotated = run(hub_url, "nhi", "rotate", "alice-ci", "--overlap", "1h")
    assert rotated.returncode == 0, rotated.stderr
    second = rotated.stdout.strip().splitlines()[-1]
    assert second.startswith("scimward_") and second != first

    async def verify() -> tuple[Any, Any]:
        database = Database(hub_url)
        try:
            tokens = TokenStore(database)
            return await tokens.verify(first), await tokens.verify(second)
        finally:
            await database.dispose()

    old, new = asyncio.run(verify())
    assert old is not None and old.expires is not None  # still works, for the overlap
    assert new is not None and new.owner_id == old.owner_id and new.rotated_from == "alice-ci"
    assert sorted(v["name"] for v in listed(hub_url, "--kind", "token")) == ["alice-ci", new.name]
