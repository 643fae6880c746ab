"""Which rules can match a change of one type and op, decided once per policy, not once per change.

Most rules open with ``change.type == "User" && change.op == "create" && ...``. When such a leading
test fails, the whole conjunction is false whatever the rest says, so the gate need not hand the
change to CEL for that rule, nor convert the attributes only that rule reads. ``leading_guards``
finds those tests, and only where that reasoning is sound: the expression is a conjunction at its top
level (no ``||`` and no ``? :`` outside brackets and strings, since both bind looser than ``&&``),
and each test is a literal comparison of ``change.type`` or ``change.op``. Anything else, and the
rule has no guard: CEL decides it, as before.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from scimward.policy.cel import merge_attributes
from scimward.policy.document import Rule

_STRING = r'"[^"\\\n]*"'
_GUARD = re.compile(
    rf"\s*change\s*\.\s*(type|op)\s*(?:(==|!=)\s*({_STRING})|in\s*\[\s*({_STRING}(?:\s*,\s*{_STRING})*)\s*\])\s*&&")
_OPEN, _CLOSE = "([{", ")]}"


@dataclass(frozen=True)
class Guard:
    field: str
    #: The change's value must be in ``values`` (``==``, ``in``) or not in them (``!=``).
    values: frozenset[str]
    negated: bool

    def admits(self, value: str) -> bool:
        return (value in self.values) != self.negated


def _top_level_is_conjunction(source: str) -> bool:
    """No ``||`` and no ``?`` at bracket depth 0 outside string literals (raw or triple-quoted strings,
    which this scanner does not follow, make it say no)."""
    depth, i, n = 0, 0, len(source)
    while i < n:
        char = source[i]
        if char in "\"'":
            if source.startswith(char * 3, i) or (i and source[i - 1] in "rRbB"):
                return False
            i += 1
            while i < n and source[i] != char:
                i += 2 if source[i] == "\\" else 1
            if i >= n:
                return False
        elif char in _OPEN:
            depth += 1
        elif char in _CLOSE:
            depth -= 1
        elif depth == 0 and (char == "?" or source.startswith("||", i)):
            return False
        i += 1
    return True


def leading_guards(source: str) -> tuple[Guard, ...]:
    """The literal ``change.type`` / ``change.op`` tests a rule's conjunction opens with."""
    if not _top_level_is_conjunction(source):
        return ()
    guards: list[Guard] = []
    position = 0
    while match := _GUARD.match(source, position):
        field, operator, single, many = match.groups()
        literals = [single] if single else re.findall(_STRING, many)
        guards.append(Guard(field, frozenset(text[1:-1] for text in literals), operator == "!="))
        position = match.end()
    return tuple(guards)


@dataclass(frozen=True)
class RulePlan:
    """The rules that can match changes of one (type, op), and what they read."""

    rules: tuple[Rule, ...]
    fields: frozenset[str]
    attributes: dict[str, frozenset[str] | None]


def plan(rules: Iterable[Rule], resource_type: str, op: str) -> RulePlan:
    values = {"type": resource_type, "op": op}
    chosen = tuple(rule for rule in rules
                   if all(guard.admits(values[guard.field]) for guard in leading_guards(rule.when.source)))
    return RulePlan(chosen, frozenset().union(*(rule.when.fields for rule in chosen)),
                    merge_attributes([rule.when for rule in chosen]))
