"""The write pipeline: prepare, decide, apply, in one transaction (DESIGN.md: one write, three steps).

1. **prepare**: load the identity under its lock with its effective state, apply the POST, PUT, PATCH
   or DELETE to its source state and validate; the result is a ``Change`` (before: the effective
   state; after: the state proposed).
2. **decide**: the ``Gate`` returns allow, hold or deny, inside the transaction (no network I/O).
3. **apply**: a denied change writes nothing (its change row and audit event are stored on their own,
   after the rollback); otherwise the source state is stored with the change row and its audit event
   (``store.governance.audit_records.change``, appended last: the audit lane stays locked until the commit), and
   only an allowed change moves the effective state and writes the outbox. A held one leaves the
   effective state where it was, in ``effective_states`` and ``membership_holds``.

On PostgreSQL the most common allowed changes take a fused one-statement form (``store.identity._fused``), an
optimisation of *apply* that a test proves writes the rows this path writes. Many edits of one type at once
(an HR import's rows, the NHI leaver cascade's disables) go by ``update_many``: each prepared and decided
as here, the writes of a batch of them run by statement in one transaction (``store.identity._batched``),
which ``tests/test_hr_batched_equivalence.py`` proves writes the rows this path writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import structlog

from scimward.errors import ScimwardError
from scimward.scim.errors import InvalidValue, NotFound, ScimError
from scimward.scim.patch import MemberOp, PatchResult, apply_patch
from scimward.scim.resource import check_immutable, check_required
from scimward.scim.resource_types import MEMBER_TYPES
from scimward.scim.schema import ResourceType
from scimward.store._direct import Direct, Tx, decode_json
from scimward.store.filter_sql import member_condition
from scimward.store.governance import audit_records, changes
from scimward.store.governance.changes import Change, Decision, Gate, PolicyDenied
from scimward.store.identity import _batched, counts, reads, writes
from scimward.store.identity import _fused as fused
from scimward.store.identity.identity_rows import (
    StoredIdentity,
    check_if_match,
    columns,
    dedupe,
    email_rows,
    stored_row,
)
from scimward.store.identity.passwords import take_password_hash
from scimward.store.ids import created_ms, new_id
from scimward.store.provisioning import outbox
from scimward.store.tables import memberships
from scimward.store.timeutil import utcnow

log = structlog.get_logger("scimward.store.identity.writer")


def _patched(rt: ResourceType, current: StoredIdentity, body: Any, if_match: str | None) -> PatchResult | None:
    """A PATCH of ``current``, checked: the version is the one asked for, the result is valid and
    changes nothing immutable. None when it changes nothing."""
    check_if_match(if_match, current.version)
    result = apply_patch(current.doc, body, rt)
    if not result.changed:
        return None
    check_required(result.doc, rt)
    check_immutable(current.doc, result.doc, rt)
    return result


#: Operations from which a PATCH is computed in a worker thread: up to 50,000 value steps of CPU
#: (``scim.limits.MAX_PATCH_VALUE_VISITS``) would otherwise hold up every request of the process.
THREADED_PATCH_OPERATIONS = 8


def _heavy(body: Any) -> bool:
    operations = body.get("Operations") if isinstance(body, dict) else None
    return isinstance(operations, list) and len(operations) >= THREADED_PATCH_OPERATIONS


class _Prepared:
    """A heavy PATCH computed before its transaction, against one version of the identity: reused in
    the transaction when that version is still the current one, so the write slot (SQLite) or the
    row lock (PostgreSQL) is not held while it computes."""

    __slots__ = ("error", "result", "version")

    def __init__(self, version: int, result: PatchResult | None, error: ScimwardError | None) -> None:
        self.version, self.result, self.error = version, result, error

    def outcome(self) -> PatchResult | None:
        if self.error is not None:
            raise self.error
        return self.result


async def _patched_off_loop(
    rt: ResourceType, current: StoredIdentity, body: Any, if_match: str | None, prepared: _Prepared | None = None
) -> PatchResult | None:
    """``_patched``: reused from ``prepared`` when it was computed on this version; in a worker thread
    when the PATCH is heavy; else here."""
    if prepared is not None and prepared.version == current.version:
        return prepared.outcome()
    if _heavy(body):
        return await asyncio.to_thread(_patched, rt, current, body, if_match)
    return _patched(rt, current, body, if_match)


#: An edit of one identity in a batch (``Writer.update_many``): from its source state and its effective
#: state (None: a held create, not effective yet), the next source state, or None when it changes nothing.
#: It raises a ``ScimError`` to refuse the change (nothing of it is written).
Edit = Callable[[StoredIdentity, dict[str, Any] | None], dict[str, Any] | None]

#: Changes written by one transaction of ``Writer.update_many`` at most.
BATCH_CHANGES = 500


def _patch_edit(rt: ResourceType, body: Any) -> Edit:
    """A PATCH as an ``Edit`` of the identity's source state, as ``update`` applies it."""

    def edit(current: StoredIdentity, effective: dict[str, Any] | None) -> dict[str, Any] | None:
        result = _patched(rt, current, body, None)
        return None if result is None else dict(result.doc)

    return edit


