"""Configuration changes are changes too: what a new scope, mapping or deprovisioning mode (or a
target's removal) would do to a target, and its hold when it would deprovision past the breaker.

The plan counts from what the target holds (its active links) and what the new scope takes (the
effective state: identities whose effective state differs from their source are taken as their
source states, a few rows at most). A plan over the breaker's threshold is stored as a pending
change of type ``Target`` and applied, like any other, when a second person approves it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from scimward.policy import policies
from scimward.policy.document import BreakerSettings
from scimward.policy.errors import PolicyLayerError
from scimward.scim.errors import ScimError
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.scim.schema import ResourceType
from scimward.store import Direct
from scimward.store.database import Database
from scimward.store.filter_sql import FilterCompiler
from scimward.store.governance import Change, Decision, RuleMatch, audit_records, changes
from scimward.store.ids import new_id
from scimward.store.tables import identities, links, targets
from scimward.store.timeutil import utcnow

SAMPLE = 5
#: Config keys that decide what a target holds; other settings (retries, schedules) are not planned.
PLANNED = ("scope", "push_groups", "group_scope", "mapping", "deprovision")


@dataclass
class Plan:
    """Accounts a configuration change would create, update and deprovision on one target."""

    target: str
    accounts: int = 0
    create: int = 0
    update: int = 0
    deprovision: int = 0
    groups_create: int = 0
    groups_remove: int = 0
    samples: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "accounts": self.accounts,
            "create": self.create,
            "update": self.update,
            "deprovision": self.deprovision,
            "groups_create": self.groups_create,
            "groups_remove": self.groups_remove,
            "samples": self.samples,
        }

    def describe(self) -> str:
        return (
            f"{self.target}: create {self.create}, update {self.update}, deprovision {self.deprovision} "
            f"of {self.accounts} accounts; groups: create {self.groups_create}, remove {self.groups_remove}"
        )


class ConfigChangeHeld(PolicyLayerError):
    """A configuration change held for a second person's approval; nothing changed yet."""

    def __init__(self, change_id: str, plan: Plan) -> None:
        super().__init__(
            f"held for approval as change {change_id}: it would deprovision {plan.deprovision} of "
            f"{plan.accounts} accounts on {plan.target}, past the breaker's threshold "
            f"(scimward changes approve {change_id} --as SOMEONE-ELSE)"
        )
        self.change_id = change_id
        self.plan = plan


def planned(config: dict[str, Any] | None) -> dict[str, Any]:
    return {key: (config or {}).get(key) for key in PLANNED}


async def plan_config(
    database: Database, target_id: int, name: str, old: dict[str, Any], new: dict[str, Any] | None
) -> Plan:
    """What replacing ``old`` with ``new`` (None: removing the target) does to the target's accounts.

    Counts and a few names, all in SQL: the target's accounts are counted from its links, the new
    scope's identities in the scope's own index where it has one, and only the identities in scope
    are matched with the links; a sample is read only where its count is not nought.
    """
    plan = Plan(name)
    async with database.read() as conn:
        if new is None:
            plan.accounts = plan.deprovision = await _linked_count(conn, target_id, USER_TYPE)
            if plan.deprovision:
                plan.samples["deprovision"] = await _names(conn, _linked(target_id, USER_TYPE))
            return plan
        scope = _compiled(USER_TYPE, new.get("scope"), database.dialect)
        plan.accounts, plan.deprovision, plan.create, staying = await _tally(conn, target_id, USER_TYPE, scope)
        plan.samples = {
            "deprovision": await _names(conn, _linked(target_id, USER_TYPE).where(~scope)) if plan.deprovision else [],
            "create": await _names(conn, _unlinked(target_id, USER_TYPE).where(scope)) if plan.create else [],
        }
        if (old.get("mapping") != new.get("mapping")) or (old.get("deprovision") != new.get("deprovision")):
            plan.update = staying
        if new.get("push_groups", True):
            group_scope = _compiled(GROUP_TYPE, new.get("group_scope"), database.dialect)
            _, plan.groups_remove, plan.groups_create, _ = await _tally(conn, target_id, GROUP_TYPE, group_scope)
        else:
            plan.groups_remove = await _linked_count(conn, target_id, GROUP_TYPE)
    return plan


def over_breaker(plan: Plan, breaker: BreakerSettings) -> bool:
    """Whether the plan deprovisions past the breaker's threshold: then a second person must approve it."""
    return breaker.enabled and (
        plan.deprovision > breaker.max_count
        or (
            plan.deprovision >= breaker.min_count
            and plan.deprovision * 100 > breaker.max_percent * max(plan.accounts, 1)
        )
    )


async def would_hold(database: Database, plan: Plan) -> bool:
    """Whether ``gate_config`` would hold this plan under the policy in force now (a preview says so)."""
    return over_breaker(plan, (await policies.current(database)).breaker)


async def gate_config(
    database: Database,
    direct: Direct,
    target_id: int,
    name: str,
    old: dict[str, Any],
    new: dict[str, Any] | None,
    actor: str,
    source: str = "cli",
) -> Plan:
    """Record the configuration change, or hold it (``ConfigChangeHeld``) when its plan would
    deprovision past the breaker's threshold. The caller applies it when this returns."""
    plan = await plan_config(database, target_id, name, old, new)
    policy = await policies.current(database)
    over = over_breaker(plan, policy.breaker)
    now = utcnow()
    change = Change(
        new_id(),
        "Target",
        name,
        "delete" if new is None else "update",
        planned(old),
        None if new is None else planned(new),
        [k for k in PLANNED if (old or {}).get(k) != (new or {}).get(k)],
        source,
        actor,
        now,
    )
    if over:
        reason = f"the change would deprovision {plan.deprovision} of {plan.accounts} accounts"
        decision = Decision(
            "hold",
            [RuleMatch("breaker", "hold", reason)],
            1,
            blast_radius=plan.to_json(),
            expires=now + policy.pending_expiry,
        )
    else:
        decision = Decision("allow", blast_radius=plan.to_json())
    status = "pending" if over else "applied"
    async with direct.transaction() as tx:
        await changes.record(tx, change, decision, status)
        await audit_records.change(change, decision, status).append(tx)
    if over:
        raise ConfigChangeHeld(change.id, plan)
    return plan


