"""Prebuilt read statements: built once per dialect, so a request only binds parameters.

A User's ``groups`` (RFC 7643 4.1.2) come back in the same row as the user, aggregated as JSON by
a correlated subquery over ``memberships``, so reading a user is one round trip.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from scimward.store.identity.writes import id_in
from scimward.store.tables import JsonDoc, identities, memberships

_t = identities.c


@functools.cache
def groups_of_member(dialect: str) -> sa.ScalarSelect[Any]:
    """``[[group id, displayName], ...]`` for the identity of the enclosing row, by display name."""
    g = identities.alias("member_group")
    m = memberships.alias("member_of")
    joined = m.join(g, g.c.id == m.c.group_id)
    if dialect == "postgresql":
        pair = sa.func.jsonb_build_array(m.c.group_id, g.c.display_name)
        agg = sa.func.coalesce(
            sa.func.jsonb_agg(postgresql.aggregate_order_by(pair, g.c.display_name_lower)),
            sa.literal_column("'[]'::jsonb"),
        )
        return sa.select(agg).select_from(joined).where(m.c.member_id == _t.id).scalar_subquery()
    ordered = (
        sa.select(m.c.group_id, g.c.display_name)
        .select_from(joined)
        .where(m.c.member_id == _t.id)
        .order_by(g.c.display_name_lower)
        .correlate(identities)
        .subquery("ordered_groups")
    )
    pair = sa.func.json_array(ordered.c.group_id, ordered.c.display_name)
    return sa.select(sa.func.json_group_array(pair)).select_from(ordered).scalar_subquery()


def identity_columns(dialect: str, with_groups: bool) -> list[Any]:
    columns: list[Any] = [_t.id, _t.doc, _t.created, _t.last_modified, _t.version]
    if with_groups:
        columns.append(sa.type_coerce(groups_of_member(dialect), JsonDoc).label("groups"))
    return columns


@functools.cache
def by_id(dialect: str, with_groups: bool) -> sa.Select[Any]:
    return sa.select(*identity_columns(dialect, with_groups)).where(
        _t.id == sa.bindparam("identity_id"), _t.resource_type == sa.bindparam("resource_type")
    )


MEMBERS_OF = (
    sa.select(memberships.c.group_id, memberships.c.member_id, memberships.c.member_type)
    .where(memberships.c.group_id.in_(sa.bindparam("group_ids", expanding=True)))
    .order_by(memberships.c.member_id)
)


def groups_out(pairs: Any) -> list[dict[str, str]]:
    return [{"value": group_id, "display": display, "type": "direct"} for group_id, display in pairs or ()]


@functools.cache
def by_user_name(dialect: str, with_groups: bool) -> sa.Select[Any]:
    """``userName eq`` (case-insensitive, unique): the lookup identity providers make before every create."""
    return sa.select(*identity_columns(dialect, with_groups)).where(
        _t.resource_type == sa.bindparam("resource_type"), _t.user_name_lower == sa.bindparam("user_name")
    )


def page_of(
    dialect: str, with_groups: bool, where: Sequence[Any], order: Sequence[Any], offset: Any, limit: Any | None
) -> sa.Select[Any]:
    """One page of a list by index (RFC 7644 3.4.2.4): the page's ids first (an index-only scan when
    unsorted), then only their rows, so skipped rows are never read and groups are aggregated for the
    page alone. Every index page is this statement: ``page`` and ``page_from`` are its fixed shapes."""
    ids = sa.select(_t.id).where(*where).order_by(*order).offset(offset)
    if limit is not None:
        ids = ids.limit(limit)
    page_ids = ids.subquery("page")
    return sa.select(*identity_columns(dialect, with_groups)).join(page_ids, page_ids.c.id == _t.id).order_by(*order)


@functools.cache
def page(dialect: str, with_groups: bool) -> sa.Select[Any]:
    """One page of an unfiltered, unsorted list."""
    return page_of(
        dialect,
        with_groups,
        [_t.resource_type == sa.bindparam("resource_type")],
        [_t.created, _t.id],
        sa.bindparam("offset"),
        sa.bindparam("limit"),
    )


@functools.cache
def members_of_many(dialect: str) -> sa.Select[Any]:
    """``MEMBERS_OF`` on the driver, the group ids bound as one parameter (``Tx.ids``)."""
    return (
        sa.select(memberships.c.group_id, memberships.c.member_id, memberships.c.member_type)
        .where(id_in(memberships.c.group_id, dialect, "group_ids"))
        .order_by(memberships.c.member_id)
    )


MEMBERS_OF_ONE = (
    sa.select(memberships.c.member_id, memberships.c.member_type)
    .where(memberships.c.group_id == sa.bindparam("group_id"))
    .order_by(memberships.c.member_id)
)


@functools.cache
def page_from(dialect: str, with_groups: bool) -> sa.Select[Any]:
    """``page``, starting from a known row (a position anchor) instead of the list's head."""
    start = sa.tuple_(_t.created, _t.id) >= sa.tuple_(
        sa.bindparam("from_created", type_=sa.DateTime), sa.bindparam("from_id")
    )
    return page_of(
        dialect,
        with_groups,
        [_t.resource_type == sa.bindparam("resource_type"), start],
        [_t.created, _t.id],
        sa.bindparam("offset"),
        sa.bindparam("limit"),
    )
