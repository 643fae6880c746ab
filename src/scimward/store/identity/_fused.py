"""PostgreSQL-only fused writes: one statement, one round trip, for the most common changes.

A PATCH that touches only the identity row (``active=false``, a new title) and a POST of an identity
without members, when the gate allowed them without the database (``Gate.quick``), are written as a
single statement whose data-modifying CTEs also store the change row, upsert the outbox rows and
the count, and append the change's audit event (``store.governance.audit.fused_append``). The statement is
atomic on its own, so it runs without BEGIN/COMMIT. The PATCH is conditional on the version it read
and on the identity having no effective state of its own and no pending change: otherwise nothing is
written and the caller takes the locking path (``store.identity.writer``), which decides again against the
effective state. Everything else (and all of
SQLite) takes that path; ``tests/test_fused_equivalence.py`` proves both write the same rows.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from scimward.store.governance.audit import fused_append
from scimward.store.governance.changes import CHANGE_COLUMNS
from scimward.store.identity.counts import _adjust
from scimward.store.identity.writes import EMAIL_COLUMNS, INSERT_IDENTITY, PROMOTED
from scimward.store.tables import changes, effective_states, identities, identity_emails, outbox, targets

_t = identities.c
_o = outbox.c


def change_values(params: dict[str, Any], audit_params: dict[str, Any]) -> dict[str, Any]:
    """``store.governance.changes.change_params`` and the change's audit event (``audit_records``'s
    ``Event.fused_params``) as this module's statements bind them."""
    return {**params, **audit_params}


def _audited(statement: sa.Select[Any], changed: Any, *first: Any) -> sa.Select[Any]:
    """The statement with the change's audit event, appended after the CTEs ``first`` took their locks."""
    head, event = fused_append(changed, *first)
    return statement.add_cte(head).add_cte(event)


def _record_from(changed: Any) -> Any:
    """Insert the change row once for the row the CTE ``changed`` returns (none if it returns none)."""
    # Typed casts: in INSERT ... SELECT PostgreSQL cannot infer a parameter's type from the column.
    values = [sa.cast(sa.bindparam(f"c_{name}"), changes.c[name].type) for name in CHANGE_COLUMNS]
    return (
        changes.insert()
        .from_select(list(CHANGE_COLUMNS), sa.select(*values).select_from(changed))
        .returning(changes.c.id)
        .cte("recorded")
    )


def _enqueue_from(changed: Any) -> Any:
    """Upsert an outbox row per target for the identity the CTE ``changed`` returns."""
    rows = (
        sa.select(
            targets.c.id,
            changed.c.id,
            changed.c.resource_type,
            sa.bindparam("now"),
            sa.bindparam("now_due"),
            sa.literal(1),
            sa.literal(0),
        )
        .select_from(targets)
        .join(changed, sa.true())
    )
    insert = postgresql.insert(outbox).from_select(
        ["target_id", "identity_id", "resource_type", "enqueued", "due", "generation", "attempts"], rows
    )
    return (
        insert.on_conflict_do_update(
            index_elements=[_o.target_id, _o.identity_id],
            set_={
                "due": insert.excluded.due,
                "generation": _o.generation + 1,
                "attempts": 0,
                "last_error": None,
                "resource_type": insert.excluded.resource_type,
            },
        )
        .returning(_o.target_id)
        .cte("enqueued_rows")
    )


@functools.cache
def update_row() -> sa.Select[Any]:
    """UPDATE the identity if still at ``w_version``, enqueue it; returns how many rows changed (0 or 1)."""
    changed = (
        identities.update()
        .where(
            _t.id == sa.bindparam("w_id"),
            _t.version == sa.bindparam("w_version"),
            ~sa.exists().where(effective_states.c.identity_id == sa.bindparam("w_id")),
            ~sa.exists().where(changes.c.identity_id == sa.bindparam("w_id"), changes.c.status == "pending"),
        )
        .values({c: sa.bindparam(f"v_{c}") for c in ("last_modified", "version", "source", *PROMOTED)})
        .returning(_t.id, _t.resource_type)
        .cte("changed")
    )
    enqueued, recorded = _enqueue_from(changed), _record_from(changed)
    return _audited(
        sa.select(sa.func.count()).select_from(changed).add_cte(enqueued).add_cte(recorded), changed, enqueued, recorded
    )


@functools.cache
def insert_row() -> sa.Select[Any]:
    """INSERT the identity and its e-mail rows (``emails``: a JSON array of rows), add to its count,
    enqueue it."""
    created = INSERT_IDENTITY.returning(_t.id, _t.resource_type).cte("created")
    rows = (
        sa.func.jsonb_to_recordset(sa.bindparam("emails", type_=postgresql.JSONB))
        .table_valued(*(sa.column(c.name, c.type) for c in EMAIL_COLUMNS), name="email_rows")
        .render_derived(with_types=True)
    )
    emails = (
        identity_emails.insert()
        .from_select(
            [identity_emails.c.identity_id, *EMAIL_COLUMNS],
            sa.select(sa.bindparam("id"), *(rows.c[c.name] for c in EMAIL_COLUMNS)),
        )
        .returning(identity_emails.c.position)
        .cte("emailed")
    )
    counted = _adjust("postgresql").returning(sa.literal(1)).cte("counted")
    enqueued, recorded = _enqueue_from(created), _record_from(created)
    return _audited(
        sa.select(sa.func.count())
        .select_from(created)
        .add_cte(emails)
        .add_cte(counted)
        .add_cte(enqueued)
        .add_cte(recorded),
        created,
        emails,
        counted,
        enqueued,
        recorded,
    )