async def apply_config(database: Database, change: changes.ChangeRow) -> None:
    """Apply an approved configuration change to its target (``change.identity_id`` is its name)."""
    subject = f"target:{change.identity_id}"
    async with database.write() as conn:
        if change.op == "delete":
            await conn.execute(targets.delete().where(targets.c.name == change.identity_id))
            await audit_records.config(
                subject, change.actor or "admin", {"action": "remove", "change": change.id}
            ).append(conn)
            return
        row = (await conn.execute(sa.select(targets.c.config).where(targets.c.name == change.identity_id))).first()
        if row is None:
            return  # removed meanwhile: nothing to apply
        await conn.execute(
            targets.update()
            .where(targets.c.name == change.identity_id)
            .values(config={**row.config, **(change.after or {})})
        )
        await audit_records.config(
            subject,
            change.actor or "admin",
            {"action": "update", "change": change.id, "config": sorted(change.after or {})},
        ).append(conn)


def _compiled(rt: ResourceType, text: str | None, dialect: str) -> sa.ColumnElement[bool]:
    if not text:
        return sa.true()
    try:
        return FilterCompiler(rt, dialect).compile(parse_filter(text))
    except ScimError as exc:
        raise PolicyLayerError(f"scope {text!r}: {exc.detail}") from exc


def _linked(target_id: int, rt: ResourceType) -> sa.Select[Any]:
    """The target's accounts of ``rt`` in the order of the links' key (the identity's id): a sample
    walks the links' primary key and stops at its few names."""
    t, link = identities.c, links.c
    return (
        sa.select(t.id, sa.func.coalesce(t.user_name, t.display_name).label("name"))
        .select_from(links)
        .join(identities, t.id == link.identity_id)
        .where(link.target_id == target_id, link.status == "active", t.resource_type == rt.name)
        .order_by(link.identity_id)
    )


def _unlinked(target_id: int, rt: ResourceType) -> sa.Select[Any]:
    t, link = identities.c, links.c
    return (
        sa.select(t.id, sa.func.coalesce(t.user_name, t.display_name).label("name"))
        .where(
            t.resource_type == rt.name,
            ~sa.exists().where(link.identity_id == t.id, link.target_id == target_id, link.status == "active"),
        )
        .order_by(t.id)
    )


def _has_active_link(target_id: int, rt: ResourceType) -> sa.ColumnElement[bool]:
    """Whether the identity has an active account of its type on the target, looked up in the links'
    key ``(target_id, identity_id)`` for each identity.

    A scalar subquery rather than ``EXISTS``: PostgreSQL turns an ``EXISTS`` into a semi-join, and
    then prices a lookup per identity in scope (9,900 for ``userName sw "user01"`` of 100,000) at a
    random read each, above hashing every link of the target (100,000) once; it does not unnest a
    scalar subquery, so this one is looked up per identity, as SQLite does either form. The key
    makes it one row at most.
    """
    link = links.c
    account = sa.select(sa.literal(1)).where(
        link.target_id == target_id,
        link.identity_id == identities.c.id,
        link.status == "active",
        link.resource_type == rt.name,
    )
    return account.scalar_subquery().is_not(None)


def _accounts(target_id: int, rt: ResourceType) -> sa.Select[Any]:
    """The count of the target's accounts of ``rt``: its active links, in their index (``ix_links_target_status``).

    What the target holds, the identity looked up for none of them: an account whose identity is
    gone (deleted, its deprovisioning not yet pushed) counts among the accounts, and among those
    leaving the scope, as it will be deprovisioned.
    """
    link = links.c
    return sa.select(sa.func.count()).where(
        link.target_id == target_id, link.status == "active", link.resource_type == rt.name
    )


async def _linked_count(conn: Any, target_id: int, rt: ResourceType) -> int:
    return int((await conn.execute(_accounts(target_id, rt))).scalar_one())


async def _tally(
    conn: Any, target_id: int, rt: ResourceType, scope: sa.ColumnElement[bool]
) -> tuple[int, int, int, int]:
    """(linked now, linked and leaving the scope, unlinked and entering it, linked and staying in it).

    Three counts in one statement, none a join of every identity with its link: the linked ones from
    the links, the scope's from the identities (an index range for ``sw`` and ``eq``, trigrams for
    ``co`` on PostgreSQL), and, in the same pass, those of them whose link is looked up and found.
    The two others follow: leaving = linked - staying, entering = in scope - staying.
    """
    t = identities.c
    query = (
        sa.select(
            _accounts(target_id, rt).scalar_subquery(),
            sa.func.count(),
            sa.func.count().filter(_has_active_link(target_id, rt)),
        )
        .select_from(identities)
        .where(t.resource_type == rt.name, scope)
    )
    linked, in_scope, staying = (int(n) for n in (await conn.execute(query)).one())
    return linked, linked - staying, in_scope - staying, staying


async def _names(conn: Any, query: sa.Select[Any]) -> list[str]:
    return [str(row.name) for row in await conn.execute(query.limit(SAMPLE))]
