"""A sparse position index for index paging (RFC 7644 3.4.2.4) of unfiltered lists.

``startIndex=60001`` asks for the row at position 60,000 in (created, id) order. A database finds
it by walking 60,000 index entries, and a client paging at random through 100,000 users makes it do
so for every page. This index keeps the key of every ``STRIDE``-th row, so a page starts from the
nearest anchor with a keyset seek and walks at most ``STRIDE`` entries.

An identity's ``created`` is taken before its transaction commits, so rows are not always appended:
another API process, a writer that waited for the lock, or a late group commit can commit a row
that sorts before an anchor, and a removal anywhere shifts every position after it. So the anchors
are checked in the snapshot of every page that uses them (``Direct.snapshot``), at a bounded cost:

* the type's removal count (``identity_counts``, kept in the same transaction as every delete) is
  the one they were built at: no row they counted has gone; and
* the rows from the last anchor on (at most ``2 * STRIDE`` of them are counted) are the total minus
  the last anchor's position: no row has come in before it.

Then the rows before the last anchor are exactly the rows they were built from, so every anchor is
at its position. Otherwise, or when appends have grown the tail past ``2 * STRIDE``, they are rebuilt
in the page's snapshot. A snapshot with the total and removal count of the last one found exact holds
the same rows (no removal, so no insert either), so a list nobody writes to pays for no count.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scimward.store._direct import Tx, decode_time
from scimward.store.tables import identities

STRIDE = 1000
_t = identities.c


@functools.cache
def _anchors_statement() -> sa.Select[Any]:
    ranked = (
        sa.select(_t.created, _t.id, sa.func.row_number().over(order_by=(_t.created, _t.id)).label("rn"))
        .where(_t.resource_type == sa.bindparam("rt"))
        .subquery("ranked")
    )
    return (
        sa.select(ranked.c.created, ranked.c.id)
        .where((ranked.c.rn - 1) % sa.bindparam("stride") == 0)
        .order_by(ranked.c.created, ranked.c.id)
    )


@functools.cache
def _tail_statement() -> sa.Select[Any]:
    """How many rows sort at or after a key, counting at most ``cap`` of them."""
    tail = (
        sa.select(sa.literal(1).label("one"))
        .where(
            _t.resource_type == sa.bindparam("rt"),
            sa.tuple_(_t.created, _t.id) >= sa.tuple_(sa.bindparam("created", type_=sa.DateTime), sa.bindparam("id")),
        )
        .limit(sa.bindparam("cap"))
        .subquery("tail")
    )
    return sa.select(sa.func.count()).select_from(tail)


@dataclass
class Anchors:
    removed: int
    keys: list[tuple[datetime, str]]  # keys[i] is the row at position i * STRIDE (0-based)
    #: (total, removed) of a snapshot in which they were found exact.
    exact_at: tuple[int, int] | None = None

    @property
    def last_position(self) -> int:
        return (len(self.keys) - 1) * STRIDE


class PositionIndex:
    def __init__(self) -> None:
        self._anchors: dict[str, Anchors] = {}
        self._lock = asyncio.Lock()

    async def anchor(
        self, read: Tx, resource_type: str, offset: int, total: int, removed: int
    ) -> tuple[datetime, str, int] | None:
        """(created, id, position) of the nearest anchor at or before ``offset`` in the snapshot
        ``read`` sees (where the type has ``total`` rows and ``removed`` removals); None when there
        is none worth using (a shallow offset)."""
        if offset < STRIDE:
            return None
        anchors = self._anchors.get(resource_type)
        if anchors is None or not await self._exact(read, resource_type, anchors, total, removed):
            async with self._lock:  # one rebuild at a time; a rebuild another page made may fit this one
                anchors = self._anchors.get(resource_type)
                if anchors is None or not await self._exact(read, resource_type, anchors, total, removed):
                    rows = await read.rows(_anchors_statement(), {"rt": resource_type, "stride": STRIDE})
                    anchors = Anchors(removed, [(decode_time(row[0]), row[1]) for row in rows], (total, removed))
                    self._anchors[resource_type] = anchors
        index = min(offset // STRIDE, len(anchors.keys) - 1)
        if index <= 0:
            return None
        created, identity_id = anchors.keys[index]
        return created, identity_id, index * STRIDE

    @staticmethod
    async def _exact(read: Tx, resource_type: str, anchors: Anchors, total: int, removed: int) -> bool:
        """Whether every anchor is at its position in ``read``'s snapshot (see the module's text)."""
        if anchors.removed != removed or not anchors.keys:
            return False
        if anchors.exact_at == (total, removed):
            return True
        created, identity_id = anchors.keys[-1]
        cap = 2 * STRIDE
        rows = await read.rows(
            _tail_statement(), {"rt": resource_type, "created": read.time(created), "id": identity_id, "cap": cap}
        )
        tail = int(rows[0][0])
        exact = tail < cap and total - tail == anchors.last_position
        if exact:
            anchors.exact_at = (total, removed)
        return exact
