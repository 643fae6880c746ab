"""Batch reads (and the two writes) a reconcile needs: one query per page of accounts read back.

A reconcile streams a target's accounts a page at a time and asks, for the whole page at once:
which links hold these remote ids, what do the identities behind them look like now and are they in
scope, which of them have a push on its way. Groups' members are compared as sets of remote ids.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from scimward.store.chunks import chunks
from scimward.store.provisioning.batch_reads import BatchReads
from scimward.store.provisioning.effective import HubIdentity, effective_memberships
from scimward.store.provisioning.links import Link
from scimward.store.tables import link_members, links, outbox, push_log
from scimward.store.timeutil import utcnow

__all__ = ["HubIdentity", "Readback"]

_l, _lm = links.c, link_members.c


class Readback(BatchReads):
    """What a reconcile reads, besides the identities and links by id that every batch reads (``BatchReads``)."""

    async def links_by_remote(
        self, target_id: int, resource_types: str | Collection[str] | None, remote_ids: Collection[str]
    ) -> dict[str, Link]:
        """remote id -> link, for links of one resource type, or of several (an NHI's account may sit
        among a target's Users), or of any (None)."""
        kinds = [resource_types] if isinstance(resource_types, str) else resource_types
        found: dict[str, Link] = {}
        async with self.db.read() as conn:
            for chunk in chunks(remote_ids):
                query = sa.select(links).where(_l.target_id == target_id, _l.remote_id.in_(chunk))
                if kinds is not None:
                    query = query.where(_l.resource_type.in_(list(kinds)))
                rows = await conn.execute(query)
                found.update({row.remote_id: Link.of(row) for row in rows})
        return found

    async def in_flight(self, target_id: int, identity_ids: Collection[str]) -> set[str]:
        """Identities with a push to this target waiting that has not failed yet: on their way."""
        o = outbox.c
        found: set[str] = set()
        async with self.db.read() as conn:
            for chunk in chunks(identity_ids):
                rows = await conn.execute(
                    sa.select(o.identity_id).where(o.target_id == target_id, o.attempts == 0, o.identity_id.in_(chunk))
                )
                found.update(row[0] for row in rows)
        return found

    async def desired_members(self, target_id: int, group_id: str) -> dict[str, str]:
        """remote id -> identity id of the group's members in the hub that are actively linked on the
        target: what propagate pushes (``LinkStore.member_delta``)."""
        em = effective_memberships()
        m = em.c
        async with self.db.read() as conn:
            joined = em.join(
                links, sa.and_(_l.target_id == target_id, _l.identity_id == m.member_id, _l.status == "active")
            )
            rows = await conn.execute(
                sa.select(_l.remote_id, m.member_id).select_from(joined).where(m.group_id == group_id)
            )
            return {row[0]: row[1] for row in rows}

    async def acknowledged_members(self, target_id: int, group_id: str) -> dict[str, str]:
        """remote id -> identity id of the memberships the target acknowledged (the remote id as
        ``member_delta`` computes it: the member's link, else the row's own id)."""
        remote = sa.func.coalesce(
            sa.select(_l.remote_id).where(_l.target_id == target_id, _l.identity_id == _lm.member_id).scalar_subquery(),
            _lm.member_id,
        )
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(remote, _lm.member_id).where(_lm.target_id == target_id, _lm.group_id == group_id)
            )
            return {row[0]: row[1] for row in rows}

    async def groups_of(self, member_ids: Collection[str]) -> set[str]:
        """The groups these identities are effectively members of in the hub."""
        m = effective_memberships().c
        found: set[str] = set()
        async with self.db.read() as conn:
            for chunk in chunks(member_ids):
                found.update(
                    row[0] for row in await conn.execute(sa.select(m.group_id).where(m.member_id.in_(chunk)).distinct())
                )
        return found

    async def log_repairs(self, target_id: int, enqueued: datetime, entries: Sequence[tuple[str, str]]) -> None:
        """One push-log row per repair a reconcile enqueued: (identity id, what and why)."""
        if not entries:
            return
        now = utcnow()
        async with self.db.write() as conn:
            await conn.execute(
                push_log.insert(),
                [
                    {
                        "target_id": target_id,
                        "identity_id": identity_id,
                        "action": "repair",
                        "outcome": "enqueued",
                        "enqueued": enqueued,
                        "finished": now,
                        "detail": detail[:2000],
                    }
                    for identity_id, detail in entries
                ],
            )

    async def record_states(self, target_id: int, states: Sequence[tuple[str, dict[str, Any], str]]) -> None:
        """Set links' last pushed state and status to what the target actually holds (a repair)."""
        if not states:
            return
        async with self.db.write() as conn:
            for identity_id, state, status in states:
                await conn.execute(
                    links.update()
                    .where(_l.target_id == target_id, _l.identity_id == identity_id)
                    .values(state=state, status=status)
                )
