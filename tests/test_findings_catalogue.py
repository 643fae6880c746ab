"""One findings catalogue (issue 16, item 1): every kind described with framework ids; governance
findings that belong to no target, opened and closed as what they observe changes; accepted risk
that stays live and opens again once its acceptance runs out. Both dialects."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from scimward.governance import catalogue
from scimward.store.database import Database
from scimward.store.governance import (
    LIVE,
    PUSH_KINDS,
    FindingStateError,
    FindingStore,
    Observation,
    observe,
)
from scimward.store.tables import findings, targets
from scimward.store.timeutil import utcnow
from scimward.sync.drift import Kind

pytestmark = pytest.mark.anyio

HUB_KINDS = ["change_denied", "change_pending"]


def _seen(name: str, subject: str, **fields: object) -> Observation:
    return catalogue.observation(name, subject, **fields)


async def _live(db: Database) -> list[tuple[str, str, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(findings.c.kind, findings.c.subject, findings.c.status)
            .where(findings.c.status.in_(LIVE))
            .order_by(findings.c.kind, findings.c.subject)
        )
        return [(r.kind, r.subject, r.status) for r in rows]


def test_every_kind_the_hub_opens_is_catalogued_with_framework_ids() -> None:
    opened = {k.value for k in Kind} | set(PUSH_KINDS) | {"breaker_open"}
    assert opened <= set(catalogue.KINDS), opened - set(catalogue.KINDS)
    for described in catalogue.KINDS.values():
        assert described.severity in catalogue.SEVERITIES, described.kind
        assert described.frameworks, f"{described.kind} has no framework id"
        for framework_id in described.frameworks:
            assert catalogue.parse_framework(framework_id) == framework_id


def test_framework_ids_select_their_kinds() -> None:
    assert "extra_membership" in catalogue.kinds_for("csf:PR.AA-05")
    assert "missing_account" not in catalogue.kinds_for("csf:PR.AA-05")
    assert set(catalogue.kinds_for("csf")) == {
        k for k, d in catalogue.KINDS.items() if any(f.startswith("csf:") for f in d.frameworks)
    }
    assert catalogue.parse_framework("CSF:pr.aa-05") == "csf:PR.AA-05"
    with pytest.raises(catalogue.UnknownKind, match="owasp-nhi:NHI1"):
        catalogue.parse_framework("iso27001")
    with pytest.raises(catalogue.UnknownKind, match="no finding kind"):
        catalogue.observation("made_up", "x")


async def test_observe_opens_keeps_and_resolves_what_a_pass_sees(hub_url: str) -> None:
    db = Database(hub_url)
    async with db.write() as conn:
        first = await observe(conn, HUB_KINDS, [_seen("change_denied", "a"), _seen("change_pending", "b")])
    assert (first.opened, first.kept, first.resolved) == (2, 0, 0)
    async with db.read() as conn:
        opened_at = (await conn.execute(sa.select(findings.c.first_seen).where(findings.c.subject == "a"))).scalar()
    async with db.write() as conn:
        second = await observe(
            conn, HUB_KINDS, [_seen("change_denied", "a", owner="alice", detail="again"), _seen("change_denied", "c")]
        )
    assert (second.opened, second.kept, second.resolved) == (1, 1, 1)
    assert await _live(db) == [("change_denied", "a", "open"), ("change_denied", "c", "open")]
    [kept] = [f for f in await FindingStore(db).list(kinds=HUB_KINDS) if f.subject == "a"]
    assert kept.target is None and kept.owner == "alice" and kept.detail == "again"
    assert kept.first_seen == opened_at
    # The same key seen again after it was resolved is a new finding; the old row stays history.
    async with db.write() as conn:
        await observe(conn, HUB_KINDS, [_seen("change_pending", "b")])
    store = FindingStore(db)
    history = [f for f in await store.list(kinds=HUB_KINDS, include_resolved=True) if f.subject == "b"]
    assert sorted(f.status for f in history) == ["open", "resolved"]
    await db.dispose()


async def test_a_pass_only_touches_its_own_kinds(hub_url: str) -> None:
    db = Database(hub_url)
    async with db.write() as conn:
        await observe(conn, ["change_denied"], [_seen("change_denied", "a")])
        await observe(conn, ["change_pending"], [_seen("change_pending", "a")])
        await observe(conn, ["change_pending"], [])
    assert await _live(db) == [("change_denied", "a", "open")]
    with pytest.raises(ValueError, match="change_pending"):
        async with db.write() as conn:
            await observe(conn, ["change_denied"], [_seen("change_pending", "z")])
    await db.dispose()


async def test_an_accepted_risk_stays_live_and_opens_again_when_it_runs_out(hub_url: str) -> None:
    db = Database(hub_url)
    async with db.write() as conn:
        await observe(conn, HUB_KINDS, [_seen("change_denied", "a")])
    store = FindingStore(db)
    [found] = await store.list(kinds=HUB_KINDS)
    with pytest.raises(FindingStateError, match="reason"):
        await store.accept(found.id, until=utcnow() + timedelta(days=30), reason=" ", actor="bob")
    with pytest.raises(FindingStateError, match="future"):
        await store.accept(found.id, until=utcnow() - timedelta(days=1), reason="known", actor="bob")
    accepted = await store.accept(found.id, until=utcnow() + timedelta(days=30), reason="vendor fix due", actor="bob")
    assert (accepted.status, accepted.accepted_by, accepted.accepted_reason) == (
        "risk_accepted",
        "bob",
        "vendor fix due",
    )
    # Seen again: still accepted, not a second row.
    async with db.write() as conn:
        kept = await observe(conn, HUB_KINDS, [_seen("change_denied", "a")])
    assert (kept.opened, kept.kept) == (0, 1)
    assert await _live(db) == [("change_denied", "a", "risk_accepted")]
    assert [f.id for f in await store.list(statuses=["risk_accepted"])] == [found.id]
    # The acceptance ran out: open again.
    async with db.write() as conn:
        await conn.execute(
            findings.update().where(findings.c.id == found.id).values(accepted_until=utcnow() - timedelta(seconds=1))
        )
    [reopened] = await store.list(kinds=HUB_KINDS)
    assert reopened.status == "open"
    # Gone: resolved, and a resolved finding's risk cannot be accepted.
    async with db.write() as conn:
        await observe(conn, HUB_KINDS, [])
    with pytest.raises(FindingStateError, match="resolved"):
        await store.accept(found.id, until=utcnow() + timedelta(days=1), reason="late", actor="bob")
    await db.dispose()


async def test_reconcile_closes_its_drift_and_nothing_else_on_the_target(hub_url: str) -> None:
    db = Database(hub_url)
    async with db.write() as conn:
        target_id = (
            await conn.execute(
                targets.insert()
                .values(
                    name="app", base_url="http://127.0.0.1:9/scim/v2", token_encrypted="x", config={}, created=utcnow()
                )
                .returning(targets.c.id)
            )
        ).scalar_one()
    store = FindingStore(db)
    run_started = utcnow()
    drift = Observation(
        kind="orphaned_account", subject="acct-1", severity="high", remote_id="acct-1", data={"id": "x"}
    )
    poisoned = Observation(kind=PUSH_KINDS[0], subject="user-1", severity="high", identity_id="user-1", detail="400")
    await store.record(target_id, run_started - timedelta(minutes=5), [drift, poisoned])
    async with db.write() as conn:
        await observe(conn, ["change_pending"], [_seen("change_pending", "acct-1", target_id=target_id)])
    resolved = await store.resolve_unseen(target_id, run_started, [k.value for k in Kind])
    assert resolved == 1
    assert await _live(db) == [("change_pending", "acct-1", "open"), (PUSH_KINDS[0], "user-1", "open")]
    [pending] = await store.list(kinds=["change_pending"])
    assert pending.target == "app"
    await db.dispose()
