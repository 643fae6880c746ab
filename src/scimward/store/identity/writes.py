"""Prebuilt write statements for identities, memberships and e-mails, run by ``store._direct``.

Every statement has a fixed shape with named parameters, so it is compiled once per dialect. Lists
of ids travel as one parameter (``id_in``): an array on PostgreSQL, a JSON array on SQLite.
"""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from scimward.store.tables import effective_states, identities, identity_emails, memberships

_t = identities.c
_m = memberships.c
PROMOTED = (
    "resource_type",
    "user_name",
    "user_name_lower",
    "external_id",
    "display_name",
    "display_name_lower",
    "user_type_lower",
    "active",
    "doc",
)


def id_in(column: sa.ColumnElement[Any], dialect: str, name: str = "ids") -> sa.ColumnElement[bool]:
    if dialect == "postgresql":
        return column == sa.func.any(sa.bindparam(name, type_=postgresql.ARRAY(sa.String)))
    return column.in_(sa.select(sa.column("value")).select_from(sa.func.json_each(sa.bindparam(name))))


INSERT_IDENTITY = identities.insert().values(
    {c: sa.bindparam(c) for c in ("id", "created", "last_modified", "version", "source", "password_hash", *PROMOTED)}
)

_e = effective_states.c
#: The identity's source row and, when it differs, its effective state (whether it does, and the document).
LOAD_FOR_WRITE = (
    sa.select(_t.id, _t.doc, _t.created, _t.last_modified, _t.version, _e.identity_id.is_not(None), _e.doc)
    .select_from(identities.outerjoin(effective_states, _e.identity_id == _t.id))
    .where(_t.id == sa.bindparam("identity_id"), _t.resource_type == sa.bindparam("resource_type"))
    # On PostgreSQL the row lock queues concurrent writers of one identity (an IdP sending
    # membership changes in parallel) instead of failing their version check. SQLite ignores it.
    .with_for_update(of=identities)
)


UPDATE_IDENTITY = (
    identities.update()
    .where(_t.id == sa.bindparam("w_id"))
    .values({c: sa.bindparam(f"v_{c}") for c in ("last_modified", "version", "source", *PROMOTED)})
)

#: ``UPDATE_IDENTITY`` of a row whose naming columns (``identity_rows.naming``: the type, the names and
#: the external id) stay as they are: SQLite rewrites the entries of every index over a column an
#: UPDATE sets, changed or not, and each of them holds ``resource_type``.
UPDATE_DOCUMENT = (
    identities.update()
    .where(_t.id == sa.bindparam("w_id"))
    .values({c: sa.bindparam(f"v_{c}") for c in ("last_modified", "version", "source", "active", "doc")})
)

UPDATE_PASSWORD = (
    identities.update().where(_t.id == sa.bindparam("w_id")).values(password_hash=sa.bindparam("v_password_hash"))
)

#: Deletes and answers the version it had (If-Match is checked after, rolling back on a mismatch).
DELETE_IDENTITY = (
    identities.delete()
    .where(_t.id == sa.bindparam("w_id"), _t.resource_type == sa.bindparam("resource_type"))
    .returning(_t.version)
)

DELETE_EMAILS = identity_emails.delete().where(identity_emails.c.identity_id == sa.bindparam("identity_id"))
#: The columns of an e-mail row besides its identity's id, as ``identity_rows.email_rows`` fills them.
EMAIL_COLUMNS = tuple(c for c in identity_emails.c if c.name != "identity_id")
INSERT_EMAIL = identity_emails.insert().values({c.name: sa.bindparam(c.name) for c in identity_emails.c})


@functools.cache
def clear_members() -> Any:
    """Remove every member of ``group_id``; answers (member id, member type) of each."""
    return memberships.delete().where(_m.group_id == sa.bindparam("group_id")).returning(_m.member_id, _m.member_type)


@functools.cache
def existing(dialect: str) -> sa.Select[Any]:
    """The id and resource type of each of ``ids`` that exists."""
    return sa.select(_t.id, _t.resource_type).where(id_in(_t.id, dialect))


@functools.cache
def remove_members(dialect: str) -> Any:
    """Remove each of ``ids`` from ``group_id``; answers (member id, member type) of those that were there."""
    return (
        memberships.delete()
        .where(_m.group_id == sa.bindparam("group_id"), id_in(_m.member_id, dialect))
        .returning(_m.member_id, _m.member_type)
    )


@functools.cache
def add_members(dialect: str) -> Any:
    """Add each of ``ids`` to ``group_id`` with its own resource type, in one statement; members already
    there stay as they are. The caller has checked that every id exists. Answers (member id, member type)
    of the members added."""
    insert = postgresql.insert(memberships) if dialect == "postgresql" else sqlite.insert(memberships)
    rows = sa.select(sa.bindparam("group_id"), _t.id, _t.resource_type).where(id_in(_t.id, dialect))
    return (
        insert.from_select(["group_id", "member_id", "member_type"], rows)
        .on_conflict_do_nothing()
        .returning(_m.member_id, _m.member_type)
    )
