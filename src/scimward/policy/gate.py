"""The gate: every change is allowed, held or denied before it becomes the effective state.

Rules (``policy.document``) are CEL expressions over the change; the first matching ``deny`` wins,
then every matching ``hold`` (the most approvals any asks for), else the change is allowed. An
allowed change that would deprovision accounts then meets each affected target's mass-change
breaker: counted in the target's sliding window, and held, with the breaker open, once the window
would pass its threshold.

The policy in force and the targets' scopes are read at most once a second per process, so a policy
applied from the command line reaches every API process within a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from scimward.policy import blast, nhi_rules
from scimward.policy.cel import Reads, context, only
from scimward.policy.document import Policy, policy_from_json
from scimward.policy.guards import RulePlan, plan
from scimward.policy.ownership import source_verdict
from scimward.scim.ast import Filter
from scimward.scim.errors import ScimError
from scimward.scim.evaluate_resource import resource_matches
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import USER_TYPE
from scimward.store import Tx, decode_json
from scimward.store.database import Database
from scimward.store.governance import Change, Decision, RuleMatch, gate_rows, review_rows

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: Fields the gate computes with the database, only when a rule reads them.
COSTLY = frozenset({"blast_radius", "manager"})


@dataclass(frozen=True)
class TargetScope:
    id: int
    name: str
    scope: Filter | None


class PolicyGate:
    """``store.governance.changes.Gate`` with the policy in force."""

    def __init__(self, database: Database, *, refresh_seconds: float = 1.0) -> None:
        self.db = database
        self.postgres = database.dialect == "postgresql"
        self.refresh_seconds = refresh_seconds
        self._plans: dict[tuple[str, str], RulePlan] = {}
        self.policy = Policy()
        self.targets: tuple[TargetScope, ...] = ()
        self._checked = float("-inf")

    @property
    def policy(self) -> Policy:
        return self._policy

    @policy.setter
    def policy(self, policy: Policy) -> None:
        self._policy = policy
        self._plans = {}

    def plan(self, change: Change) -> RulePlan:
        """The rules that can match a change of this type and op, worked out once per policy."""
        key = (change.resource_type, change.op)
        found = self._plans.get(key)
        if found is None:
            found = self._plans[key] = plan(self._policy.rules, *key)
        return found

    # -- the Gate protocol ----------------------------------------------------------------------

    def quick(self, change: Change) -> Decision | None:
        if time.monotonic() - self._checked > self.refresh_seconds:
            return None
        if self.plan(change).fields & COSTLY or self._deprovisions_somewhere(change):
            return None
        return self._decision(change, None, None)

    async def decide(self, tx: Tx, change: Change) -> Decision:
        if time.monotonic() - self._checked > self.refresh_seconds:
            await self.refresh(tx)
        fields = self.plan(change).fields
        radius = await blast.of_change(tx, change) if "blast_radius" in fields else None
        manager = await _manager(tx, change) if "manager" in fields else None
        decision = self._decision(change, radius, manager)
        if decision.action != "deny":
            decision = await _revoked_by_review(tx, change, decision)
        if decision.action == "allow" and self._deprovisions_somewhere(change):
            await self._breaker(tx, change, decision)
        if decision.action == "hold":
            decision.expires = change.created + self.policy.pending_expiry
        return decision

    # -- the policy in force --------------------------------------------------------------------

    async def ensure_fresh(self, tx: Tx) -> None:
        if time.monotonic() - self._checked > self.refresh_seconds:
            await self.refresh(tx)

    async def refresh(self, tx: Tx) -> None:
        version = int((await tx.rows(gate_rows.POLICY_VERSION))[0][0])
        if version != self.policy.version:
            rows = await tx.rows(gate_rows.CURRENT_POLICY)
            self.policy = policy_from_json(decode_json(rows[0][1]), int(rows[0][0])) if rows else Policy()
        scopes = []
        for target_id, name, config in await tx.rows(gate_rows.TARGET_SCOPES):
            text = (decode_json(config) or {}).get("scope")
            try:
                scope = parse_filter(text) if text else None
            except ScimError:
                scope = None  # validated when set; a target that cannot say never counts as leaving it
            scopes.append(TargetScope(int(target_id), str(name), scope))
        self.targets = tuple(scopes)
        self._checked = time.monotonic()

    # -- rules ----------------------------------------------------------------------------------

    def _decision(self, change: Change, radius: dict[str, Any] | None, manager: dict[str, Any] | None) -> Decision:
        """The rules' decision, with attribute ownership's (``policy.ownership``) and the NHI joiner
        requirements (``policy.nhi_rules``) on top."""
        decision = with_ownership(self._rules(change, radius, manager), source_verdict(self.policy.ownership, change))
        return nhi_rules.apply(self.policy.nhi, change, decision)

    def _rules(self, change: Change, radius: dict[str, Any] | None, manager: dict[str, Any] | None) -> Decision:
        applicable = self.plan(change)
        rules = applicable.rules
        if not rules:
            return Decision("allow", blast_radius=radius)
        ctx = context({"change": variables(change, radius, manager, applicable.attributes, applicable.fields)})
        holds: list[RuleMatch] = []
        allows: list[RuleMatch] = []
        approvals = 0
        for rule, matched in zip(rules, applicable.results(ctx), strict=True):
            if not matched or (rule.action == "hold" and holds and rule.approvals <= approvals):
                continue  # no match, or a hold decided already unless a deny matches
            match = RuleMatch(rule.name, rule.action, rule.reason)  # type: ignore[arg-type]
            if rule.action == "deny":
                return Decision("deny", [match], blast_radius=radius)
            if rule.action == "hold":
                holds.append(match)
                approvals = max(approvals, rule.approvals)
            else:
                allows.append(match)
        if holds:
            return Decision("hold", holds, approvals, blast_radius=radius)
        return Decision("allow", allows, blast_radius=radius)

    # -- the mass-change breaker ----------------------------------------------------------------

    def _deprovisions_somewhere(self, change: Change) -> bool:
        return bool(self._leaving(change))

    def _leaving(self, change: Change) -> list[int]:
        """Targets where the change would deactivate or delete the user's (or the non-human identity's)
        account, if it has one: a leaver cascade of NHIs meets the breaker as users do."""
        if change.resource_type not in ("User", "Agent") or not self.policy.breaker.enabled or change.before is None:
            return []
        if change.op in ("delete", "deactivate"):
            return [t.id for t in self.targets]
        if change.resource_type == "Agent":
            return []  # the targets' scopes are over Users
        assert change.after is not None
        return [
            t.id
            for t in self.targets
            if t.scope is not None and _in_scope(t.scope, change.before) and not _in_scope(t.scope, change.after)
        ]

    async def _breaker(self, tx: Tx, change: Change, decision: Decision) -> None:
        settings = self.policy.breaker
        linked = {int(row[0]) for row in await tx.rows(gate_rows.LINKED_ON, {"identity_id": change.identity_id})}
        counted: list[int] = []
        for target_id in sorted(set(self._leaving(change)) & linked):
            if self.postgres:
                await tx.rows(gate_rows.LOCK_TARGET, {"target_id": target_id})
            if await tx.rows(gate_rows.IS_OPEN, {"target_id": target_id}):
                decision.held_by_breaker.append(target_id)
                continue
            since = change.created - settings.window
            count = (
                int((await tx.rows(gate_rows.WINDOW_COUNT, {"target_id": target_id, "since": tx.time(since)}))[0][0])
                + 1
            )
            accounts = int((await tx.rows(gate_rows.ACCOUNTS_ON_TARGET, {"target_id": target_id}))[0][0])
            if settings.trips(count, accounts):
                await self._trip(tx, change, target_id, count, accounts)
                decision.held_by_breaker.append(target_id)
            else:
                counted.append(target_id)
        if decision.held_by_breaker:
            decision.action = "hold"
            return
        await tx.run(
            gate_rows.INSERT_EVENT,
            [
                {
                    "target_id": t,
                    "identity_id": change.identity_id,
                    "change_id": change.id,
                    "at": tx.time(change.created),
                }
                for t in counted
            ],
        )

    async def _trip(self, tx: Tx, change: Change, target_id: int, count: int, accounts: int) -> None:
        name = next((t.name for t in self.targets if t.id == target_id), str(target_id))
        reason = self.policy.breaker.reason(count, accounts, name)
        at = tx.time(change.created)
        await tx.run(gate_rows.open_breaker(self.db.dialect), {"target_id": target_id, "at": at, "reason": reason})
        await tx.run(
            gate_rows.breaker_finding(self.db.dialect),
            {
                "target_id": target_id,
                "subject": name,
                "at": at,
                "detail": reason + "; held until `scimward breaker release` or `discard`",
            },
        )


#: The name a hold for re-granting revoked access carries, as a rule's would.
REVIEW_RULE = "access-review"


async def _revoked_by_review(tx: Tx, change: Change, decision: Decision) -> Decision:
    """A source adding a member whose membership an access review revoked is held, with the review as
    its reason: re-granting revoked access takes a person's approval (issue 15), never a silent sync."""
    if (
        change.resource_type != "Group"
        or not change.members_added
        or change.identity_id is None
        or (change.source or "").startswith(review_rows.REVIEW_SOURCE)
    ):
        return decision
    revoked = await review_rows.revoked_among(tx, change.identity_id, change.members_added)
    if not revoked:
        return decision
    campaigns = sorted({r.campaign_name for r in revoked})
    reason = (
        f"{len(revoked)} member(s) had this access revoked by access review "
        f"{', '.join(repr(c) for c in campaigns)} (by {revoked[0].revoked_by} on "
        f"{revoked[0].revoked:%Y-%m-%d}); re-granting it needs approval"
    )
    holds = [m for m in decision.matched if m.action == "hold"]
    return Decision(
        "hold",
        [*holds, RuleMatch(REVIEW_RULE, "hold", reason)],
        max(decision.approvals_needed, 1),
        blast_radius=decision.blast_radius,
    )


