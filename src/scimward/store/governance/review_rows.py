"""What the gate reads of access reviews inside a change's transaction: the memberships a review
revoked (``revoked_memberships``), so that a source re-granting one is held with the review as its
reason rather than silently undoing the decision (issue 15)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scimward.store._direct import Tx, decode_time
from scimward.store.identity.writes import id_in
from scimward.store.tables import revoked_memberships

#: Changes from a review carry this source prefix (``review:CAMPAIGN``).
REVIEW_SOURCE = "review:"

_r = revoked_memberships.c


@dataclass(frozen=True)
class Revoked:
    member_id: str
    campaign_name: str
    revoked: datetime
    revoked_by: str


@functools.cache
def _revoked_among(dialect: str) -> Any:
    return (
        sa.select(_r.member_id, _r.campaign_name, _r.revoked, _r.revoked_by)
        .where(_r.group_id == sa.bindparam("group_id"), id_in(_r.member_id, dialect))
        .order_by(_r.member_id)
    )


async def revoked_among(tx: Tx, group_id: str, member_ids: Sequence[str]) -> list[Revoked]:
    """Those of ``member_ids`` whose membership of ``group_id`` a review revoked."""
    if not member_ids:
        return []
    dialect = "postgresql" if tx.postgres else "sqlite"
    rows = await tx.rows(_revoked_among(dialect), {"group_id": group_id, "ids": tx.ids(list(member_ids))})
    return [Revoked(str(r[0]), str(r[1]), decode_time(r[2]), str(r[3])) for r in rows]
