"""The gate skips a rule whose leading ``change.type`` / ``change.op`` test fails, and decides
exactly as if it had evaluated every rule (policy/guards.py)."""

from __future__ import annotations

import itertools
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from scimward.policy.blast import is_privileged
from scimward.policy.cel import compile_expression, context, reads
from scimward.policy.document import Policy, parse_policy
from scimward.policy.gate import ENTERPRISE, PolicyGate, variables
from scimward.policy.guards import Guard, leading_guards, plan
from scimward.scim.resource_types import GOVERNANCE_GROUP_SCHEMA
from scimward.store.database import Database
from scimward.store.governance import Change, Decision, RuleMatch
from tests.conftest import repo_root

OPS = ("create", "update", "deactivate", "reactivate", "delete")
TYPES = ("User", "Group", "Target")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            'change.type == "User" && change.op == "create" && x',
            (Guard("type", frozenset({"User"}), False), Guard("op", frozenset({"create"}), False)),
        ),
        (' change.op != "delete" && y', (Guard("op", frozenset({"delete"}), True),)),
        ('change.op in ["delete", "deactivate"] && z', (Guard("op", frozenset({"delete", "deactivate"}), False),)),
        ('change.type == "User" && a || change.op == "delete"', ()),  # || binds looser: not a guard
        ('change.type == "User" && (a ? b : c)', (Guard("type", frozenset({"User"}), False),)),  # ?: in brackets
        ('change.type == "User" && a ? b : c', ()),
        ('change.type == "User" && a == "||"', (Guard("type", frozenset({"User"}), False),)),  # in a string
        ('change.type == "User"', ()),  # the whole rule: CEL decides it
        ('a && change.type == "User" && b', ()),  # not leading
        ("change.type == 'User' && b", ()),  # single quotes: left to CEL
        ('change.type == "User" && r"x" == b', ()),  # raw strings: the scanner says no
    ],
)
def test_leading_guards_are_found_only_where_they_decide_the_rule(source: str, expected: tuple[Guard, ...]) -> None:
    assert leading_guards(source) == expected


def _naive(policy: Policy, change: Change) -> Decision:
    """The gate's decision with every rule evaluated against the whole change."""
    ctx = context({"change": variables(change, None, None)})
    holds: list[RuleMatch] = []
    allows: list[RuleMatch] = []
    approvals = 0
    for rule in policy.rules:
        if rule.action == "hold" and holds and rule.approvals <= approvals:
            continue  # as the gate: decided already unless a deny matches
        if not rule.when.holds(ctx):
            continue
        match = RuleMatch(rule.name, rule.action, rule.reason)  # type: ignore[arg-type]
        if rule.action == "deny":
            return Decision("deny", [match])
        if rule.action == "hold":
            holds.append(match)
            approvals = max(approvals, rule.approvals)
        else:
            allows.append(match)
    if holds:
        return Decision("hold", holds, approvals)
    return Decision("allow", allows)


def _docs() -> list[dict[str, Any] | None]:
    base: dict[str, Any] = {
        "userName": "ann",
        "displayName": "Ann",
        "active": True,
        "emails": [{"value": "ann@example.com"}],
    }
    named = {
        **base,
        "name": {"givenName": "Ann", "familyName": "Lee"},
        "userType": "Employee",
        ENTERPRISE: {"manager": {"value": "m1"}, "department": "Finance"},
    }
    return [
        None,
        base,
        named,
        {**named, "name": {"givenName": "Ann"}},
        {**base, "userName": "root", "userType": "Contractor"},
        {**base, "userName": "breakglass-1", "emails": [{"value": "x@evil.test"}]},
        {**base, "displayName": "Admins", "userType": "ServiceAccount", "active": False},
    ]


#: Rules that read the states in every way the gate's pruning must see through, and one that fails to
#: evaluate for some changes (the gate then evaluates the rules one by one).
TRICKY = f"""
rules:
  - name: erroring
    when: 'change.type == "User" && change.after.userName.size() > 0 && change.after.nickName == "x"'
    action: hold
    reason: r
  - name: has-name-only
    when: 'change.type == "User" && has(change.after.name) && change.op == "update"'
    action: hold
    reason: r
  - name: family-name
    when: 'change.type == "User" && has(change.after.name.familyName) && change.after.name.familyName == "Lee"'
    action: allow
    reason: r
  - name: macro-on-a-sub-map
    when: 'change.type == "User" && has(change.after.name) && change.after.name.exists(k, k == "givenName")'
    action: allow
    reason: r
  - name: macro-on-the-state
    when: 'change.after.all(k, k != "nickName") && change.op == "create"'
    action: hold
    reason: r
  - name: extension-by-key
    when: '"{ENTERPRISE}" in change.after && change.after["{ENTERPRISE}"].department == "Finance"'
    action: hold
    approvals: 2
    reason: r
  - name: state-as-a-value
    when: 'change.op == "update" && change.before != change.after && size(change.before) > 4'
    action: allow
    reason: r
"""


