"""The policy file: rules, the mass-change breaker and approval settings, validated before use.

```yaml
rules:
  - name: employees-need-a-manager
    when: change.type == "User" && change.after.userType == "Employee" && !has(change.after.manager)
    action: deny            # allow | hold | deny
    reason: every employee has a manager
  - name: privileged-groups-need-approval
    when: change.type == "Group" && change.after.displayName.startsWith("Admin") && size(change.members_added) > 0
    action: hold
    approvals: 2            # distinct approvers, none of them the change's actor (default 1)
    reason: membership of an administrative group
breaker:
  window: 10m
  max_count: 500
  max_percent: 20
  min_count: 10
pending_expiry: 7d
```

and attribute ownership with HR sources' settings (``attributes:``, ``sources:``: ``policy.ownership``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml

from scimward import durations
from scimward.durations import format_duration
from scimward.errors import ConfigurationError
from scimward.policy.cel import Expression, ExpressionError, Reads, compile_expression, merge_attributes
from scimward.policy.nhi_settings import NhiSettings, NhiSettingsError, nhi_settings
from scimward.policy.ownership import Ownership, OwnershipError, parse_ownership

ACTIONS = ("allow", "hold", "deny")


class PolicyError(ConfigurationError):
    """A policy file scimward cannot use; the message names the rule or setting and what is wrong."""


@dataclass(frozen=True)
class Rule:
    name: str
    when: Expression
    action: str
    reason: str
    approvals: int = 1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "when": self.when.source,
            "action": self.action,
            "reason": self.reason,
        }
        if self.action == "hold":
            out["approvals"] = self.approvals
        return out


@dataclass(frozen=True)
class BreakerSettings:
    """Per target, over ``window``: trips when the accounts changes would deprovision there exceed
    ``max_count``, or ``max_percent`` of the target's accounts once at least ``min_count`` are."""

    window: timedelta = timedelta(minutes=10)
    max_count: int = 500
    max_percent: float = 20.0
    min_count: int = 10
    enabled: bool = True

    def trips(self, count: int, accounts: int) -> bool:
        """Whether ``count`` deprovisionings in the window, of ``accounts`` on the target, pass the threshold."""
        return count > self.max_count or (count >= self.min_count and count * 100 > self.max_percent * max(accounts, 1))

    def reason(self, count: int, accounts: int, target: str) -> str:
        return (
            f"{count} accounts of {accounts} would be deprovisioned on {target} within {self.window} "
            f"(threshold: {self.max_count} or {self.max_percent:g} %)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "window": format_duration(self.window),
            "max_count": self.max_count,
            "max_percent": self.max_percent,
            "min_count": self.min_count,
        }


@dataclass(frozen=True)
class Policy:
    rules: tuple[Rule, ...] = ()
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
    pending_expiry: timedelta = timedelta(days=7)
    version: int = 0
    #: Which source owns each attribute, and HR sources' settings (``policy.ownership``).
    ownership: Ownership = field(default_factory=Ownership)
    #: Non-human identities: requirements and the leaver cascade (``policy.nhi_settings``).
    nhi: NhiSettings = field(default_factory=NhiSettings)

    @functools.cached_property
    def fields(self) -> frozenset[str]:
        """The ``change.*`` fields some rule reads (the gate computes the costly ones only then)."""
        return frozenset().union(*(rule.when.fields for rule in self.rules))

    @functools.cached_property
    def attributes(self) -> Reads:
        """What the rules read of ``change.before`` and ``change.after``: only that is handed to CEL."""
        return merge_attributes([rule.when for rule in self.rules])

    def to_json(self) -> dict[str, Any]:
        out = {
            "rules": [rule.to_json() for rule in self.rules],
            "breaker": self.breaker.to_json(),
            "pending_expiry": format_duration(self.pending_expiry),
            **self.ownership.to_json(format_duration),
        }
        if self.nhi != NhiSettings():
            out["nhi"] = self.nhi.to_json()
        return out


def parse_duration(text: Any, setting: str) -> timedelta:
    """A policy's interval (``scimward.durations``: a number and its unit), as a ``PolicyError``."""
    try:
        return durations.parse_duration(text, setting)
    except durations.DurationError as exc:
        raise PolicyError(str(exc)) from None