def _proposed(
    rt: ResourceType,
    identity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
    source: str | None,
    actor: str | None,
    at: datetime,
) -> Change:
    """The change that moves an identity's effective state ``before`` (None: it has none yet) to ``after``."""
    op = changes.op_of(before, after) if before is not None else "create"
    return Change(
        new_id(), rt.name, identity_id, op, before, after, changes.changed_paths(before, after), source, actor, at
    )


class _Loaded:
    """An identity read for a write: its source state and, if it differs, its effective state."""

    __slots__ = ("current", "effective", "overlaid")

    def __init__(self, current: StoredIdentity, overlaid: bool, effective: dict[str, Any] | None) -> None:
        self.current = current
        self.overlaid = overlaid
        self.effective = effective if overlaid else current.doc


class Writer:
    """Every identity write, through the gate."""

    def __init__(self, direct: Direct, gate: Gate, on_change: Callable[[], None]) -> None:
        self.direct = direct
        self.gate = gate
        self.dialect = direct.db.dialect
        self._changed = on_change

    # -- the three write kinds ------------------------------------------------------------------

    async def create(
        self, rt: ResourceType, doc: dict[str, Any], source: str | None, actor: str | None
    ) -> StoredIdentity:
        doc = dict(doc)
        members = dedupe(doc.pop("members", None) or [])
        password_hash = await take_password_hash(doc)
        identity_id = new_id()
        now = datetime.fromtimestamp(created_ms(identity_id) / 1000, UTC).replace(tzinfo=None)
        change = Change(
            new_id(),
            rt.name,
            identity_id,
            "create",
            None,
            doc,
            changes.changed_paths(None, doc),
            source,
            actor,
            now,
            members_added=[m["value"] for m in members],
        )
        if self.direct.postgres and not members:
            decision = self.gate.quick(change)
            if decision is not None and decision.action == "deny":
                await self._denied(change, decision)
            if decision is not None and decision.action == "allow":
                emails = [{k: v for k, v in row.items() if k != "identity_id"} for row in email_rows(identity_id, doc)]
                await self.direct.fetch(
                    fused.insert_row(),
                    {
                        "emails": self.direct.json(emails),
                        "id": identity_id,
                        "created": now,
                        "last_modified": now,
                        "version": 1,
                        "source": source,
                        "password_hash": password_hash,
                        **columns(self.direct, rt, doc),
                        **counts.params(rt.name, 1),
                        "now": now,
                        "now_due": now,
                        **fused.change_values(
                            changes.change_params(self.direct, change, decision, "applied"),
                            audit_records.change(change, decision, "applied").fused_params(),
                        ),
                    },
                )
                self._changed()
                return StoredIdentity(
                    identity_id,
                    rt.name,
                    doc,
                    now,
                    now,
                    1,
                    groups=[] if rt.name == "User" else None,
                    members=[] if rt.name == "Group" else None,
                )
        try:
            async with self.direct.transaction() as tx:
                decision = await self.gate.decide(tx, change)
                if decision.action == "deny":
                    raise PolicyDenied(decision)
                await tx.run(
                    writes.INSERT_IDENTITY,
                    {
                        "id": identity_id,
                        "created": tx.time(now),
                        "last_modified": tx.time(now),
                        "version": 1,
                        "source": source,
                        "password_hash": password_hash,
                        **columns(tx, rt, doc),
                    },
                )
                await tx.run(writes.INSERT_EMAIL, email_rows(identity_id, doc))
                added = await self._add_members(tx, identity_id, members) if members else []
                await counts.adjust(tx, self.dialect, rt.name, 1)
                await self._settle(tx, rt, change, decision)
                await audit_records.change(change, decision, _status(decision)).append(tx)
        except PolicyDenied as denied:
            await self._denied(change, denied.decision)
        self._changed()
        stored = StoredIdentity(identity_id, rt.name, doc, now, now, 1)
        if rt.name == "Group":
            stored.members = [{"value": i, "type": t} for i, t in added]
        elif rt.name == "User":
            stored.groups = []
        return stored

    async def update(
        self,
        rt: ResourceType,
        identity_id: str,
        *,
        doc: dict[str, Any] | None = None,
        body: Any = None,
        if_match: str | None,
        source: str | None,
        actor: str | None,
    ) -> StoredIdentity | None:
        """PUT (``doc``) or PATCH (``body``). None when the PATCH changed nothing (the caller reads it)."""
        if doc is not None:
            doc = dict(doc)
            members = doc.pop("members", None) if rt.name == "Group" else None
            put_ops: list[MemberOp] | None = (
                [MemberOp("clear"), *([MemberOp("add", tuple(members))] if members else [])]
                if rt.name == "Group"
                else []
            )
        prepared: _Prepared | None = None
        if doc is None and self.direct.postgres:
            fast, prepared = await self._patch_row_only(rt, identity_id, body, if_match, source, actor)
            if fast is not None:
                return fast if fast.version else None
        elif doc is None and _heavy(body):
            prepared = await self._prepare(rt, identity_id, body, if_match)
        try:
            async with self.direct.transaction() as tx:
                loaded = await self._load(tx, rt, identity_id)
                current = loaded.current
                if doc is not None:
                    check_if_match(if_match, current.version)
                    check_immutable(current.doc, doc, rt)
                    new_doc, member_ops = doc, put_ops or []
                else:
                    result = await _patched_off_loop(rt, current, body, if_match, prepared)
                    if result is None:
                        return None
                    new_doc, member_ops = dict(result.doc), list(result.member_ops)
                password_hash = await take_password_hash(new_doc)
                change = _proposed(rt, identity_id, loaded.effective, new_doc, source, actor, utcnow())
                holds, had_holds = (
                    await self._apply_member_ops(tx, identity_id, member_ops, change)
                    if rt.name == "Group"
                    else (None, False)
                )
                # A change of an identity that diverges is decided even when it proposes nothing new:
                # it may be the source taking back what was held.
                decision: Decision | None = None
                if change.changed or change.members_added or change.members_removed or loaded.overlaid or had_holds:
                    decision = await self.gate.decide(tx, change)
                    if decision.action == "deny":
                        raise PolicyDenied(decision)
                    await self._settle(tx, rt, change, decision, holds=holds)
                await self._update_row(tx, rt, current, new_doc, source, password_hash)
                if decision is not None:
                    await audit_records.change(change, decision, _status(decision)).append(tx)
        except PolicyDenied as denied:
            await self._denied(change, denied.decision)
        self._changed()
        return StoredIdentity(identity_id, rt.name, new_doc, current.created, utcnow(), current.version + 1)

    async def delete(
        self, rt: ResourceType, identity_id: str, *, if_match: str | None, source: str | None, actor: str | None
    ) -> None:
        try:
            async with self.direct.transaction() as tx:
                loaded = await self._load(tx, rt, identity_id)
                check_if_match(if_match, loaded.current.version)
                change = Change(
                    new_id(),
                    rt.name,
                    identity_id,
                    "delete",
                    loaded.effective,
                    None,
                    changes.changed_paths(loaded.effective, None),
                    source,
                    actor,
                    utcnow(),
                )
                decision = await self.gate.decide(tx, change)
                if decision.action == "deny":
                    raise PolicyDenied(decision)
                if decision.action == "allow":
                    # The groups it leaves change too: their targets must drop the member. Enqueued
                    # first, while the memberships are still there (they go with the identity).
                    await outbox.enqueue_groups_of(tx, self.dialect, identity_id)
                    await tx.run(changes.DELETE_HOLDS_OF_MEMBER, {"member_id": identity_id})
                    await tx.run(changes.DELETE_HOLDS_OF_GROUP, {"group_id": identity_id})
                    if loaded.overlaid:
                        await changes.release_document(tx, identity_id)
                    await changes.record(tx, change, decision, "applied")
                    await outbox.enqueue(tx, self.dialect, rt.name, [identity_id])
                else:
                    await self._hold_delete(tx, rt, change, decision)
                deleted = await tx.rows(writes.DELETE_IDENTITY, {"w_id": identity_id, "resource_type": rt.name})
                if not deleted:
                    raise NotFound(f"{rt.name} {identity_id} not found")
                await counts.adjust(tx, self.dialect, rt.name, -1)
                await audit_records.change(change, decision, _status(decision)).append(tx)
        except PolicyDenied as denied:
            await self._denied(change, denied.decision)
        self._changed()

    # -- prepare --------------------------------------------------------------------------------

    async def _load(self, tx: Tx, rt: ResourceType, identity_id: str) -> _Loaded:
        """Read the identity for a change. From here to commit no other writer can change it: the row
        is locked (``FOR UPDATE`` on PostgreSQL) or the database is (``BEGIN IMMEDIATE`` on SQLite)."""
        rows = await tx.rows(writes.LOAD_FOR_WRITE, {"identity_id": identity_id, "resource_type": rt.name})
        if not rows:
            raise NotFound(f"{rt.name} {identity_id} not found")
        row = rows[0]
        effective = decode_json(row[6]) if row[6] is not None else None
        return _Loaded(stored_row(rt, row, with_groups=False), bool(row[5]), effective)

    async def _prepare(self, rt: ResourceType, identity_id: str, body: Any, if_match: str | None) -> _Prepared | None:
        """A heavy PATCH computed in a worker thread on the identity as it is now, before the
        transaction (``_Prepared``); None when there is no such identity (the transaction says so)."""
        rows = await self.direct.fetch(
            reads.by_id(self.dialect, False), {"identity_id": identity_id, "resource_type": rt.name}
        )
        if not rows:
            return None
        current = stored_row(rt, rows[0], with_groups=False)
        try:
            return _Prepared(current.version, await asyncio.to_thread(_patched, rt, current, body, if_match), None)
        except ScimwardError as error:
            return _Prepared(current.version, None, error)

    async def _patch_row_only(
        self, rt: ResourceType, identity_id: str, body: Any, if_match: str | None, source: str | None, actor: str | None
    ) -> tuple[StoredIdentity | None, _Prepared | None]:
        """The fused one-statement PATCH (``store.identity._fused``) of an identity whose effective state is its
        source state; None when this change needs the locking path, with the PATCH as computed so far
        (``_Prepared``). A no-op answers version 0."""
        rows = await self.direct.fetch(
            reads.by_id(self.dialect, False), {"identity_id": identity_id, "resource_type": rt.name}
        )
        if not rows:
            raise NotFound(f"{rt.name} {identity_id} not found")
        current = stored_row(rt, rows[0], with_groups=False)
        result = await _patched_off_loop(rt, current, body, if_match)
        prepared = _Prepared(current.version, result, None)
        if result is None:
            current.version = 0
            return current, None
        params = self._fused_params(rt, current, result, source, actor)
        if params is None:
            return None, prepared  # held or denied: decided again under the lock, against the effective state
        updated = await self.direct.fetch(fused.update_row(), params)
        if updated[0][0] != 1:
            return None, prepared  # another writer came first, or the identity has an effective state of its own
        self._changed()
        return StoredIdentity(
            identity_id, rt.name, result.doc, current.created, params["now"], current.version + 1
        ), None

    def _fused_params(
        self, rt: ResourceType, current: StoredIdentity, result: PatchResult, source: str | None, actor: str | None
    ) -> dict[str, Any] | None:
        """The fused PATCH's parameters, when the change touches only the identity row and the gate
        allows it without the database (``Gate.quick``); else None (the locking path decides it)."""
        if result.member_ops or "password" in result.doc or result.doc.get("emails") != current.doc.get("emails"):
            return None
        now = utcnow()
        change = _proposed(rt, current.id, current.doc, result.doc, source, actor, now)
        decision = self.gate.quick(change)
        if decision is None or decision.action != "allow":
            return None
        return {
            "w_id": current.id,
            "w_version": current.version,
            "v_last_modified": now,
            "v_version": current.version + 1,
            "v_source": source,
            **{f"v_{k}": v for k, v in columns(self.direct, rt, result.doc).items()},
            "now": now,
            "now_due": now,
            **fused.change_values(
                changes.change_params(self.direct, change, decision, "applied"),
                audit_records.change(change, decision, "applied").fused_params(),
            ),
        }

    async def patch_many(
        self, rt: ResourceType, items: Sequence[tuple[str, Any]], *, source: str | None, actor: str | None
    ) -> dict[str, ScimError]:
        """Several PATCHes of identities of one type, each its own change through the gate, their writes
        batched (``update_many``; Groups, whose PATCHes touch memberships, go one by one through
        ``update``); answers those refused (denied, gone, a bad PATCH), by id."""
        if rt.name != "Group":
            return await self.update_many(
                rt, [(identity_id, _patch_edit(rt, body)) for identity_id, body in items], source=source, actor=actor
            )
        refused: dict[str, ScimError] = {}
        for identity_id, body in items:
            try:
                await self.update(rt, identity_id, body=body, if_match=None, source=source, actor=actor)
            except ScimError as error:
                refused[identity_id] = error
        return refused

    async def update_many(
        self, rt: ResourceType, items: Sequence[tuple[str, Edit]], *, source: str | None, actor: str | None
    ) -> dict[str, ScimError]:
        """Several edits of identities of one type (not Groups), each its own change through the gate,
        their writes batched; answers those refused (denied, gone, invalid), by id.

        Up to ``BATCH_CHANGES`` at a time share one transaction: one locked read of their identities (in
        id order, as ``store.identity._batched.load_many`` says), then each edit is prepared and decided
        on its own, in order, exactly as ``update`` would (a change row, a decision and an audit event
        each; a change the gate cannot decide without the database is decided inside the transaction,
        after the writes before it are run, so that it sees them), and the writes of all of them run
        by statement (``store.identity._batched.Writes``). A repeat of an identity waits for the next
        transaction. If a transaction fails as a whole (a write the database refuses), nothing of it
        stays and each of its edits is applied again alone, so one bad edit refuses only itself.
        """
        if rt.name == "Group":
            raise ValueError("a Group's edits touch memberships: they go one by one through update")
        refused: dict[str, ScimError] = {}
        rest = list(items)
        while rest:
            batch: list[tuple[str, Edit]] = []
            later: list[tuple[str, Edit]] = []
            taken: set[str] = set()
            for item in rest:
                if item[0] in taken or len(batch) >= BATCH_CHANGES:
                    later.append(item)
                else:
                    taken.add(item[0])
                    batch.append(item)
            rest = later
            try:
                refused.update(await self._apply_many(rt, batch, source, actor))
                continue
            except ScimError as error:
                if len(batch) == 1:
                    refused[batch[0][0]] = error
                    continue
                failure: Exception = error
            except Exception as exc:  # rolled back as a whole: each edit is applied alone
                if len(batch) == 1:
                    raise
                failure = exc
            log.warning(
                "batched writes fell back to one at a time",
                resource_type=rt.name,
                count=len(batch),
                error=f"{type(failure).__name__}: {failure}",
            )
            for item in batch:
                try:
                    refused.update(await self._apply_many(rt, [item], source, actor))
                except ScimError as error:
                    refused[item[0]] = error
        return refused

    async def _apply_many(
        self, rt: ResourceType, batch: Sequence[tuple[str, Edit]], source: str | None, actor: str | None
    ) -> dict[str, ScimError]:
        """One transaction of ``update_many``: answers the edits refused before any write (the rest are
        written, or the transaction fails as a whole)."""
        refused: dict[str, ScimError] = {}
        written = False
        async with self.direct.transaction() as tx:
            rows = await tx.rows(
                _batched.load_many(self.dialect),
                {"ids": tx.ids(sorted({identity_id for identity_id, _ in batch}))},
            )
            loaded = {
                row[0]: _Loaded(
                    stored_row(rt, row, with_groups=False),
                    bool(row[5]),
                    decode_json(row[6]) if row[6] is not None else None,
                )
                for row in rows
                if row[7] == rt.name
            }
            with_pending = {row[0] for row in rows if row[8]}
            pending = _batched.Writes(rt, self.dialect)
            for identity_id, edit in batch:
                one = loaded.get(identity_id)
                if one is None:
                    refused[identity_id] = NotFound(f"{rt.name} {identity_id} not found")
                    continue
                current = one.current
                try:
                    proposed = edit(current, one.effective)
                    if proposed is None:
                        continue
                    new_doc = dict(proposed)
                    check_immutable(current.doc, new_doc, rt)
                except ScimError as error:
                    refused[identity_id] = error
                    continue
                password_hash = await take_password_hash(new_doc)
                now = utcnow()
                change = _proposed(rt, identity_id, one.effective, new_doc, source, actor, now)
                decision: Decision | None = None
                if change.changed or one.overlaid:  # as ``update``: a diverging identity is decided anyway
                    decision = await self._decide_in_batch(tx, change, pending)
                    if decision.action == "deny":
                        pending.denied(tx, change, decision)
                        refused[identity_id] = PolicyDenied(decision)
                        continue
                    pending.settle(tx, change, decision, pending=identity_id in with_pending, overlaid=one.overlaid)
                pending.update_row(tx, current, new_doc, source, password_hash, now)
                written = True
            await pending.flush(tx)
        if written:
            self._changed()
        return refused

    async def _decide_in_batch(self, tx: Tx, change: Change, pending: _batched.Writes) -> Decision:
        """The gate's decision on a change of a batch: without the database when it allows it at once
        (``Gate.quick``), else in the transaction, once the batch's writes so far are run."""
        await self.gate.ensure_fresh(tx)  # a policy read more than a moment ago: ``quick`` asks again
        decision = self.gate.quick(change)
        if decision is not None and decision.action == "allow":
            return decision
        await pending.flush(tx, last=False)
        return await self.gate.decide(tx, change)

    # -- apply ----------------------------------------------------------------------------------

    async def _settle(
        self,
        tx: Tx,
        rt: ResourceType,
        change: Change,
        decision: Decision,
        *,
        holds: list[tuple[str, str, str]] | None = None,
    ) -> None:
        """Store the change; move the effective state and write the outbox if allowed, else hold it."""
        assert change.identity_id is not None
        if decision.action == "allow":
            await changes.record(tx, change, decision, "applied")
            await changes.release_document(tx, change.identity_id)
            if rt.name == "Group":
                await tx.run(changes.DELETE_HOLDS_OF_GROUP, {"group_id": change.identity_id})
            await outbox.enqueue(tx, self.dialect, rt.name, [change.identity_id])
            return
        await changes.record(tx, change, decision, "pending")
        if change.before != change.after:
            await changes.hold_document(tx, self.dialect, change)
        if holds is not None:
            await changes.set_holds(tx, self.dialect, change.identity_id, change.id, holds)

    async def _hold_delete(self, tx: Tx, rt: ResourceType, change: Change, decision: Decision) -> None:
        """The source deletes an identity and the gate holds it: the effective state keeps the identity
        and its memberships (now held removals), while the source's rows go."""
        assert change.identity_id is not None
        identity_id = change.identity_id
        await changes.record(tx, change, decision, "pending")
        await changes.hold_document(tx, self.dialect, change, source_deleted=True)
        held = {row[0]: row[1] for row in await tx.rows(changes.HOLDS_OF_MEMBER, {"member_id": identity_id})}
        await tx.run(changes.DELETE_HOLDS_OF_MEMBER, {"member_id": identity_id})
        rows = [
            {"group_id": g, "member_id": identity_id, "member_type": rt.name, "kind": "remove", "change_id": change.id}
            for (g,) in await tx.rows(changes.GROUPS_OF_MEMBER, {"member_id": identity_id})
            if held.get(g) != "add"
        ]
        rows += [
            {"group_id": g, "member_id": identity_id, "member_type": rt.name, "kind": "remove", "change_id": change.id}
            for g, kind in held.items()
            if kind == "remove"
        ]
        if rt.name == "Group":
            group_holds = {row[0]: row for row in await tx.rows(changes.HOLDS_OF_GROUP, {"group_id": identity_id})}
            await tx.run(changes.DELETE_HOLDS_OF_GROUP, {"group_id": identity_id})
            rows += [
                {"group_id": identity_id, "member_id": m, "member_type": t, "kind": "remove", "change_id": change.id}
                for m, t in await tx.rows(changes.MEMBERS_OF_GROUP, {"group_id": identity_id})
                if m not in group_holds or group_holds[m][2] != "add"
            ]
            rows += [
                {"group_id": identity_id, "member_id": m, "member_type": t, "kind": "remove", "change_id": change.id}
                for m, t, kind in group_holds.values()
                if kind == "remove"
            ]
        await tx.run(changes.upsert_hold(self.dialect), rows)

    async def _denied(self, change: Change, decision: Decision) -> None:
        """Keep the denied change as evidence (nothing else of it was written), then refuse it."""
        async with self.direct.transaction() as tx:
            await tx.run(changes.INSERT_CHANGE, changes.change_params(tx, change, decision, "denied"))
            await audit_records.change(change, decision, "denied").append(tx)
        raise PolicyDenied(decision)

    async def _update_row(
        self,
        tx: Tx,
        rt: ResourceType,
        current: StoredIdentity,
        doc: dict[str, Any],
        source: str | None,
        password_hash: str | None,
    ) -> None:
        values = {f"v_{k}": v for k, v in columns(tx, rt, doc).items()}
        await tx.run(
            writes.UPDATE_IDENTITY,
            {
                "w_id": current.id,
                "v_last_modified": tx.time(utcnow()),
                "v_version": current.version + 1,
                "v_source": source,
                **values,
            },
        )
        if password_hash is not None:
            await tx.run(writes.UPDATE_PASSWORD, {"w_id": current.id, "v_password_hash": password_hash})
        if doc.get("emails") != current.doc.get("emails"):
            await tx.run(writes.DELETE_EMAILS, {"identity_id": current.id})
            await tx.run(writes.INSERT_EMAIL, email_rows(current.id, doc))

    # -- members --------------------------------------------------------------------------------

    async def _apply_member_ops(
        self, tx: Tx, group_id: str, ops: Iterable[MemberOp], change: Change
    ) -> tuple[list[tuple[str, str, str]], bool]:
        """Apply the source's membership operations; set the change's members added and removed
        (against the effective state); answer the holds that keep the effective state if it is held, and
        whether the group had holds before."""
        holds: dict[str, tuple[str, str]] = {
            row[0]: (row[1], row[2]) for row in await tx.rows(changes.HOLDS_OF_GROUP, {"group_id": group_id})
        }
        had_holds = bool(holds)
        added: list[tuple[str, str]] = []
        removed: list[Any] = []
        for op in ops:
            if op.kind == "clear":
                removed += await tx.rows(writes.clear_members(), {"group_id": group_id})
            elif op.kind == "add":
                added += await self._add_members(tx, group_id, op.members)
            elif op.kind == "remove":
                ids = [member["value"] for member in op.members]
                removed += await tx.rows(
                    writes.remove_members(self.dialect), {"group_id": group_id, "ids": tx.ids(ids)}
                )
            elif op.where is not None:
                statement = (
                    memberships.delete()
                    .where(memberships.c.group_id == sa.bindparam("group_id"), member_condition(op.where, memberships))
                    .returning(memberships.c.member_id, memberships.c.member_type)
                )
                removed += await tx.rows(statement, {"group_id": group_id}, dynamic=True)
        for member, kind_of in removed:
            if holds.get(member, ("", ""))[1] == "add":
                del holds[member]  # never effective: gone from both
            else:
                holds[member] = (kind_of, "remove")
        for member, kind_of in added:
            if holds.get(member, ("", ""))[1] == "remove":
                del holds[member]  # still effective: the source has it back
            else:
                holds[member] = (kind_of, "add")
        change.members_added = sorted(m for m, (_, kind) in holds.items() if kind == "add")
        change.members_removed = sorted(m for m, (_, kind) in holds.items() if kind == "remove")
        if change.members_added or change.members_removed:
            change.changed.append("members")
        return [(m, kind_of, kind) for m, (kind_of, kind) in holds.items()], had_holds

    async def _add_members(self, tx: Tx, group_id: str, members: Sequence[dict[str, str]]) -> list[tuple[str, str]]:
        """Add members that exist (checked, with their declared type); answers those not there before."""
        wanted = dedupe(members)
        ids = [member["value"] for member in wanted]
        if group_id in ids:
            raise InvalidValue("a group cannot be a member of itself")
        id_list = tx.ids(ids)
        types: dict[str, str] = {
            row[0]: row[1] for row in await tx.rows(writes.existing(self.dialect), {"ids": id_list})
        }
        missing = [i for i in ids if i not in types]
        if missing:
            raise InvalidValue(
                f"member {missing[0]!r} does not exist"
                if len(missing) == 1
                else f"{len(missing)} members do not exist, e.g. {missing[0]!r}"
            )
        foreign = next((i for i in ids if types[i] not in MEMBER_TYPES), None)
        if foreign is not None:
            raise InvalidValue(
                f"member {foreign!r} is of type {types[foreign]}: a group's members are "
                f"{', '.join(MEMBER_TYPES[:-1])} or {MEMBER_TYPES[-1]} identities"
            )
        for member in wanted:
            declared = member.get("type")
            if declared and declared.lower() != types[member["value"]].lower():
                raise InvalidValue(f"member {member['value']!r} is a {types[member['value']]}, not a {declared}")
        return [
            (row[0], row[1])
            for row in await tx.rows(writes.add_members(self.dialect), {"group_id": group_id, "ids": id_list})
        ]


def _status(decision: Decision) -> str:
    """The status a change is stored with once decided (a denied one is stored apart, by ``_denied``)."""
    return "applied" if decision.action == "allow" else "pending"
