"""The audit trail wired into every write (issue 16, item 5), and ``scimward audit verify|export|head``.

Each write records its audit event in its own transaction; ``audit verify`` run as a user runs it
finds and names an event altered, removed or inserted directly in the database, on both dialects.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from scimward.policy import Approvals, identity_store, policies
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store import Direct
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.governance import PolicyDenied, trail_head, verify_trail
from scimward.store.provisioning import TargetRepository
from scimward.store.tables import audit_events, audit_head, changes
from scimward.store.timeutil import utcnow
from tests import forkserver

pytestmark = pytest.mark.anyio

POLICY = """
rules:
  - name: no-evil
    when: change.after.userName.endsWith("@evil.test")
    action: deny
    reason: not ours
  - name: leavers-held
    when: change.op == "deactivate"
    action: hold
    reason: checked by a person
breaker: false
"""


def user(name: str) -> dict[str, Any]:
    return normalize({"schemas": [USER_SCHEMA], "userName": name, "emails": [{"value": name}]}, USER_TYPE)


def scimward(*args: str) -> subprocess.CompletedProcess[str]:
    return forkserver.run(args, timeout=120, env={**os.environ, "SCIMWARD_ACTOR": "auditor"})


@pytest.fixture
async def db(hub_url: str) -> AsyncIterator[Database]:
    database = Database(hub_url)
    yield database
    await database.dispose()


async def events(db: Database) -> list[tuple[str, str, str, dict[str, Any]]]:
    e = audit_events.c
    async with db.read() as conn:
        rows = await conn.execute(sa.select(e.kind, e.actor, e.subject, e.data).order_by(e.time, e.lane, e.seq))
        return [(r[0], r[1], r[2], orjson.loads(r[3])) for r in rows]


async def test_every_change_and_decision_is_an_audit_event_of_its_own_write(db: Database) -> None:
    await policies.apply(db, POLICY, "alice")
    store = identity_store(db)
    ada = await store.create(USER_TYPE, user("ada@example.com"), source="scim:okta", actor="okta")
    await store.patch(
        USER_TYPE,
        ada.id,
        {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": "Engineer"}]},
        source="scim:okta",
        actor="okta",
    )
    with pytest.raises(PolicyDenied):
        await store.create(USER_TYPE, user("eve@evil.test"), source="scim:okta", actor="okta")
    await store.patch(
        USER_TYPE,
        ada.id,
        {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]},
        source="scim:okta",
        actor="okta",
    )
    approvals = Approvals(db, Direct(db))
    held = await approvals.changes(status="pending")
    await approvals.approve([held[0].id], "bob", "leaver confirmed")
    await store.delete(USER_TYPE, ada.id, source="scim:okta", actor="okta")

    found = await events(db)
    config = [(kind, actor, subject, data["action"]) for kind, actor, subject, data in found if kind == "config"]
    assert config == [("config", "alice", "policy", "apply")]
    recorded = [
        (kind, subject, data.get("op"), data.get("status"), data.get("decision"))
        for kind, _actor, subject, data in found
        if kind in ("change", "approval")
    ]
    subject = f"User:{ada.id}"
    assert recorded[:2] == [
        ("change", subject, "create", "applied", "allow"),
        ("change", subject, "update", "applied", "allow"),
    ]
    assert recorded[2][2:] == ("create", "denied", "deny")
    assert recorded[3:] == [
        ("change", subject, "deactivate", "pending", "hold"),
        ("approval", subject, None, "approved", "approve"),
        ("change", subject, "delete", "applied", "allow"),
    ]
    approval = next(data for kind, _a, _s, data in found if kind == "approval")
    assert approval["change"] == held[0].id and approval["note"] == "leaver confirmed"
    assert next(actor for kind, actor, _s, _d in found if kind == "approval") == "bob"
    assert (await verify_trail(db)).broken is None


async def test_expired_changes_are_one_event_naming_them(db: Database) -> None:
    await policies.apply(db, POLICY, "alice")
    store = identity_store(db)
    ada = await store.create(USER_TYPE, user("ada@example.com"))
    await store.patch(
        USER_TYPE,
        ada.id,
        {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]},
        actor="okta",
    )
    async with db.write() as conn:
        await conn.execute(
            changes.update().where(changes.c.status == "pending").values(expires=utcnow() - timedelta(minutes=1))
        )
    held = [c.id for c in await Approvals(db, Direct(db)).changes()]  # reading expires them
    expired = [data for kind, _a, _s, data in await events(db) if kind == "approval"]
    assert expired == [{"decision": "expire", "status": "expired", "changes": held[:1]}]


async def test_tokens_issued_revoked_and_refused_are_audited_without_the_token(db: Database) -> None:
    tokens = TokenStore(db)
    secret = await tokens.create("okta", created_by="alice", scopes="scim")
    assert await tokens.verify(secret) is not None
    await tokens.refused(secret, "/admin/v1/targets", "scope")
    await tokens.revoke("okta", by="bob")
    await tokens.refused(secret, "/scim/v2/Users")
    await tokens.refused("scimward_not-a-token", "/scim/v2/Users")
    found = await events(db)
    assert [(k, a, s) for k, a, s, _ in found] == [
        ("token_issued", "alice", "token:okta"),
        ("token_refused", "okta", "token:okta"),
        ("token_revoked", "bob", "token:okta"),
        ("token_refused", "okta", "token:okta"),
        ("token_refused", found[-1][1], found[-1][2]),
    ]
    assert [d.get("reason") for k, _a, _s, d in found if k == "token_refused"] == ["scope", "revoked", "unknown"]
    assert found[-1][2].startswith("token:unknown:")
    assert secret not in json.dumps(found) and "not-a-token" not in json.dumps(found)


async def test_target_configuration_changes_are_audited_without_their_credential(db: Database) -> None:
    repository = TargetRepository(db)
    await repository.add("crm", "https://crm.invalid/scim/v2", "sealed-token", {"scope": 'title eq "x"'}, actor="alice")
    await repository.update("crm", actor="bob", token_encrypted="sealed-other", config={"scope": None})
    await repository.remove("crm", actor="carol")
    found = [(k, a, s, d) for k, a, s, d in await events(db) if k == "config"]
    assert [(a, s, d["action"]) for _k, a, s, d in found] == [
        ("alice", "target:crm", "add"),
        ("bob", "target:crm", "update"),
        ("carol", "target:crm", "remove"),
    ]
    assert found[1][3]["credential"] is True and found[1][3]["config"] == ["scope"]
    assert "sealed" not in json.dumps(found)


# -- the command line -------------------------------------------------------------------------------


async def _trail(db: Database) -> None:
    store = identity_store(db)
    for n in range(8):
        await store.create(USER_TYPE, user(f"u{n}@example.com"), source="scim:okta", actor="okta")


def _cli_verify(url: str) -> subprocess.CompletedProcess[str]:
    return scimward("audit", "verify", "--database-url", url)


async def _some_event(db: Database) -> tuple[int, int]:
    e = audit_events.c
    async with db.read() as conn:
        row = (await conn.execute(sa.select(e.lane, e.seq).order_by(e.lane, e.seq).offset(3).limit(1))).one()
    return int(row[0]), int(row[1])


async def test_an_intact_trail_verifies_and_its_head_is_printed(db: Database, hub_url: str) -> None:
    await _trail(db)
    result = await asyncio.to_thread(_cli_verify, hub_url)
    assert result.returncode == 0, result.stderr
    head = (await asyncio.to_thread(scimward, "audit", "head", "--database-url", hub_url)).stdout.strip()
    assert len(head) == 64 and head in result.stderr and head == await trail_head(db)
    pinned = await asyncio.to_thread(scimward, "audit", "verify", "--expect-head", "0" * 64, "--database-url", hub_url)
    assert pinned.returncode == 1 and "not the one expected" in pinned.stderr


async def test_an_edited_row_fails_verify_naming_it(db: Database, hub_url: str) -> None:
    await _trail(db)
    lane, seq = await _some_event(db)
    async with db.write() as conn:
        await conn.execute(
            audit_events.update().where(audit_events.c.lane == lane, audit_events.c.seq == seq).values(actor="mallory")
        )
    result = await asyncio.to_thread(_cli_verify, hub_url)
    assert result.returncode == 1
    assert f"audit event {lane}:{seq} does not match its hash: altered" in result.stderr
    assert "Traceback" not in result.stderr


async def test_a_deleted_row_fails_verify_naming_it(db: Database, hub_url: str) -> None:
    await _trail(db)
    lane, seq = await _some_event(db)
    async with db.write() as conn:
        await conn.execute(audit_events.delete().where(audit_events.c.lane == lane, audit_events.c.seq == seq))
    result = await asyncio.to_thread(_cli_verify, hub_url)
    assert result.returncode == 1
    assert f"audit event {lane}:{seq} is missing: removed" in result.stderr


async def test_an_inserted_row_fails_verify_naming_it(db: Database, hub_url: str) -> None:
    """A forged event chained to the lane's head, with a correct hash, but without moving the head."""
    await _trail(db)
    from scimward.store.chain import chain_hash
    from scimward.store.governance.audit import canonical_data, event_prefix

    h = audit_head.c
    async with db.read() as conn:
        lane, seq, digest = (await conn.execute(sa.select(h.lane, h.seq, h.hash).where(h.seq > 0).limit(1))).one()
    moment = utcnow()
    data = canonical_data({"change": "forged"})
    forged = chain_hash(lane, seq + 1, digest, event_prefix(moment, "change", "mallory", "User:x"), data)
    async with db.write() as conn:
        await conn.execute(
            audit_events.insert().values(
                lane=lane,
                seq=seq + 1,
                time=moment,
                kind="change",
                actor="mallory",
                subject="User:x",
                data=data,
                prev_hash=digest,
                hash=forged,
            )
        )
    result = await asyncio.to_thread(_cli_verify, hub_url)
    assert result.returncode == 1
    assert f"audit event {lane}:{seq + 1} lies beyond the lane's head: inserted" in result.stderr


async def test_export_writes_json_lines_between_since_and_until(db: Database, hub_url: str) -> None:
    await _trail(db)
    everything = await asyncio.to_thread(scimward, "audit", "export", "--database-url", hub_url)
    assert everything.returncode == 0, everything.stderr
    lines = [json.loads(line) for line in everything.stdout.splitlines()]
    assert len(lines) == 8 and all(line["kind"] == "change" for line in lines)
    assert [line["time"] for line in lines] == sorted(line["time"] for line in lines)
    middle = lines[4]["time"]
    later = await asyncio.to_thread(scimward, "audit", "export", "--since", middle, "--database-url", hub_url)
    earlier = await asyncio.to_thread(scimward, "audit", "export", "--until", middle, "--database-url", hub_url)
    assert len(later.stdout.splitlines()) + len(earlier.stdout.splitlines()) == 8
    assert json.loads(later.stdout.splitlines()[0])["time"] == middle
    bad = await asyncio.to_thread(scimward, "audit", "export", "--since", "yesterday", "--database-url", hub_url)
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr
