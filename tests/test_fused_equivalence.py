"""The fused one-statement writes on PostgreSQL leave exactly the rows the plain write path leaves.

``store.identity._fused`` is an optimisation of the pipeline's *apply* for allowed changes (DESIGN.md: one
write, three steps). Each operation runs twice, once through a gate that can decide without the
database (the fused path) and once through a gate that never can (the plain, locking path), and the
rows both leave are compared: identity, e-mails, counts, outbox, change row, audit event.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import sqlalchemy as sa

from scimward.policy import PolicyGate, identity_store, policies
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.governance import verify_trail
from scimward.store.identity.identities import IdentityStore
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.tables import (
    audit_events,
    changes,
    effective_states,
    identities,
    identity_counts,
    identity_emails,
    outbox,
)

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.postgres,
    pytest.mark.parametrize("hub_url", ["postgresql"], indirect=True),
]

POLICY = """
rules:
  - name: leavers-are-held
    when: change.op == "deactivate" && change.after.userName.startsWith("held")
    action: hold
    reason: checked
breaker: false
"""


class NeverQuick(PolicyGate):
    """The same gate, except that it always asks for the write's transaction: the plain path."""

    def quick(self, change: Any) -> None:
        return None


class CountingGate(PolicyGate):
    """The gate, counting the changes it decided without the database (each then took the fused path)."""

    quick_decisions = 0

    def quick(self, change: Any) -> Any:
        decision = super().quick(change)
        if decision is not None and decision.action == "allow":
            self.quick_decisions += 1
        return decision


@pytest.fixture
async def stores(hub_url: str) -> AsyncIterator[tuple[Database, IdentityStore, IdentityStore]]:
    """A database of its own (the session's is shared with servers whose workers claim outbox rows)."""
    db = Database(hub_url)
    await policies.apply(db, POLICY, "tests")
    await TargetRepository(db).add(f"t-{uuid.uuid4().hex[:6]}", "https://app.invalid/scim/v2", "x", {})
    fused_gate = CountingGate(db, refresh_seconds=3600)
    fused_store = identity_store(db, fused_gate)
    async with fused_store.direct.transaction() as tx:
        await fused_gate.refresh(tx)  # warm: ``quick`` can decide
    yield db, fused_store, identity_store(db, NeverQuick(db))
    await db.dispose()


def user(name: str) -> dict[str, Any]:
    return normalize(
        {
            "schemas": [USER_SCHEMA],
            "userName": name,
            "title": "Engineer",
            "active": True,
            "emails": [{"value": name, "type": "work", "primary": True}],
        },
        USER_TYPE,
    )


async def rows(db: Database, identity_id: str) -> dict[str, Any]:
    """Everything a write left for one identity, without the values that differ by construction."""
    t, e, o, c, a = identities.c, identity_emails.c, outbox.c, changes.c, audit_events.c
    async with db.read() as conn:
        identity = (
            await conn.execute(
                sa.select(
                    t.resource_type,
                    t.user_name,
                    t.user_name_lower,
                    t.external_id,
                    t.display_name,
                    t.active,
                    t.doc,
                    t.source,
                    t.version,
                    t.password_hash,
                ).where(t.id == identity_id)
            )
        ).one()
        emails = list(
            await conn.execute(
                sa.select(e.position, e.value, e.value_lower, e.type, e.display, e.primary)
                .where(e.identity_id == identity_id)
                .order_by(e.position)
            )
        )
        queued = list(
            await conn.execute(
                sa.select(o.target_id, o.resource_type, o.generation, o.attempts, o.claimed_until, o.last_error).where(
                    o.identity_id == identity_id
                )
            )
        )
        recorded = list(
            await conn.execute(
                sa.select(
                    c.resource_type,
                    c.op,
                    c.status,
                    c.source,
                    c.actor,
                    c.before,
                    c.after,
                    c.changed,
                    c.members_added,
                    c.members_removed,
                    c.decision,
                    c.rules,
                    c.approvals_needed,
                    c.approvals,
                    c.blast_radius,
                    c.held_by_breaker,
                    c.expires,
                    c.note,
                )
                .where(c.identity_id == identity_id)
                .order_by(c.created, c.id)
            )
        )
        overlay = list(
            await conn.execute(sa.select(effective_states.c.doc).where(effective_states.c.identity_id == identity_id))
        )
        events = list(
            await conn.execute(
                sa.select(a.kind, a.actor, a.data)
                .where(a.subject == f"User:{identity_id}")
                .order_by(a.time, a.lane, a.seq)
            )
        )
    doc = dict(identity.doc)
    for key in ("userName", "emails"):
        doc.pop(key, None)
    return {
        "identity": (*identity[:1], identity.active, identity.source, identity.version, identity.password_hash, doc),
        "emails": [(r[0], *tuple(r)[3:]) for r in emails],
        "outbox": [tuple(r) for r in queued],
        "changes": [_without_names(tuple(r)) for r in recorded],
        "overlay": [tuple(r) for r in overlay],
        "audit": [_event(kind, data) for kind, _actor, data in events],
    }


def _event(kind: str, data: str) -> tuple[Any, ...]:
    """An audit event's kind, op and status (its change id differs by construction)."""
    payload = orjson.loads(data)
    return kind, payload["op"], payload["status"]


def _without_names(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A change row with the user names (unique per run) taken out of before and after."""

    def strip(doc: Any) -> Any:
        return {k: v for k, v in doc.items() if k not in ("userName", "emails")} if isinstance(doc, dict) else doc

    return (*row[:5], strip(row[5]), strip(row[6]), *row[7:])


async def count_total(db: Database) -> int:
    async with db.read() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(identity_counts.c.count), 0)).where(
                        identity_counts.c.resource_type == "User"
                    )
                )
            ).scalar_one()
        )


PATCHES = [
    [{"op": "replace", "path": "title", "value": "Manager"}],
    [{"op": "replace", "path": "active", "value": False}],
    [{"op": "add", "path": "displayName", "value": "Someone"}, {"op": "remove", "path": "title"}],
]


@pytest.mark.parametrize("operations", PATCHES)
async def test_create_and_patch_leave_the_same_rows_on_both_paths(
    stores: tuple[Database, IdentityStore, IdentityStore], operations: list[dict[str, Any]]
) -> None:
    db, fused, plain = stores
    results = []
    for store in (fused, plain):
        before = await count_total(db)
        created = await store.create(
            USER_TYPE, user(f"u-{uuid.uuid4().hex[:8]}@example.com"), source="scim:idp", actor="idp"
        )
        await store.patch(
            USER_TYPE,
            created.id,
            {"schemas": [PATCH_OP_SCHEMA], "Operations": operations},
            source="scim:idp",
            actor="idp",
        )
        assert await count_total(db) == before + 1
        results.append(await rows(db, created.id))
    assert results[0] == results[1]
    assert isinstance(fused.gate, CountingGate) and fused.gate.quick_decisions == 2  # the create and the PATCH
    assert [c[2] for c in results[0]["changes"]] == ["applied", "applied"]
    assert [e[2] for e in results[0]["audit"]] == ["applied", "applied"]
    assert (await verify_trail(db)).broken is None  # the fused statement chained its events too


async def test_a_diverged_identity_is_never_written_by_the_fused_statement(
    stores: tuple[Database, IdentityStore, IdentityStore],
) -> None:
    """The fused PATCH is conditional on the identity having no effective state of its own: the gate's
    quick answer (allow a new title) is taken again under the lock, against the effective state."""
    db, fused, _plain = stores
    created = await fused.create(USER_TYPE, user(f"held-{uuid.uuid4().hex[:8]}@example.com"))
    await fused.patch(
        USER_TYPE,
        created.id,
        {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]},
        actor="idp",
    )
    await fused.patch(
        USER_TYPE,
        created.id,
        {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": "Manager"}]},
        actor="idp",
    )
    found = await rows(db, created.id)
    assert [c[1:3] for c in found["changes"]] == [
        ("create", "applied"),
        ("deactivate", "superseded"),
        ("deactivate", "pending"),
    ]
    assert found["overlay"][0][0]["active"] is True  # still active where it counts: downstream


async def test_a_stale_version_makes_the_fused_patch_write_nothing(
    stores: tuple[Database, IdentityStore, IdentityStore],
) -> None:
    """The fused conflict fallback, reached on purpose: another writer moved the version first."""
    from scimward.store.governance import audit_records
    from scimward.store.governance.changes import Change, Decision, change_params
    from scimward.store.identity import _fused as fused_statements
    from scimward.store.identity.identity_rows import columns
    from scimward.store.ids import new_id
    from scimward.store.timeutil import utcnow

    db, store, _plain = stores
    created = await store.create(USER_TYPE, user(f"s-{uuid.uuid4().hex[:8]}@example.com"))
    doc = {**created.doc, "title": "Stale"}
    now = utcnow()
    change = Change(new_id(), "User", created.id, "update", created.doc, doc, ["title"], None, None, now)
    answer = await store.direct.fetch(
        fused_statements.update_row(),
        {
            "w_id": created.id,
            "w_version": created.version + 7,
            "v_last_modified": now,
            "v_version": 9,
            "v_source": None,
            **{f"v_{k}": v for k, v in columns(store.direct, USER_TYPE, doc).items()},
            "now": now,
            "now_due": now,
            **fused_statements.change_values(
                change_params(store.direct, change, Decision("allow"), "applied"),
                audit_records.change(change, Decision("allow"), "applied").fused_params(),
            ),
        },
    )
    assert answer[0][0] == 0
    found = await rows(db, created.id)
    assert found["identity"][3] == 1 and len(found["changes"]) == 1  # untouched, no change row
    assert found["audit"] == [("change", "create", "applied")]  # and no audit event


async def test_a_fused_write_takes_the_audit_lane_last(stores: tuple[Database, IdentityStore, IdentityStore]) -> None:
    """The fused POST locks its count row before any audit lane, as the plain path does (it appends
    last): held on its count row, it holds no lane, so a writer holding the count rows can take every
    lane without a deadlock. Before, PostgreSQL ran the lane's CTE first (3 POSTs in 5,000 failed)."""
    import asyncio

    import psycopg
    from sqlalchemy.engine import make_url

    db, fused, _plain = stores
    raw = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with await psycopg.AsyncConnection.connect(raw, autocommit=True) as setup:
        for shard in range(16):
            await setup.execute(
                "INSERT INTO identity_counts (resource_type, shard, count, removed) "
                "VALUES ('User', %s, 0, 0) ON CONFLICT DO NOTHING",
                (shard,),
            )
    async with (
        await psycopg.AsyncConnection.connect(raw) as holder,
        await psycopg.AsyncConnection.connect(raw, autocommit=True) as watcher,
    ):
        await holder.execute("SELECT 1 FROM identity_counts WHERE resource_type = 'User' FOR UPDATE")
        writing = asyncio.create_task(fused.create(USER_TYPE, user(f"l-{uuid.uuid4().hex[:8]}@example.com")))
        for _ in range(400):  # until the fused statement waits on a count row (bounded: 20 s)
            cursor = await watcher.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock' AND query LIKE %s",
                ("%INSERT INTO identities%",),
            )
            if (await cursor.fetchone() or (0,))[0]:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the fused POST never waited on the count rows")
        await holder.execute("SELECT 1 FROM audit_head FOR UPDATE")  # every lane: free, or a deadlock
        await holder.commit()
        created = await writing
    assert isinstance(fused.gate, CountingGate) and fused.gate.quick_decisions == 1
    assert (await verify_trail(db)).broken is None and created.id


async def _waiting_on_a_lock(db: Database) -> bool:
    async with db.read() as conn:
        return bool(
            (
                await conn.execute(
                    sa.text(
                        "select count(*) from pg_stat_activity"
                        " where datname = current_database() and wait_event_type = 'Lock'"
                    )
                )
            ).scalar_one()
        )


async def test_a_write_that_lands_first_sends_the_fused_patch_down_the_locking_path(
    stores: tuple[Database, IdentityStore, IdentityStore],
) -> None:
    """The fused conflict fallback, reached deterministically through the writer: another transaction
    changes the identity after the fused path has read it and before its statement runs. The statement
    waits on that transaction's row lock, finds the version moved when it commits, and writes nothing;
    the PATCH is then made under the lock, on top of the other write, which it does not undo."""
    db, store, _plain = stores
    assert isinstance(store.gate, CountingGate)
    created = await store.create(USER_TYPE, user(f"c-{uuid.uuid4().hex[:8]}@example.com"))
    quick_before = store.gate.quick_decisions
    async with db.engine.connect() as other:
        await other.begin()
        await other.execute(
            sa.text(
                'update identities set version = version + 1, doc = doc || \'{"title": "Other"}\'::jsonb where id = :id'
            ),
            {"id": created.id},
        )
        patch = asyncio.create_task(
            store.patch(
                USER_TYPE,
                created.id,
                {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [{"op": "replace", "path": "displayName", "value": "Patched"}],
                },
                source="scim:idp",
                actor="idp",
            )
        )
        for _ in range(500):  # the fused statement blocks on the row lock: proven, not waited out
            if await _waiting_on_a_lock(db) or patch.done():
                break
            await asyncio.sleep(0.01)
        assert not patch.done() and await _waiting_on_a_lock(db), "the fused PATCH did not wait on the row"
        await other.commit()
    patched = await patch
    assert store.gate.quick_decisions == quick_before + 1  # the fused path was taken first
    assert patched.version == created.version + 2
    assert patched.doc["title"] == "Other" and patched.doc["displayName"] == "Patched"
    found = await rows(db, created.id)
    assert found["identity"][3] == created.version + 2
    assert [c[1:3] for c in found["changes"]] == [("create", "applied"), ("update", "applied")]


