"""Movers from HR: a department change opens an access review of what the old role needed (issue 17).

Once an import's department change is effective (allowed by the gate; a held one waits for its
approval and opens no review), the mover's group memberships at that moment are the access of the
old role: a campaign over them alone (scope ``member``), reviewed by the mover's manager, due in
``DUE``, undecided items kept. The targets' scopes and group rules see the change at once
(propagate re-evaluates them); the review asks a person about the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import structlog

from scimward.governance.reviews import ReviewError, Reviews
from scimward.governance.sources.records import ENTERPRISE
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import GROUP_TYPE
from scimward.store.database import Database
from scimward.store.governance import hub_user
from scimward.store.identity import IdentityStore

log = structlog.get_logger("scimward.governance.sources")

DUE = timedelta(days=14)
REVIEWER = "manager"


@dataclass(frozen=True)
class Move:
    identity_id: str
    user_name: str
    old: str
    new: str


def move_of(identity_id: str, before: dict[str, object], after: dict[str, object]) -> Move | None:
    """A department change of a person who had one (setting the first department is no move)."""
    old, new = _department(before), _department(after)
    if old is None or new == old:
        return None
    return Move(identity_id, str(after.get("userName") or identity_id), old, new or "(none)")


def campaign_name(move: Move, today: date) -> str:
    return f"mover {move.user_name}: {move.old} -> {move.new} {today.isoformat()}"[:128]


async def review_moves(
    database: Database, store: IdentityStore, moves: Sequence[Move], *, actor: str, today: date
) -> list[str]:
    """Open a review of each effective move's memberships; answers the campaigns' names."""
    reviews = Reviews(database, store)
    opened: list[str] = []
    for move in moves:
        user = await hub_user(database, move.identity_id)
        if user is None or (_department(user.doc) or "(none)") != move.new:
            continue  # held (or moved on again): the effective state has not moved
        groups = f'members.value eq "{move.identity_id}"'
        if not await _in_a_group(store, groups):
            continue  # in no group: the old role left no access to review
        name = campaign_name(move, today)
        try:
            await reviews.start(
                name, groups=groups, reviewer=REVIEWER, due=DUE, default="keep", actor=actor, member=move.identity_id
            )
        except ReviewError as exc:  # the same move reviewed already today
            log.info("mover review not opened", identity_id=move.identity_id, reason=str(exc))
            continue
        opened.append(name)
    return opened


async def _in_a_group(store: IdentityStore, groups: str) -> bool:
    async for _ in store.ids(GROUP_TYPE, parse_filter(groups), chunk=1):
        return True
    return False


def _department(doc: dict[str, object]) -> str | None:
    extension = doc.get(ENTERPRISE)
    value = extension.get("department") if isinstance(extension, dict) else None
    return value if isinstance(value, str) and value else None
