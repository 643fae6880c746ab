"""What the gate reads and writes inside a change's transaction: the policy in force, targets' scopes,
breaker windows, and what an identity drives downstream (its blast radius). Fixed-shape statements,
compiled once per dialect, run on the write's ``Tx``."""

from __future__ import annotations

import functools
from typing import Any

import sqlalchemy as sa

from scimward.store.governance.changes import dialect_insert as _insert
from scimward.store.tables import (
    FINDING_LIVE,
    breaker_events,
    breakers,
    findings,
    identities,
    link_members,
    links,
    policies,
    targets,
)

_b, _be, _l, _lm, _p, _t = breakers.c, breaker_events.c, links.c, link_members.c, policies.c, targets.c

POLICY_VERSION = sa.select(sa.func.coalesce(sa.func.max(_p.version), 0))
CURRENT_POLICY = sa.select(_p.version, _p.document).order_by(_p.version.desc()).limit(1)
TARGET_SCOPES = sa.select(_t.id, _t.name, _t.config).order_by(_t.id)
OPEN_WITH_REASON = sa.select(_b.target_id, _b.opened, _b.reason)

#: Serialises a target's deprovisioning decisions across processes, so a window is never over-counted.
LOCK_TARGET = sa.select(_t.id).where(_t.id == sa.bindparam("target_id")).with_for_update()
LINKED_ON = sa.select(_l.target_id).where(_l.identity_id == sa.bindparam("identity_id"), _l.status == "active")
ACCOUNTS_ON_TARGET = sa.select(sa.func.count()).where(
    _l.target_id == sa.bindparam("target_id"),
    sa.or_(_l.resource_type == "User", _l.resource_type == "Agent"),
    _l.status == "active",
)
WINDOW_COUNT = sa.select(sa.func.count()).where(
    _be.target_id == sa.bindparam("target_id"), _be.at >= sa.bindparam("since")
)
INSERT_EVENT = breaker_events.insert().values(
    target_id=sa.bindparam("target_id"),
    identity_id=sa.bindparam("identity_id"),
    change_id=sa.bindparam("change_id"),
    at=sa.bindparam("at"),
)
CLEAR_EVENTS = breaker_events.delete().where(_be.target_id == sa.bindparam("target_id"))
CLOSE_BREAKER = breakers.delete().where(_b.target_id == sa.bindparam("target_id"))

#: Per target: the identity's account there (0 or 1) and the memberships it acknowledged as member.
ACCOUNTS_OF = (
    sa.select(_l.target_id, sa.func.count())
    .where(_l.identity_id == sa.bindparam("identity_id"), _l.status == "active")
    .group_by(_l.target_id)
)
ENTITLEMENTS_AS_MEMBER = (
    sa.select(_lm.target_id, sa.func.count())
    .where(_lm.member_id == sa.bindparam("identity_id"))
    .group_by(_lm.target_id)
)
ENTITLEMENTS_AS_GROUP = (
    sa.select(_lm.target_id, sa.func.count()).where(_lm.group_id == sa.bindparam("identity_id")).group_by(_lm.target_id)
)


@functools.cache
def open_breaker(dialect: str) -> Any:
    return (
        _insert(dialect, breakers)
        .values(target_id=sa.bindparam("target_id"), opened=sa.bindparam("at"), reason=sa.bindparam("reason"))
        .on_conflict_do_nothing()
    )


@functools.cache
def breaker_finding(dialect: str) -> Any:
    """The critical finding of a tripped breaker (one open row per target)."""
    f = findings.c
    return (
        _insert(dialect, findings)
        .values(
            target_id=sa.bindparam("target_id"),
            kind="breaker_open",
            severity="critical",
            resource_type="Target",
            subject=sa.bindparam("subject"),
            attribute="",
            detail=sa.bindparam("detail"),
            status="open",
            first_seen=sa.bindparam("at"),
            last_seen=sa.bindparam("at"),
        )
        .on_conflict_do_nothing(
            index_elements=[f.target_id, f.kind, f.subject, f.attribute], index_where=sa.text(FINDING_LIVE)
        )
    )


RESOLVE_BREAKER_FINDING = (
    findings.update()
    .where(
        findings.c.target_id == sa.bindparam("target_id"),
        findings.c.kind == "breaker_open",
        findings.c.status != "resolved",
    )
    .values(status="resolved", resolved_at=sa.bindparam("at"))
)

IS_OPEN = sa.select(_b.target_id).where(_b.target_id == sa.bindparam("target_id"))
_i = identities.c
#: Whether a user exists and is active (the manager a change names).
USER_ACTIVE = sa.select(_i.active).where(_i.id == sa.bindparam("identity_id"), _i.resource_type == "User")
