"""Changes, decisions and the effective-state overlay, as rows (DESIGN.md: change, gate, effective state).

Every mutation of an identity is a *change*: before (the effective state), after (the state proposed),
what it touches, who sent it. The write pipeline (``store.identity.writer``) asks a ``Gate`` for a ``Decision``
inside the write's own transaction and stores the change row, the source state and, where the change
is held, the overlay that keeps the effective state where it was: ``effective_states`` for documents
and ``membership_holds`` for memberships. Everything here runs inside the caller's transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from scimward.scim.errors import ScimError
from scimward.store._direct import Encoder, Tx, decode_json, decode_time
from scimward.store.tables import changes, effective_states, identities, membership_holds, memberships
from scimward.store.timeutil import iso

Action = Literal["allow", "hold", "deny"]
Op = Literal["create", "update", "deactivate", "reactivate", "delete"]
#: The statuses of a change: only ``applied`` and ``approved`` moved the effective state.
STATUSES = ("applied", "pending", "approved", "rejected", "denied", "superseded", "expired")

_c, _e, _h, _m = changes.c, effective_states.c, membership_holds.c, memberships.c


@dataclass
class Change:
    """One proposed mutation of one identity (or of a target's configuration)."""

    id: str
    resource_type: str
    identity_id: str | None
    op: Op
    #: The effective state before the change; None when it has none (created, or a held create).
    before: dict[str, Any] | None
    #: The state proposed; None for a delete.
    after: dict[str, Any] | None
    changed: list[str]
    source: str | None
    actor: str | None
    created: datetime
    members_added: list[str] = field(default_factory=list)
    members_removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RuleMatch:
    name: str
    action: Action
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "action": self.action, "reason": self.reason}


@dataclass
class Decision:
    """What the gate decided about a change, and why."""

    action: Action
    matched: list[RuleMatch] = field(default_factory=list)
    approvals_needed: int = 0
    blast_radius: dict[str, Any] | None = None
    #: Ids of the targets whose open breaker holds the change.
    held_by_breaker: list[int] = field(default_factory=list)
    expires: datetime | None = None

    @property
    def reasons(self) -> list[str]:
        return [f"{m.name}: {m.reason}" for m in self.matched if m.action == self.action] + (
            ["the mass-change breaker is open"] if self.held_by_breaker else []
        )


class Gate(Protocol):
    """The policy step every change passes (implemented by ``policy.gate``)."""

    def quick(self, change: Change) -> Decision | None:
        """The decision without the database, or None when it needs the write's transaction."""

    async def decide(self, tx: Tx, change: Change) -> Decision:
        """The decision, inside the write's transaction (reads only; no network I/O)."""

    async def ensure_fresh(self, tx: Tx) -> None:
        """Re-read the policy in force if it may have changed since it was read, so that ``quick`` can
        answer (a batch of writes asks before each change)."""


class PolicyDenied(ScimError):
    """A change a policy rule denies: nothing of it is written (DESIGN.md: deny -> error to the source)."""

    scim_type = "invalidValue"

    def __init__(self, decision: Decision) -> None:
        denied = [m for m in decision.matched if m.action == "deny"]
        super().__init__("denied by policy: " + "; ".join(f"rule {m.name!r}: {m.reason}" for m in denied))
        self.decision = decision


def op_of(before: dict[str, Any] | None, after: dict[str, Any] | None) -> Op:
    """create, delete, deactivate, reactivate or update, from the effective and the proposed state."""
    if after is None:
        return "delete"
    if before is None:
        return "create"
    was, now = before.get("active", True) is not False, after.get("active", True) is not False
    if was and not now:
        return "deactivate"
    if now and not was:
        return "reactivate"
    return "update"


