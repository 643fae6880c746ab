"""A sparse position index for index paging (RFC 7644 3.4.2.4) of unfiltered lists.

``startIndex=60001`` asks for the row at position 60,000 in (created, id) order. A database finds
it by walking 60,000 index entries, and a client paging at random through 100,000 users makes it do
so for every page. This index keeps the key of every ``STRIDE``-th row, so a page starts from the
nearest anchor with a keyset seek and walks at most ``STRIDE`` entries.

Positions shift only when an identity is removed; new identities are appended (their ``created``
is later). The anchors are therefore valid while the type's removal count (``identity_counts``,
kept in the same transaction as every delete, and read with each page's total) stays the one they
were built at: a removal anywhere, by any process, rebuilds them on the next deep page.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scimward.store._direct import Direct, decode_time
from scimward.store.tables import identities

STRIDE = 1000
_t = identities.c


@functools.cache
def _anchors_statement() -> sa.Select[Any]:
    ranked = (sa.select(_t.created, _t.id, sa.func.row_number().over(order_by=(_t.created, _t.id)).label("rn"))
              .where(_t.resource_type == sa.bindparam("rt")).subquery("ranked"))
    return (sa.select(ranked.c.created, ranked.c.id)
            .where((ranked.c.rn - 1) % sa.bindparam("stride") == 0).order_by(ranked.c.created, ranked.c.id))


@dataclass(frozen=True)
class Anchors:
    removed: int
    keys: list[tuple[datetime, str]]  # keys[i] is the row at position i * STRIDE (0-based)


class PositionIndex:
    def __init__(self, direct: Direct) -> None:
        self.direct = direct
        self._anchors: dict[str, Anchors] = {}
        self._lock = asyncio.Lock()

    async def anchor(self, resource_type: str, offset: int, removed: int) -> tuple[datetime, str, int] | None:
        """(created, id, position) of the nearest anchor at or before ``offset``; None when there is none
        worth using (a shallow offset)."""
        if offset < STRIDE:
            return None
        anchors = self._anchors.get(resource_type)
        if anchors is None or anchors.removed != removed:
            async with self._lock:
                anchors = self._anchors.get(resource_type)
                if anchors is None or anchors.removed != removed:
                    rows = await self.direct.fetch(_anchors_statement(), {"rt": resource_type, "stride": STRIDE})
                    anchors = Anchors(removed, [(decode_time(row[0]), row[1]) for row in rows])
                    self._anchors[resource_type] = anchors
        index = min(offset // STRIDE, len(anchors.keys) - 1)
        if index <= 0:
            return None
        created, identity_id = anchors.keys[index]
        return created, identity_id, index * STRIDE