def parse_policy(text: str) -> Policy:
    """A policy from its YAML text; every expression compiled, every setting checked."""
    try:
        data = yaml.safe_load(text) if text.strip() else {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise PolicyError(f"the policy is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from exc
    return policy_from_json(data or {})


def policy_from_json(data: Any, version: int = 0) -> Policy:
    if not isinstance(data, dict):
        raise PolicyError("a policy is a mapping with 'rules', 'breaker' and 'pending_expiry'")
    unknown = set(data) - {"rules", "breaker", "pending_expiry", "nhi", *OWNERSHIP_SECTIONS}
    if unknown:
        raise PolicyError(
            f"unknown policy setting {sorted(unknown)[0]!r}: use rules, breaker, pending_expiry, "
            "attributes, sources, nhi"
        )
    raw_rules = data.get("rules") or []
    if not isinstance(raw_rules, list):
        raise PolicyError("rules: a list of rules")
    rules: list[Rule] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_rules, start=1):
        rule = _rule(index, raw)
        if rule.name in names:
            raise PolicyError(f"rule {rule.name!r}: the name is used twice")
        names.add(rule.name)
        rules.append(rule)
    expiry = parse_duration(data["pending_expiry"], "pending_expiry") if "pending_expiry" in data else timedelta(days=7)
    try:
        nhi = nhi_settings(data.get("nhi"))
    except NhiSettingsError as exc:
        raise PolicyError(str(exc)) from exc
    return Policy(tuple(rules), _breaker(data.get("breaker")), expiry, version, _ownership(data), nhi)


OWNERSHIP_SECTIONS = ("attributes", "sources")


def _ownership(data: dict[str, Any]) -> Ownership:
    try:
        return parse_ownership(data, parse_duration)
    except OwnershipError as exc:
        raise PolicyError(str(exc)) from exc


def _rule(index: int, raw: Any) -> Rule:
    if not isinstance(raw, dict):
        raise PolicyError(f"rule {index}: a mapping with name, when, action and reason")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PolicyError(f"rule {index}: 'name' is required")
    label = f"rule {name!r}"
    unknown = set(raw) - {"name", "when", "action", "reason", "approvals"}
    if unknown:
        raise PolicyError(f"{label}: unknown setting {sorted(unknown)[0]!r} (name, when, action, reason, approvals)")
    when = raw.get("when")
    if not isinstance(when, str) or not when.strip():
        raise PolicyError(f"{label}: 'when' is required: a CEL expression over change")
    try:
        expression = compile_expression(when)
    except ExpressionError as exc:
        raise PolicyError(f"{label}: invalid expression at {exc.position}: {exc.message}") from exc
    action = raw.get("action")
    if action not in ACTIONS:
        raise PolicyError(f"{label}: action must be one of allow, hold, deny, not {action!r}")
    approvals = raw.get("approvals", 1)
    if not isinstance(approvals, int) or isinstance(approvals, bool) or not 1 <= approvals <= 10:
        raise PolicyError(f"{label}: approvals must be a whole number from 1 to 10, not {approvals!r}")
    reason = raw.get("reason") or name
    return Rule(name.strip(), expression, action, str(reason), approvals)


def _breaker(raw: Any) -> BreakerSettings:
    if raw is None:
        return BreakerSettings()
    if raw is False:
        return BreakerSettings(enabled=False)
    if not isinstance(raw, dict):
        raise PolicyError("breaker: a mapping with window, max_count, max_percent, min_count (or false)")
    unknown = set(raw) - {"window", "max_count", "max_percent", "min_count", "enabled"}
    if unknown:
        raise PolicyError(
            f"breaker: unknown setting {sorted(unknown)[0]!r} (window, max_count, max_percent, min_count, enabled)"
        )
    default = BreakerSettings()

    def number(name: str, low: float, high: float, whole: bool) -> Any:
        value = raw.get(name, getattr(default, name))
        kinds = (int,) if whole else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            kind = "a whole number" if whole else "a number"
            raise PolicyError(f"breaker.{name}: {kind} from {low:g} to {high:g}, not {value!r}")
        return value

    window = parse_duration(raw["window"], "breaker.window") if "window" in raw else default.window
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):
        raise PolicyError(f"breaker.enabled: true or false, not {enabled!r}")
    return BreakerSettings(
        window,
        number("max_count", 1, 10_000_000, True),
        float(number("max_percent", 0.1, 100, False)),
        number("min_count", 1, 10_000_000, True),
        enabled,
    )
