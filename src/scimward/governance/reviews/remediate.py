"""Removing memberships a review (or an expiry) revoked: one change per group, through the gate.

A revoke is a PATCH of the group that removes the members, with the review as its source
(``review:CAMPAIGN``) and the decider as its actor. The gate decides it as any change: allowed, the
effective state loses the members at once and the outbox tells every target; held (a rule asks for
approval), it waits like any held change. Each member's outcome is read back from the effective
state afterwards: ``applied``, ``held``, ``gone`` (it was no longer a member) or ``failed``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scimward.scim.errors import ScimError
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource_types import GROUP_TYPE
from scimward.store.database import Database
from scimward.store.governance import reviews as rows
from scimward.store.identity import IdentityStore

#: Members removed per PATCH: a change names each; a group of 100,000 is revoked in a few changes.
BATCH = 1000


@dataclass(frozen=True)
class Removal:
    member_id: str
    outcome: str  # applied, held, gone, failed
    detail: str | None = None
    change_id: str | None = None


async def remove_members(
    database: Database, store: IdentityStore, removals: Mapping[str, Sequence[str]], *, source: str, actor: str
) -> dict[tuple[str, str], Removal]:
    """Remove ``removals`` (group id -> member ids) through the gate; each (group, member)'s outcome."""
    outcomes: dict[tuple[str, str], Removal] = {}
    for group_id, member_ids in removals.items():
        async with database.read() as conn:
            before = {m for m, _ in (await rows.members_of(conn, [group_id]))[group_id]}
        wanted = list(dict.fromkeys(member_ids))
        for member in wanted:
            if member not in before:
                outcomes[(group_id, member)] = Removal(member, "gone", "no longer a member")
        present = [m for m in wanted if m in before]
        failed: dict[str, str] = {}
        for start in range(0, len(present), BATCH):
            batch = present[start : start + BATCH]
            body = {
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": "remove", "path": "members", "value": [{"value": m} for m in batch]}],
            }
            try:
                await store.patch(GROUP_TYPE, group_id, body, source=source, actor=actor)
            except ScimError as exc:  # denied by a rule, the group gone: recorded, the others go on
                failed.update({m: exc.detail for m in batch})
        if not present:
            continue
        async with database.read() as conn:
            after = {m for m, _ in (await rows.members_of(conn, [group_id]))[group_id]}
            pending = await rows.pending_change(conn, group_id)
            change_id = await rows.latest_change_by(conn, group_id, source)
        for member in present:
            if member in failed:
                outcomes[(group_id, member)] = Removal(member, "failed", failed[member])
            elif member not in after:
                outcomes[(group_id, member)] = Removal(member, "applied", None, change_id)
            elif pending is not None:
                outcomes[(group_id, member)] = Removal(member, "held", f"held by the gate: change {pending}", pending)
            else:
                outcomes[(group_id, member)] = Removal(member, "failed", "still a member after the change")
    return outcomes
