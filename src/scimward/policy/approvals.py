"""Deciding held changes: four-eyes approval, rejection, expiry, and the breaker's release or discard.

An approval that completes a change moves the effective state to the source state and writes the
outbox in one transaction (``apply_effective``), so what was held reaches the targets. The actor of
a change never approves it, and a change asking for N approvals needs N distinct approvers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from scimward.policy.errors import ApprovalError, UnknownSubject
from scimward.policy.plans import apply_config
from scimward.store import Direct, Tx
from scimward.store.database import Database
from scimward.store.governance import ChangeRow, audit_records, change_row, changes, gate_rows
from scimward.store.provisioning import outbox
from scimward.store.tables import targets
from scimward.store.timeutil import utcnow


@dataclass(frozen=True)
class Outcome:
    change_id: str
    status: str
    message: str


class Approvals:
    def __init__(self, database: Database, direct: Direct) -> None:
        self.db = database
        self.direct = direct

    # -- reading --------------------------------------------------------------------------------

    async def changes(
        self, status: str | None = None, identity_id: str | None = None, limit: int = 1000
    ) -> list[ChangeRow]:
        await self.expire()
        async with self.db.read() as conn:
            return [change_row(row) for row in await conn.execute(changes.list_changes(status, identity_id, limit))]

    async def diverged(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Identities whose effective state differs from their source state, and the change that explains it."""
        async with self.db.read() as conn:
            rows = await conn.execute(changes.diverged(limit))
            return [
                {
                    "identity": r[0],
                    "type": r[1],
                    "name": r[2],
                    "source_deleted": bool(r[3]),
                    "change": r[4],
                    "change_status": r[5],
                }
                for r in rows
            ]

    async def show(self, change_id: str) -> ChangeRow:
        await self.expire()
        async with self.direct.transaction() as tx:
            return await self._load(tx, await self._resolve(tx, change_id))

    async def expire(self) -> int:
        """Pending changes past their expiry become ``expired``: the effective state stays as it is."""
        async with self.db.write() as conn:
            expired = [str(row[0]) for row in await conn.execute(changes.EXPIRE_PENDING, {"now": utcnow()})]
            if expired:
                await audit_records.expired(expired).append(conn)
            return len(expired)

    # -- deciding -------------------------------------------------------------------------------

    async def approve(self, change_ids: Sequence[str], approver: str, note: str | None = None) -> list[Outcome]:
        await self.expire()
        outcomes = []
        configurations: list[ChangeRow] = []
        for given in change_ids:
            async with self.direct.transaction() as tx:
                change = await self._pending(tx, await self._resolve(tx, given))
                if approver == change.actor:
                    raise ApprovalError(
                        f"change {change.id}: {approver!r} made it and cannot approve it (four eyes: ask someone else)"
                    )
                if any(a.get("by") == approver and a.get("decision") == "approve" for a in change.approvals):
                    raise ApprovalError(f"change {change.id}: {approver!r} has approved it already")
                approvals = [*change.approvals, _entry("approve", approver, note)]
                given_count = sum(1 for a in approvals if a.get("decision") == "approve")
                if given_count >= change.approvals_needed and not change.held_by_breaker:
                    event = await self._decide(
                        tx, change, "approved", approvals, [], note, by=approver, decision="approve"
                    )
                    if change.resource_type == "Target":
                        configurations.append(change)
                    else:
                        await self.apply_effective(tx, change)
                    await event.append(tx)
                    outcomes.append(Outcome(change.id, "approved", "approved and applied"))
                else:
                    await (
                        await self._decide(
                            tx,
                            change,
                            "pending",
                            approvals,
                            change.held_by_breaker,
                            change.note,
                            by=approver,
                            decision="approve",
                        )
                    ).append(tx)
                    waiting = (
                        f"{change.approvals_needed - given_count} more approval(s)"
                        if given_count < change.approvals_needed
                        else "the breaker's release"
                    )
                    outcomes.append(Outcome(change.id, "pending", f"approval recorded; waits for {waiting}"))
        for change in configurations:  # after the change's transaction: a target's row is written apart
            await apply_config(self.db, change)
        return outcomes

    async def reject(self, change_ids: Sequence[str], rejecter: str, note: str | None = None) -> list[Outcome]:
        await self.expire()
        outcomes = []
        for given in change_ids:
            async with self.direct.transaction() as tx:
                change = await self._pending(tx, await self._resolve(tx, given))
                await (
                    await self._decide(
                        tx,
                        change,
                        "rejected",
                        [*change.approvals, _entry("reject", rejecter, note)],
                        change.held_by_breaker,
                        note,
                        by=rejecter,
                        decision="reject",
                    )
                ).append(tx)
                outcomes.append(
                    Outcome(change.id, "rejected", "rejected: the effective state stays; the source's state differs")
                )
        return outcomes

    # -- the breaker ----------------------------------------------------------------------------

    async def release(self, target_id: int, by: str) -> int:
        """Close a target's breaker and push what it held (changes that wait for nothing else)."""
        released = 0
        events: list[audit_records.Event] = []
        async with self.direct.transaction() as tx:
            for change in await self._held_on(tx, target_id):
                if by == change.actor:
                    raise ApprovalError(f"{by!r} made change {change.id} and cannot release it (four eyes)")
                held = [t for t in change.held_by_breaker if t != target_id]
                approvals = [*change.approvals, _entry("release", by, f"breaker released on target {target_id}")]
                done = (
                    not held and sum(1 for a in approvals if a.get("decision") == "approve") >= change.approvals_needed
                )
                events.append(
                    await self._decide(
                        tx,
                        change,
                        "approved" if done else "pending",
                        approvals,
                        held,
                        change.note,
                        by=by,
                        decision="release",
                    )
                )
                if done:
                    await self.apply_effective(tx, change)
                    released += 1
            await self._close(tx, target_id, orphans="send")
            for event in [*events, audit_records.breaker(target_id, "release", by, released)]:
                await event.append(tx)
        return released

    async def discard(self, target_id: int, by: str) -> int:
        """Close a target's breaker and reject what it held: the effective state stays, the divergence
        from the source stays visible."""
        discarded = 0
        events: list[audit_records.Event] = []
        async with self.direct.transaction() as tx:
            for change in await self._held_on(tx, target_id):
                entry = _entry("discard", by, f"breaker discarded on {target_id}")
                events.append(
                    await self._decide(
                        tx,
                        change,
                        "rejected",
                        [*change.approvals, entry],
                        change.held_by_breaker,
                        "discarded with the mass-change breaker",
                        by=by,
                        decision="discard",
                    )
                )
                discarded += 1
            await self._close(tx, target_id, orphans="drop")
            for event in [*events, audit_records.breaker(target_id, "discard", by, discarded)]:
                await event.append(tx)
        return discarded

    @staticmethod
    async def _held_on(tx: Tx, target_id: int) -> list[ChangeRow]:
        """The pending changes the breaker of ``target_id`` holds, oldest first."""
        return [
            change
            for change in map(change_row, await tx.rows(changes.PENDING_HELD_BY_BREAKER))
            if target_id in change.held_by_breaker
        ]

    async def breakers(self) -> list[dict[str, Any]]:
        """Every target with its breaker: open or not, since when, why, and how many changes (and orphan
        deactivations) it holds."""
        await self.expire()
        async with self.direct.transaction() as tx:
            opened = {int(r[0]): (r[1], r[2]) for r in await tx.rows(gate_rows.OPEN_WITH_REASON)}
            held: dict[int, int] = {}
            for row in await tx.rows(changes.PENDING_HELD_BY_BREAKER):
                for target_id in change_row(row).held_by_breaker:
                    held[target_id] = held.get(target_id, 0) + 1
            for target_id, waiting in await tx.rows(outbox.ORPHANS_WAITING):
                if int(target_id) in opened:  # orphan deactivations (policy.orphans) wait for the release
                    held[int(target_id)] = held.get(int(target_id), 0) + int(waiting)
            names = await tx.rows(sa.select(targets.c.id, targets.c.name).order_by(targets.c.name))
        out = []
        for target_id, name in names:
            is_open = int(target_id) in opened
            since, reason = opened.get(int(target_id), (None, None))
            out.append(
                {
                    "name": name,
                    "id": int(target_id),
                    "open": is_open,
                    "opened": str(since) if since is not None else None,
                    "reason": reason,
                    "held": held.get(int(target_id), 0),
                }
            )
        return out

    # -- applying -------------------------------------------------------------------------------

    async def apply_effective(self, tx: Tx, change: ChangeRow) -> None:
        """The effective state becomes the source state; the targets are told (outbox)."""
        identity_id = change.identity_id
        if identity_id is None or change.resource_type not in ("User", "Group"):
            return
        dialect = self.db.dialect
        overlay = await tx.rows(changes.EFFECTIVE_OF, {"identity_id": identity_id})
        if overlay and overlay[0][1]:  # its source deleted it: its groups drop it, then it goes
            await outbox.enqueue_groups_of(tx, dialect, identity_id)
            await tx.run(changes.DELETE_HOLDS_OF_MEMBER, {"member_id": identity_id})
        if change.resource_type == "Group":
            await tx.run(changes.DELETE_HOLDS_OF_GROUP, {"group_id": identity_id})
        await changes.release_document(tx, identity_id)
        await outbox.enqueue(tx, dialect, change.resource_type, [identity_id])

    # -- internals ------------------------------------------------------------------------------

    async def _resolve(self, tx: Tx, given: str) -> str:
        found = [row[0] for row in await tx.rows(changes.FIND_CHANGES, {"prefix": given.strip() + "%"})]
        if not found or not given.strip():
            raise UnknownSubject(f"no change {given!r}")
        if len(found) > 1:
            raise ApprovalError(f"{given!r} names more than one change: give more of its id")
        return str(found[0])

    async def _load(self, tx: Tx, change_id: str) -> ChangeRow:
        rows = await tx.rows(changes.GET_CHANGE, {"change_id": change_id})
        if not rows:
            raise UnknownSubject(f"no change {change_id!r}")
        return change_row(rows[0])

    async def _pending(self, tx: Tx, change_id: str) -> ChangeRow:
        change = await self._load(tx, change_id)
        if change.status != "pending":
            raise ApprovalError(f"change {change.id} is {change.status}, not pending")
        return change

    async def _decide(
        self,
        tx: Tx,
        change: ChangeRow,
        status: str,
        approvals: list[dict[str, Any]],
        held: list[int],
        note: str | None,
        *,
        by: str,
        decision: str,
    ) -> audit_records.Event:
        """Store a person's decision on a change; answers its audit event, for the caller to append last
        in the same transaction (the audit lane stays locked from the append to the commit)."""
        await tx.run(
            changes.DECIDE_CHANGE,
            {
                "change_id": change.id,
                "status": status,
                "decided": None if status == "pending" else tx.time(utcnow()),
                "approvals": tx.json(approvals),
                "held": tx.json(held) if held else None,
                "note": note,
            },
        )
        return audit_records.approval(change.id, change.resource_type, change.identity_id, status, by, decision, note)

    async def _close(self, tx: Tx, target_id: int, *, orphans: str) -> None:
        """Close the breaker; the orphan deactivations it held (policy.orphans) are sent now
        (``orphans="send"``) or dropped (``"drop"``)."""
        params = {"target_id": target_id}
        if orphans == "send":
            await tx.run(outbox.ORPHANS_DUE_NOW, {**params, "now": tx.time(utcnow())})
        else:
            await tx.run(outbox.DISCARD_ORPHANS, params)
        await tx.run(gate_rows.CLOSE_BREAKER, params)
        await tx.run(gate_rows.CLEAR_EVENTS, params)
        await tx.run(gate_rows.RESOLVE_BREAKER_FINDING, {**params, "at": tx.time(utcnow())})


def _entry(decision: str, by: str, note: str | None) -> dict[str, Any]:
    return {"decision": decision, "by": by, "at": utcnow().isoformat(timespec="seconds") + "Z", "note": note}