def changed_paths(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[str]:
    """The attributes that differ: top-level names, and ``urn:...:attr`` inside extensions."""
    old, new = before or {}, after or {}
    paths: list[str] = []
    for key in sorted(set(old) | set(new)):
        if key == "schemas" or old.get(key) == new.get(key):
            continue
        a, b = old.get(key), new.get(key)
        if key.startswith("urn:") and isinstance(a, dict | None) and isinstance(b, dict | None):
            paths += [
                f"{key}:{sub}"
                for sub in sorted(set(a or {}) | set(b or {}))
                if (a or {}).get(sub) != (b or {}).get(sub)
            ]
        else:
            paths.append(key)
    return paths


def dialect_insert(dialect: str, table: sa.Table) -> Any:
    """An INSERT that can take ON CONFLICT, on either dialect."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)


CHANGE_COLUMNS = (
    "id",
    "identity_id",
    "resource_type",
    "op",
    "status",
    "source",
    "actor",
    "before",
    "after",
    "changed",
    "members_added",
    "members_removed",
    "decision",
    "rules",
    "approvals_needed",
    "approvals",
    "blast_radius",
    "held_by_breaker",
    "created",
    "decided",
    "expires",
    "note",
)
INSERT_CHANGE = changes.insert().values({c: sa.bindparam(f"c_{c}") for c in CHANGE_COLUMNS})

#: A newer change to an identity supersedes its pending ones: it is evaluated against the effective state.
SUPERSEDE = (
    changes.update()
    .where(_c.identity_id == sa.bindparam("identity_id"), _c.status == "pending")
    .values(status="superseded", decided=sa.bindparam("now"))
)

DELETE_EFFECTIVE = effective_states.delete().where(_e.identity_id == sa.bindparam("identity_id"))
HOLDS_OF_GROUP = sa.select(_h.member_id, _h.member_type, _h.kind).where(_h.group_id == sa.bindparam("group_id"))
DELETE_HOLDS_OF_GROUP = membership_holds.delete().where(_h.group_id == sa.bindparam("group_id"))
DELETE_HOLDS_OF_MEMBER = membership_holds.delete().where(_h.member_id == sa.bindparam("member_id"))
HOLDS_OF_MEMBER = sa.select(_h.group_id, _h.kind).where(_h.member_id == sa.bindparam("member_id"))
GROUPS_OF_MEMBER = sa.select(_m.group_id).where(_m.member_id == sa.bindparam("member_id"))
MEMBERS_OF_GROUP = sa.select(_m.member_id, _m.member_type).where(_m.group_id == sa.bindparam("group_id"))
HAS_PENDING = (
    sa.select(sa.literal(1)).where(_c.identity_id == sa.bindparam("identity_id"), _c.status == "pending").limit(1)
)


@functools.cache
def upsert_effective(dialect: str) -> Any:
    insert = dialect_insert(dialect, effective_states).values(
        identity_id=sa.bindparam("identity_id"),
        resource_type=sa.bindparam("resource_type"),
        doc=sa.bindparam("doc"),
        source_deleted=sa.bindparam("source_deleted"),
        change_id=sa.bindparam("change_id"),
    )
    return insert.on_conflict_do_update(
        index_elements=[_e.identity_id],
        set_={
            "doc": insert.excluded.doc,
            "source_deleted": insert.excluded.source_deleted,
            "change_id": insert.excluded.change_id,
        },
    )


@functools.cache
def upsert_hold(dialect: str) -> Any:
    insert = dialect_insert(dialect, membership_holds).values(
        group_id=sa.bindparam("group_id"),
        member_id=sa.bindparam("member_id"),
        member_type=sa.bindparam("member_type"),
        kind=sa.bindparam("kind"),
        change_id=sa.bindparam("change_id"),
    )
    return insert.on_conflict_do_update(
        index_elements=[_h.group_id, _h.member_id],
        set_={"kind": insert.excluded.kind, "change_id": insert.excluded.change_id},
    )


def change_params(tx: Encoder, change: Change, decision: Decision, status: str) -> dict[str, Any]:
    """The change row's values, for ``INSERT_CHANGE`` (and the fused statements)."""
    pending = status == "pending"
    return {
        "c_id": change.id,
        "c_identity_id": change.identity_id,
        "c_resource_type": change.resource_type,
        "c_op": change.op,
        "c_status": status,
        "c_source": change.source,
        "c_actor": change.actor,
        "c_before": tx.json(change.before) if change.before is not None else None,
        "c_after": tx.json(change.after) if change.after is not None else None,
        "c_changed": tx.json(change.changed),
        "c_members_added": tx.json(change.members_added) if change.members_added else None,
        "c_members_removed": tx.json(change.members_removed) if change.members_removed else None,
        "c_decision": decision.action,
        "c_rules": tx.json([m.to_json() for m in decision.matched]) if decision.matched else None,
        "c_approvals_needed": decision.approvals_needed,
        "c_approvals": None,
        "c_blast_radius": tx.json(decision.blast_radius) if decision.blast_radius is not None else None,
        "c_held_by_breaker": tx.json(decision.held_by_breaker) if decision.held_by_breaker else None,
        "c_created": tx.time(change.created),
        "c_decided": None if pending else tx.time(change.created),
        "c_expires": tx.time(decision.expires) if pending and decision.expires else None,
        "c_note": None,
    }


async def record(tx: Tx, change: Change, decision: Decision, status: str) -> None:
    """Store the change row; a newer change supersedes the identity's pending ones first."""
    if change.identity_id is not None:
        await tx.run(SUPERSEDE, {"identity_id": change.identity_id, "now": tx.time(change.created)})
    await tx.run(INSERT_CHANGE, change_params(tx, change, decision, status))


async def hold_document(tx: Tx, dialect: str, change: Change, *, source_deleted: bool = False) -> None:
    """Keep the identity's effective state at ``change.before`` while its source state moves on."""
    await tx.run(
        upsert_effective(dialect),
        {
            "identity_id": change.identity_id,
            "resource_type": change.resource_type,
            "doc": tx.json(change.before) if change.before is not None else None,
            "source_deleted": source_deleted,
            "change_id": change.id,
        },
    )


async def release_document(tx: Tx, identity_id: str) -> None:
    """The effective state is the source state again."""
    await tx.run(DELETE_EFFECTIVE, {"identity_id": identity_id})


async def set_holds(tx: Tx, dialect: str, group_id: str, change_id: str, holds: Sequence[tuple[str, str, str]]) -> None:
    """Replace a group's membership holds with ``holds``: (member id, member type, add | remove)."""
    await tx.run(DELETE_HOLDS_OF_GROUP, {"group_id": group_id})
    await tx.run(
        upsert_hold(dialect),
        [
            {"group_id": group_id, "member_id": member, "member_type": kind_of, "kind": kind, "change_id": change_id}
            for member, kind_of, kind in holds
        ],
    )


# -- reading and deciding stored changes (approvals, the breaker's release) -----------------------


@dataclass
class ChangeRow:
    """A stored change, as ``changes list``, ``changes show`` and approvals read it."""

    id: str
    identity_id: str | None
    resource_type: str
    op: str
    status: str
    source: str | None
    actor: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: list[str]
    members_added: list[str]
    members_removed: list[str]
    decision: str
    rules: list[dict[str, str]]
    approvals_needed: int
    approvals: list[dict[str, Any]]
    blast_radius: dict[str, Any] | None
    held_by_breaker: list[int]
    created: datetime
    decided: datetime | None
    expires: datetime | None
    note: str | None

    @property
    def reasons(self) -> list[str]:
        reasons = [f"{r['name']}: {r['reason']}" for r in self.rules if r.get("action") == self.decision]
        if self.held_by_breaker:
            reasons.append(
                "the mass-change breaker is open on target(s) " + ", ".join(str(t) for t in self.held_by_breaker)
            )
        return reasons

    @property
    def label(self) -> str:
        """What a person knows the identity by: its userName or displayName, else its id."""
        for doc in (self.after, self.before):
            if doc:
                return str(doc.get("userName") or doc.get("displayName") or self.identity_id)
        return str(self.identity_id)

    def to_json(self) -> dict[str, Any]:
        """The change as the admin API and ``scimward changes ... --json`` show it (docs/policy.md)."""
        return {
            "id": self.id,
            "status": self.status,
            "op": self.op,
            "type": self.resource_type,
            "identity": self.identity_id,
            "name": self.label,
            "source": self.source,
            "actor": self.actor,
            "decision": self.decision,
            "reasons": self.reasons,
            "rules": self.rules,
            "approvals_needed": self.approvals_needed,
            "approvals": self.approvals,
            "held_by_breaker": self.held_by_breaker,
            "changed": self.changed,
            "members_added": self.members_added,
            "members_removed": self.members_removed,
            "before": self.before,
            "after": self.after,
            "blast_radius": self.blast_radius,
            "created": iso(self.created),
            "decided": iso(self.decided),
            "expires": iso(self.expires),
            "note": self.note,
        }


_SELECT_CHANGE = [_c[name] for name in CHANGE_COLUMNS]


def change_row(row: Sequence[Any]) -> ChangeRow:
    values = dict(zip(CHANGE_COLUMNS, row, strict=True))
    for name in (
        "before",
        "after",
        "changed",
        "members_added",
        "members_removed",
        "rules",
        "approvals",
        "blast_radius",
        "held_by_breaker",
    ):
        values[name] = decode_json(values[name]) if values[name] is not None else None
    for name in ("changed", "members_added", "members_removed", "rules", "approvals", "held_by_breaker"):
        values[name] = values[name] or []
    for name in ("created", "decided", "expires"):
        values[name] = decode_time(values[name]) if values[name] is not None else None
    return ChangeRow(**values)


GET_CHANGE = sa.select(*_SELECT_CHANGE).where(_c.id == sa.bindparam("change_id")).with_for_update()
#: Ids may be given by their first characters, as git's are (``changes approve 0192ab``).
FIND_CHANGES = sa.select(_c.id).where(_c.id.like(sa.bindparam("prefix"))).limit(2)
DECIDE_CHANGE = (
    changes.update()
    .where(_c.id == sa.bindparam("change_id"))
    .values(
        status=sa.bindparam("status"),
        decided=sa.bindparam("decided"),
        approvals=sa.bindparam("approvals"),
        held_by_breaker=sa.bindparam("held"),
        note=sa.bindparam("note"),
    )
)
PENDING_HELD_BY_BREAKER = (
    sa.select(*_SELECT_CHANGE).where(_c.status == "pending", _c.held_by_breaker.is_not(None)).order_by(_c.created)
)
EXPIRE_PENDING = (
    changes.update()
    .where(_c.status == "pending", _c.expires < sa.bindparam("now"))
    .values(status="expired", decided=sa.bindparam("now"))
    .returning(_c.id)
)
EFFECTIVE_OF = sa.select(_e.doc, _e.source_deleted, _e.change_id).where(_e.identity_id == sa.bindparam("identity_id"))


def list_changes(status: str | None, identity_id: str | None, limit: int) -> sa.Select[Any]:
    query = sa.select(*_SELECT_CHANGE).order_by(_c.created.desc(), _c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(_c.status == status)
    if identity_id is not None:
        query = query.where(_c.identity_id == identity_id)
    return query


def diverged(limit: int) -> Any:
    """Identities whose effective state differs from their source state, with the change that explains it:
    (identity id, resource type, source-state name, whether the source deleted it, the change's id,
    its status)."""
    t = identities.c
    name = sa.func.coalesce(t.user_name, t.display_name).label("name")
    documents = sa.select(
        _e.identity_id, _e.resource_type, name, _e.source_deleted, _e.change_id, _c.status
    ).select_from(
        effective_states.outerjoin(identities, t.id == _e.identity_id).outerjoin(changes, _c.id == _e.change_id)
    )
    memberships_held = (
        sa.select(
            _h.group_id,
            sa.literal("Group"),
            t.display_name,
            sa.false(),
            sa.func.max(_h.change_id),
            sa.func.max(_c.status),
        )
        .select_from(
            membership_holds.outerjoin(identities, t.id == _h.group_id).outerjoin(changes, _c.id == _h.change_id)
        )
        .where(~sa.exists().where(_e.identity_id == _h.group_id))
        .group_by(_h.group_id, t.display_name)
    )
    return sa.union_all(documents, memberships_held).limit(limit)