@pytest.mark.parametrize("policy_file", ["bench/policy-20-rules.yaml", "examples/policy.yaml", "tricky"])
def test_the_gate_decides_as_if_it_evaluated_every_rule(policy_file: str) -> None:
    policy = parse_policy(TRICKY if policy_file == "tricky" else (repo_root() / policy_file).read_text())
    costly = {"blast_radius", "manager"}
    gate = PolicyGate(Database("sqlite://"))
    gate.policy = policy
    checked = 0
    for resource_type, op, before, after in itertools.product(TYPES, OPS, _docs(), _docs()):
        change = Change(
            "c",
            resource_type,
            "id",
            op,
            before,
            after,
            ["active"],
            "scim:okta",
            "okta",
            datetime.now(),
            ["m1"] if resource_type == "Group" else [],
        )
        if gate.plan(change).fields & costly:
            continue  # decided with database reads, in tests/test_policy_gate.py
        assert gate._rules(change, None, None) == _naive(policy, change), (resource_type, op, before, after)
        checked += 1
    assert checked > 100


def test_a_plan_keeps_only_the_rules_a_change_can_match() -> None:
    policy = parse_policy(Path(repo_root() / "bench/policy-20-rules.yaml").read_text())
    create = plan(policy.rules, "User", "create")
    delete = plan(policy.rules, "User", "delete")
    group = plan(policy.rules, "Group", "update")
    assert "no-root-accounts" in {r.name for r in create.rules}
    assert "no-root-accounts" not in {r.name for r in delete.rules}
    assert "break-glass-is-never-deleted" in {r.name for r in delete.rules}
    assert len(group.rules) < len(create.rules) < len(policy.rules)
    # What CEL is handed shrinks with the rules: a Group update reads no userType.
    assert "userType" in (create.attributes.get("after") or set())
    assert "userType" not in (group.attributes.get("after") or set())


def test_a_group_is_privileged_by_its_governance_extension() -> None:
    assert is_privileged({GOVERNANCE_GROUP_SCHEMA: {"privileged": True}})
    assert not is_privileged({GOVERNANCE_GROUP_SCHEMA: {"privileged": False}})
    assert not is_privileged({"privileged": True})  # not an attribute of Group: the extension's alone
    assert not is_privileged(None)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("change.after.title == 'x'", {"after": {"title": None}}),
        ("has(change.after.name)", {"after": {"name": frozenset()}}),
        (
            "has(change.after.name) && change.after.name.familyName == ''",
            {"after": {"name": frozenset({"familyName"})}},
        ),
        ("has(change.after.name) && size(change.after.name) > 1", {"after": {"name": None}}),
        ("change.after.name.exists(k, k == 'a')", {"after": {"name": None}}),
        ("change.after.userName.startsWith('a')", {"after": {"userName": None}}),
        ('change.after["urn:x:User"].manager.value == "m"', {"after": {"urn:x:User": frozenset({"manager"})}}),
        ("change.after.all(k, k != 'x')", {"after": None}),
        ("change.before == change.after", {"before": None, "after": None}),
        ("change.after.emails[0].value == 'a'", {"after": {"emails": None}}),
        ("change.op == 'create'", {}),
    ],
)
def test_what_a_rule_reads_of_the_states(source: str, expected: dict[str, Any]) -> None:
    assert reads(source) == expected


def test_a_rule_that_fails_to_evaluate_does_not_hide_another_that_matches() -> None:
    policy = parse_policy(TRICKY)
    gate = PolicyGate(Database("sqlite://"))
    gate.policy = policy
    after = {"userName": "ann", "name": {"familyName": "Lee"}}  # no nickName: "erroring" raises
    assert not compile_expression(policy.rules[0].when.source).holds(
        context(
            {
                "change": variables(
                    Change("c", "User", "id", "create", None, after, [], None, None, datetime.now()), None, None
                )
            }
        )
    )
    change = Change("c", "User", "id", "update", after, after, [], None, None, datetime.now())
    decision = gate._rules(change, None, None)
    assert decision.action == "hold" and [m.name for m in decision.matched] == ["has-name-only"]
