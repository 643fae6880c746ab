"""Reads and rows of the non-human identity lifecycle (``governance.nhi``): the NHIs with their
effective state, which owners are still there, the worker's per-NHI state, links per target.

Everything reads the effective state (DESIGN.md): an owner whose deactivation is held is still an
owner; an NHI whose creation is held is not yet an NHI.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scimward.store._direct import decode_json
from scimward.store.chunks import chunks
from scimward.store.database import Database
from scimward.store.tables import effective_states, identities, links, memberships, nhi_states, targets

_t, _e, _s, _l, _m = identities.c, effective_states.c, nhi_states.c, links.c, memberships.c


@dataclass(frozen=True)
class EffectiveIdentity:
    id: str
    resource_type: str
    doc: dict[str, Any]

    @property
    def active(self) -> bool:
        return self.doc.get("active") is not False


@dataclass(frozen=True)
class NhiState:
    identity_id: str
    orphaned_since: datetime | None
    last_action: str | None
    last_action_at: datetime | None
    left_owner: str | None
    owner_fingerprint: str | None = None
    attest_since: datetime | None = None


def _effective(rows: Iterable[Any]) -> list[EffectiveIdentity]:
    out = []
    for row in rows:
        if row.overlaid is not None and row.effective is None:
            continue  # a held creation: not effective yet
        doc = row.effective if row.overlaid is not None else row.doc
        out.append(EffectiveIdentity(row.id, row.resource_type, decode_json(doc)))
    return out


def _select() -> sa.Select[Any]:
    return sa.select(
        _t.id, _t.resource_type, _t.doc, _e.identity_id.label("overlaid"), _e.doc.label("effective")
    ).select_from(identities.outerjoin(effective_states, _e.identity_id == _t.id))


async def effective_of_types(
    database: Database, resource_types: Sequence[str], user_types: Collection[str] = ()
) -> list[EffectiveIdentity]:
    """Every identity of these resource types, and the Users whose ``userType`` is one of ``user_types``
    (lower-cased), with their effective state, by keyset in chunks of 1,000."""
    found: list[EffectiveIdentity] = []
    last = ""
    wanted = sa.or_(
        _t.resource_type.in_(list(resource_types)),
        sa.and_(
            _t.resource_type == "User",
            sa.func.lower(sa.func.coalesce(_user_type(database.dialect), "")).in_(list(user_types) or [""])
            if user_types
            else sa.false(),
        ),
    )
    while True:
        async with database.read() as conn:
            rows = list(await conn.execute(_select().where(wanted, _t.id > last).order_by(_t.id).limit(1000)))
        if not rows:
            return found
        found += _effective(rows)
        last = rows[-1].id


def _user_type(dialect: str) -> sa.ColumnElement[Any]:
    if dialect == "postgresql":
        return sa.func.jsonb_extract_path_text(_t.doc, "userType")
    return sa.func.json_extract(_t.doc, "$.userType")


async def effective_by_id(database: Database, ids: Collection[str]) -> dict[str, EffectiveIdentity]:
    """The identities of ``ids`` that exist, with their effective state."""
    found: dict[str, EffectiveIdentity] = {}
    for chunk in chunks(sorted(ids)):
        async with database.read() as conn:
            found.update({i.id: i for i in _effective(await conn.execute(_select().where(_t.id.in_(list(chunk)))))})
    return found


async def states(database: Database) -> dict[str, NhiState]:
    async with database.read() as conn:
        return {
            row.identity_id: NhiState(
                row.identity_id,
                row.orphaned_since,
                row.last_action,
                row.last_action_at,
                row.left_owner,
                row.owner_fingerprint,
                row.attest_since,
            )
            for row in await conn.execute(sa.select(nhi_states))
        }


async def save_states(database: Database, saved: Sequence[NhiState]) -> None:
    """Replace the rows of these NHIs, in one transaction per 500."""
    for chunk in chunks(saved):
        async with database.write() as conn:
            await conn.execute(nhi_states.delete().where(_s.identity_id.in_([s.identity_id for s in chunk])))
            await conn.execute(
                nhi_states.insert(),
                [
                    {
                        "identity_id": s.identity_id,
                        "orphaned_since": s.orphaned_since,
                        "last_action": s.last_action,
                        "last_action_at": s.last_action_at,
                        "left_owner": s.left_owner,
                        "owner_fingerprint": s.owner_fingerprint,
                        "attest_since": s.attest_since,
                    }
                    for s in chunk
                ],
            )


async def forget_states(database: Database, ids: Collection[str]) -> None:
    for chunk in chunks(sorted(ids)):
        async with database.write() as conn:
            await conn.execute(nhi_states.delete().where(_s.identity_id.in_(list(chunk))))


async def linked_targets(database: Database) -> dict[str, list[tuple[int, str, dict[str, Any]]]]:
    """Identity id -> the targets (id, name, config) where it has an active account."""
    found: dict[str, list[tuple[int, str, dict[str, Any]]]] = {}
    async with database.read() as conn:
        rows = await conn.execute(
            sa.select(_l.identity_id, targets.c.id, targets.c.name, targets.c.config)
            .select_from(links.join(targets, targets.c.id == _l.target_id))
            .where(_l.status == "active", _l.resource_type.in_(["Agent", "User"]))
        )
        for row in rows:
            found.setdefault(row.identity_id, []).append((int(row.id), row.name, decode_json(row.config) or {}))
    return found


async def groups_of(database: Database, member_ids: Collection[str]) -> dict[str, list[str]]:
    """Member id -> the ids of the groups it belongs to (source memberships)."""
    found: dict[str, list[str]] = {}
    for chunk in chunks(sorted(member_ids)):
        async with database.read() as conn:
            for row in await conn.execute(sa.select(_m.member_id, _m.group_id).where(_m.member_id.in_(list(chunk)))):
                found.setdefault(row.member_id, []).append(row.group_id)
    return found
