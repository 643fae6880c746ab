"""Group hygiene findings, opened and resolved as the state changes (``store.governance.observe``).

One pass looks at every group and opens, keeps or resolves (through the findings catalogue, tagged
NIST CSF 2.0 PR.AA-05, and OWASP NHI5 where the member is non-human):

- a group without an owner; a privileged group without a review cadence;
- a catch-all group: its members are more than ``catch_all_share`` of the active users (with at least
  ``CATCH_ALL_MIN_USERS`` of them, so that a small directory is not all catch-alls);
- an inactive identity that is still a member of a privileged group;
- a time-bound membership past its expiry (its removal was held or failed);
- a group whose review is overdue: its cadence has passed since its last campaign, or since it was made.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.governance.catalogue import observation
from scimward.governance.groups import governance_of
from scimward.governance.reviews.context import is_active, is_non_human
from scimward.store.database import Database
from scimward.store.governance import Observation, Observed, observe
from scimward.store.governance import reviews as rows
from scimward.store.timeutil import utcnow

KINDS = (
    "group_without_owner",
    "privileged_group_without_cadence",
    "catch_all_group",
    "privileged_member_inactive",
    "privileged_nhi_inactive",
    "membership_expired",
    "nhi_membership_expired",
    "review_overdue",
)
#: The share of active users above which a group is a catch-all.
CATCH_ALL_SHARE = 0.8
CATCH_ALL_MIN_USERS = 10


async def observe_groups(
    database: Database, *, now: datetime | None = None, catch_all_share: float = CATCH_ALL_SHARE
) -> Observed:
    now = now or utcnow()
    found: list[Observation] = []
    async with database.read() as conn:
        groups = await rows.all_groups(conn)
        counts = await rows.member_counts(conn)
        active_users = await rows.active_user_count(conn)
        reviewed = await rows.last_campaign_of_groups(conn)
        created = await rows.created_of(conn, [g.id for g in groups])
        for group in groups:
            gov = governance_of(group.id, group.name, group.doc)
            owner = ", ".join(gov.owner_names) or None
            where = {"resource_type": "Group", "identity_id": group.id, "owner": owner}
            if not gov.owners:
                found.append(
                    observation(
                        "group_without_owner",
                        group.name,
                        **where,
                        detail=f"{group.name}: no owner (scimward group set --owner USER)",
                    )
                )
            if gov.privileged and gov.review_cadence is None:
                found.append(
                    observation(
                        "privileged_group_without_cadence",
                        group.name,
                        **where,
                        detail=f"{group.name} is privileged and never scheduled for review "
                        "(scimward group set --review-every 90d)",
                    )
                )
            members = counts.get(group.id, 0)
            if active_users >= CATCH_ALL_MIN_USERS and members > catch_all_share * active_users:
                found.append(
                    observation(
                        "catch_all_group",
                        group.name,
                        **where,
                        data={"members": members, "active_users": active_users},
                        detail=f"{group.name} holds {members} of {active_users} active users",
                    )
                )
            if gov.review_cadence is not None and members:  # an empty group has nothing to review
                since = reviewed.get(group.id) or created.get(group.id)
                if since is not None and since + timedelta(days=gov.review_cadence) <= now:
                    found.append(
                        observation(
                            "review_overdue",
                            group.name,
                            **where,
                            detail=f"{group.name}: reviewed every {gov.review_cadence} days, last {since:%Y-%m-%d}",
                        )
                    )
            if gov.privileged or gov.membership_expires is not None:
                found += await _member_findings(conn, group, gov.privileged, gov.membership_expires, owner, now)
        async with database.write() as write:
            return await observe(write, KINDS, found, now=now)


async def _member_findings(
    conn: AsyncConnection,
    group: rows.IdentityRow,
    privileged: bool,
    expires: int | None,
    owner: str | None,
    now: datetime,
) -> Sequence[Observation]:
    members = (await rows.members_of(conn, [group.id]))[group.id]
    people = await rows.identities_by_id(conn, [m for m, _ in members])
    grants = await rows.grants(conn, [group.id]) if expires is not None else {}
    found: list[Observation] = []
    for member_id, _type in members:
        person = people.get(member_id)
        if person is None:
            continue
        nhi = is_non_human(person.doc)
        where = {"attribute": person.name, "resource_type": "Group", "identity_id": member_id, "owner": owner}
        if privileged and not is_active(person.doc):
            found.append(
                observation(
                    "privileged_nhi_inactive" if nhi else "privileged_member_inactive",
                    group.name,
                    **where,
                    detail=f"{person.name} is inactive and still in {group.name}",
                )
            )
        grant = grants.get((group.id, member_id))
        if expires is not None and grant is not None and grant.at + timedelta(days=expires) <= now:
            found.append(
                observation(
                    "nhi_membership_expired" if nhi else "membership_expired",
                    group.name,
                    **where,
                    detail=f"{person.name} in {group.name}: granted {grant.at:%Y-%m-%d}, expired after {expires} days",
                )
            )
    return found