async def test_patch_many_leaves_the_rows_single_patches_leave(
    stores: tuple[Database, IdentityStore, IdentityStore],
) -> None:
    """``IdentityStore.patch_many`` (the leaver cascade's writes): the changes go in one transaction by
    the batched apply (``store.identity._batched``), those the gate allows at once decided without the
    database, a held one inside the transaction, one gone refused; every identity ends with exactly the
    rows a PATCH of its own leaves, and the audit chain holds."""
    db, fused, plain = stores
    body = {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "active", "value": False}]}
    assert isinstance(fused.gate, CountingGate)
    results = []
    for store, many in ((fused, True), (plain, False)):
        made = [
            (
                await store.create(
                    USER_TYPE, user(f"{prefix}-{uuid.uuid4().hex[:8]}@example.com"), source="scim:idp", actor="idp"
                )
            ).id
            for prefix in ("a", "b", "held", "c")
        ]
        quick_before = fused.gate.quick_decisions
        if many:
            refused = await store.patch_many(
                USER_TYPE, [(i, body) for i in made] + [("no-such-id", body)], source="nhi:cascade"
            )
            assert list(refused) == ["no-such-id"] and refused["no-such-id"].status == 404
            assert fused.gate.quick_decisions - quick_before == 3  # the held one was not decided at once
        else:
            for identity_id in made:
                await store.patch(USER_TYPE, identity_id, body, source="nhi:cascade")
        found = [await rows(db, identity_id) for identity_id in made]
        for each in found:  # what differs by construction: a held change's expiry time, the names
            each["changes"] = [(*c[:16], c[16] is not None, *c[17:]) for c in each["changes"]]
            each["overlay"] = [
                {k: v for k, v in doc.items() if k not in ("userName", "emails")} for (doc,) in each["overlay"]
            ]
        results.append(found)
    assert results[0] == results[1]
    assert [[c[2] for c in found["changes"]] for found in results[0]] == [["applied", "applied"]] * 2 + [
        ["applied", "pending"],
        ["applied", "applied"],
    ]
    assert (await verify_trail(db)).broken is None
