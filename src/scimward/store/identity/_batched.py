"""The batched form of the write pipeline's *apply*: the writes of many decided changes, by statement.

``Writer.update_many`` prepares and decides each change on its own (one change row, one decision, one
audit event each, as ``Writer.update`` would), and hands the writes here. They are kept until
``flush``, which runs each statement once for all of them (``executemany``) in the batch's transaction:
supersede the identities' pending changes, store the change rows, release or hold the effective
states, write the outbox, the identity rows (and e-mails, passwords), then the audit events, last, as
the plain path appends its event last (the audit lane stays locked until the commit).

The rows are those ``Writer.update`` leaves for the same changes (``tests/test_hr_batched_equivalence.py``);
only the number of statements differs. One identity appears at most once per flush
(``Writer.update_many`` defers a repeat to a later batch), so the order of the statements within a
flush cannot matter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scimward.scim.schema import ResourceType
from scimward.store._direct import Tx
from scimward.store.governance import audit, audit_records, changes
from scimward.store.governance.changes import Change, Decision
from scimward.store.identity import writes
from scimward.store.identity.identity_rows import StoredIdentity, columns, email_rows, naming
from scimward.store.provisioning import outbox
from scimward.store.tables import changes as change_rows
from scimward.store.tables import effective_states, identities

_t, _e, _c = identities.c, effective_states.c, change_rows.c


@functools.cache
def load_many(dialect: str) -> sa.Select[Any]:
    """``writes.LOAD_FOR_WRITE`` for each of ``ids``, with its resource type and whether it has a pending
    change (``Writes.settle`` supersedes only then), locked in id order
    (``FOR UPDATE`` on PostgreSQL; SQLite's transaction holds the database): the order single writers
    cannot cross. The caller checks the type: with it in the WHERE, SQLite's planner walks every identity
    of the type (an index on it) instead of looking up each id."""
    return (
        sa.select(
            _t.id,
            _t.doc,
            _t.created,
            _t.last_modified,
            _t.version,
            _e.identity_id.is_not(None),
            _e.doc,
            _t.resource_type,
            sa.exists().where(_c.identity_id == _t.id, _c.status == "pending"),
        )
        .select_from(identities.outerjoin(effective_states, _e.identity_id == _t.id))
        .where(writes.id_in(_t.id, dialect))
        .order_by(_t.id)
        .with_for_update(of=identities)
    )


@dataclass
class Writes:
    """The writes of a batch's decided changes, not yet run (see the module's text)."""

    rt: ResourceType
    dialect: str
    superseded: list[dict[str, Any]] = field(default_factory=list)
    recorded: list[dict[str, Any]] = field(default_factory=list)
    released: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    #: Identity rows whose names stay (``writes.UPDATE_DOCUMENT``).
    renamed_not: list[dict[str, Any]] = field(default_factory=list)
    passwords: list[dict[str, Any]] = field(default_factory=list)
    emails_of: list[dict[str, Any]] = field(default_factory=list)
    emails: list[dict[str, Any]] = field(default_factory=list)
    events: list[audit_records.Event] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows) + len(self.renamed_not) + len(self.events)

    def denied(self, tx: Tx, change: Change, decision: Decision) -> None:
        """A denied change: its change row and audit event only (``Writer._denied``)."""
        self.recorded.append(changes.change_params(tx, change, decision, "denied"))
        self.events.append(audit_records.change(change, decision, "denied"))

    def settle(self, tx: Tx, change: Change, decision: Decision, *, pending: bool, overlaid: bool) -> None:
        """``Writer._settle`` of a User-like change (no memberships), and its audit event. What would
        find nothing is left out: superseding when the identity has no ``pending`` change, releasing
        its effective state when it is not ``overlaid``."""
        assert change.identity_id is not None
        status = "applied" if decision.action == "allow" else "pending"
        if pending:
            self.superseded.append({"identity_id": change.identity_id, "now": tx.time(change.created)})
        self.recorded.append(changes.change_params(tx, change, decision, status))
        if decision.action == "allow" and overlaid:
            self.released.append({"identity_id": change.identity_id})
        if decision.action == "allow":
            self.enqueued.append(change.identity_id)
        elif change.before != change.after:
            self.held.append(
                {
                    "identity_id": change.identity_id,
                    "resource_type": change.resource_type,
                    "doc": tx.json(change.before) if change.before is not None else None,
                    "source_deleted": False,
                    "change_id": change.id,
                }
            )
        self.events.append(audit_records.change(change, decision, status))

    def update_row(
        self,
        tx: Tx,
        current: StoredIdentity,
        doc: dict[str, Any],
        source: str | None,
        password_hash: str | None,
        at: datetime,
    ) -> None:
        """``Writer._update_row`` at ``at`` (its change's time); by ``writes.UPDATE_DOCUMENT`` when the row
        keeps its names."""
        row = {
            "w_id": current.id,
            "v_last_modified": tx.time(at),
            "v_version": current.version + 1,
            "v_source": source,
            **{f"v_{k}": v for k, v in columns(tx, self.rt, doc).items()},
        }
        if naming(self.rt, doc) == naming(self.rt, current.doc):
            self.renamed_not.append(row)
        else:
            self.rows.append(row)
        if password_hash is not None:
            self.passwords.append({"w_id": current.id, "v_password_hash": password_hash})
        if doc.get("emails") != current.doc.get("emails"):
            self.emails_of.append({"identity_id": current.id})
            self.emails += email_rows(current.id, doc)

    async def flush(self, tx: Tx, *, last: bool = True) -> None:
        """Run what was kept, each statement once for all, and start afresh. The audit events wait for
        the ``last`` flush: the audit lane is locked last, as every writer locks it (after the gate's
        own writes, such as a breaker's window), so that no two transactions take them in turn."""
        await tx.run(changes.SUPERSEDE, self.superseded)
        await tx.run(changes.INSERT_CHANGE, self.recorded)
        await tx.run(changes.DELETE_EFFECTIVE, self.released)
        await tx.run(changes.upsert_effective(self.dialect), self.held)
        if self.enqueued:
            await outbox.enqueue(tx, self.dialect, self.rt.name, self.enqueued)
        await tx.run(writes.UPDATE_IDENTITY, self.rows)
        await tx.run(writes.UPDATE_DOCUMENT, self.renamed_not)
        await tx.run(writes.UPDATE_PASSWORD, self.passwords)
        await tx.run(writes.DELETE_EMAILS, self.emails_of)
        await tx.run(writes.INSERT_EMAIL, self.emails)
        if not last:
            self._clear()
            return
        await audit.append_many(tx, self.events)
        self.events.clear()
        self._clear()

    def _clear(self) -> None:
        for kept in (
            self.superseded,
            self.recorded,
            self.released,
            self.held,
            self.rows,
            self.renamed_not,
            self.passwords,
            self.emails_of,
            self.emails,
        ):
            kept.clear()
        self.enqueued.clear()
