"""The effective state as the downstream side reads it (DESIGN.md: everything downstream reads it).

An identity's effective state is its source row unless ``effective_states`` says otherwise, and a
group's effective members are its source memberships less the held additions plus the held removals
(``membership_holds``). While nothing is held both overlays are empty, and the reads here cost one
anti-join probe more than reading the source rows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.scim.ast import Filter
from scimward.scim.errors import ScimError
from scimward.scim.evaluate_resource import resource_matches
from scimward.scim.schema import ResourceType
from scimward.store._direct import decode_json
from scimward.store.filter_sql import FilterCompiler
from scimward.store.tables import effective_states, identities, membership_holds, memberships

_e, _h, _m, _t = effective_states.c, membership_holds.c, memberships.c, identities.c


@dataclass(frozen=True)
class HubIdentity:
    """An identity as targets receive it: its effective state, and whether a target's scope takes it."""

    id: str
    doc: dict[str, Any]
    in_scope: bool


def scope_holds(scope: Filter | None, rt: ResourceType, identity_id: str, doc: dict[str, Any]) -> bool:
    """Whether ``scope`` takes an effective state that has no row to compile the filter against."""
    if scope is None:
        return True
    try:
        return resource_matches(scope, {"id": identity_id, **doc}, rt)
    except ScimError:
        return False  # a scope naming what the resource cannot have takes nothing


Lookup = Callable[[list[str], sa.Select[Any], sa.ColumnElement[str]], sa.Select[Any]]


async def read_identities(
    conn: AsyncConnection,
    compiler: FilterCompiler,
    rt: ResourceType,
    ids: list[str],
    scope: Filter | None,
    lookup: Lookup,
) -> dict[str, HubIdentity]:
    """The effective state of those of ``ids`` (one chunk) that have one, and whether ``scope`` takes
    each. ``lookup`` restricts a select to the ids (by the dialect's best plan)."""
    matched = sa.true() if scope is None else sa.case((compiler.compile(scope), sa.true()), else_=sa.false())
    select = (
        sa.select(_t.id, _t.doc, matched.label("in_scope"), _e.identity_id.label("overlaid"), _e.doc.label("effective"))
        .select_from(identities.outerjoin(effective_states, _e.identity_id == _t.id))
        .where(_t.resource_type == rt.name)
    )
    found: dict[str, HubIdentity] = {}
    for row in await conn.execute(lookup(ids, select, _t.id)):
        if row.overlaid is None:
            found[row.id] = HubIdentity(row.id, row.doc, bool(row.in_scope))
        elif row.effective is not None:
            doc = decode_json(row.effective)
            found[row.id] = HubIdentity(row.id, doc, scope_holds(scope, rt, row.id, doc))
    missing = [i for i in ids if i not in found]
    if missing:  # deleted by their source, kept by a held change
        deleted = sa.select(_e.identity_id, _e.doc).where(
            _e.resource_type == rt.name, _e.source_deleted.is_(True), _e.doc.is_not(None)
        )
        for row in await conn.execute(lookup(missing, deleted, _e.identity_id)):
            doc = decode_json(row.doc)
            found[row.identity_id] = HubIdentity(row.identity_id, doc, scope_holds(scope, rt, row.identity_id, doc))
    return found


@functools.cache
def effective_memberships() -> sa.Subquery:
    """(group_id, member_id, member_type) of every effective membership, as a subquery to select from."""
    held_add = sa.exists().where(_h.group_id == _m.group_id, _h.member_id == _m.member_id, _h.kind == "add")
    source = sa.select(_m.group_id, _m.member_id, _m.member_type).where(~held_add)
    kept = sa.select(_h.group_id, _h.member_id, _h.member_type).where(_h.kind == "remove")
    return sa.union_all(source, kept).subquery("effective_memberships")