def with_ownership(decision: Decision, verdict: RuleMatch | None) -> Decision:
    """A deny from the rules stands; ownership's deny wins over anything else, its hold over an allow."""
    if verdict is None or decision.action == "deny":
        return decision
    if verdict.action == "deny":
        return Decision("deny", [verdict], blast_radius=decision.blast_radius)
    if decision.action == "hold":
        decision.matched.append(verdict)
        decision.approvals_needed = max(decision.approvals_needed, 1)
        return decision
    return Decision("hold", [verdict], 1, blast_radius=decision.blast_radius)


def variables(
    change: Change,
    radius: dict[str, Any] | None,
    manager: dict[str, Any] | None,
    read: Reads | None = None,
    fields: frozenset[str] | None = None,
) -> dict[str, Any]:
    """The ``change`` a rule sees (docs/policy.md lists the fields). With ``read`` (what the rules read of
    ``before`` and ``after``) only those attributes are handed over, and with ``fields`` only the fields
    rules name: converting a whole document to CEL values costs more than evaluating twenty rules."""
    values = {
        "id": change.id,
        "op": change.op,
        "type": change.resource_type,
        "identity": change.identity_id or "",
        "before": only(change.before, read, "before"),
        "after": only(change.after, read, "after"),
        "changed": change.changed,
        "members_added": change.members_added,
        "members_removed": change.members_removed,
        "email_domains": email_domains(change.after),
        "source": change.source or "",
        "actor": change.actor or "",
        "blast_radius": radius or blast.EMPTY,
        "manager": manager or _NO_MANAGER,
    }
    return values if fields is None else {k: v for k, v in values.items() if k in fields}


def email_domains(doc: dict[str, Any] | None) -> list[str]:
    """The lower-cased domains of a state's e-mail addresses ("" for an address without one)."""
    emails = (doc or {}).get("emails")
    if not isinstance(emails, list):
        return []
    return [str(e.get("value", "")).rpartition("@")[2].lower() if isinstance(e, dict) else "" for e in emails]


_NO_MANAGER = {"id": "", "exists": False, "active": False, "is_self": False}


def manager_of(doc: dict[str, Any] | None) -> str | None:
    extension = (doc or {}).get(ENTERPRISE)
    manager = extension.get("manager") if isinstance(extension, dict) else None
    value = manager.get("value") if isinstance(manager, dict) else None
    return value if isinstance(value, str) and value else None


async def _manager(tx: Tx, change: Change) -> dict[str, Any]:
    manager = manager_of(change.after)
    if manager is None:
        return _NO_MANAGER
    rows = await tx.rows(gate_rows.USER_ACTIVE, {"identity_id": manager})
    return {
        "id": manager,
        "exists": bool(rows),
        "active": bool(rows) and rows[0][0] is not False,
        "is_self": manager == change.identity_id,
    }


def _in_scope(scope: Filter, doc: dict[str, Any]) -> bool:
    try:
        return resource_matches(scope, doc, USER_TYPE)
    except ScimError:
        return False
