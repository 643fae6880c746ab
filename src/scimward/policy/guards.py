"""Which rules can match a change of one type and op, decided once per policy, not once per change.

Most rules open with ``change.type == "User" && change.op == "create" && ...``. When such a leading
test fails, the whole conjunction is false whatever the rest says, so the gate need not hand the
change to CEL for that rule, nor convert the attributes only that rule reads. ``leading_guards``
finds those tests, and only where that reasoning is sound: the expression is a conjunction at its top
level (no ``||`` and no ``? :`` outside brackets and strings, since both bind looser than ``&&``),
and each test is a literal comparison of ``change.type`` or ``change.op``. Anything else, and the
rule has no guard: CEL decides it, as before.

A guard that holds for a plan's (type, op) is ``true && rest``, which CEL evaluates as ``rest``:
the plan compiles each chosen rule's rest, and all of them into one list expression, so a change
is converted to CEL values once and evaluated once (``RulePlan.results``). Only when that list
fails to evaluate (one rule raised an error, which for that rule means "does not match") does the
plan evaluate the rests one by one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from scimward.policy.cel import Expression, ExpressionError, Reads, compile_expression, merge_attributes
from scimward.policy.document import Rule

_STRING = r'"[^"\\\n]*"'
_GUARD = re.compile(
    rf"\s*change\s*\.\s*(type|op)\s*(?:(==|!=)\s*({_STRING})|in\s*\[\s*({_STRING}(?:\s*,\s*{_STRING})*)\s*\])\s*&&"
)
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
    return _split(source)[0]


def _split(source: str) -> tuple[tuple[Guard, ...], str]:
    """The leading guards of a rule and the rest of its conjunction (the whole rule without guards)."""
    if not _top_level_is_conjunction(source):
        return (), source
    guards: list[Guard] = []
    position = 0
    while match := _GUARD.match(source, position):
        field, operator, single, many = match.groups()
        literals = [single] if single else re.findall(_STRING, many)
        guards.append(Guard(field, frozenset(text[1:-1] for text in literals), operator == "!="))
        position = match.end()
    return tuple(guards), source[position:]


@dataclass(frozen=True)
class RulePlan:
    """The rules that can match changes of one (type, op), and what they read."""

    rules: tuple[Rule, ...]
    fields: frozenset[str]
    attributes: Reads
    #: Each rule's expression without the guards the plan has decided (the same truth for this plan).
    rests: tuple[Expression, ...] = ()
    #: All the rests as one CEL list, or None when they cannot be put in one.
    together: Any = None

    def results(self, context: Any) -> list[bool]:
        """Whether each rule matches the change in ``context``: one evaluation of the list when it
        succeeds, else each rule on its own (an error means no match, as for a single rule)."""
        if self.together is not None:
            try:
                values = self.together.execute(context)
            except (KeyError, ValueError, TypeError, RuntimeError):
                pass
            else:
                return [value is True for value in values]
        return [rest.holds(context) for rest in self.rests]


def plan(rules: Iterable[Rule], resource_type: str, op: str) -> RulePlan:
    values = {"type": resource_type, "op": op}
    chosen: list[Rule] = []
    rests: list[Expression] = []
    for rule in rules:
        guards, rest = _split(rule.when.source)
        if not all(guard.admits(values[guard.field]) for guard in guards):
            continue
        chosen.append(rule)
        rests.append(_rest(rule, rest) if guards else rule.when)
    return RulePlan(
        tuple(chosen),
        frozenset().union(*(r.fields for r in rests)),
        merge_attributes(rests),
        tuple(rests),
        _together(rests),
    )


def _rest(rule: Rule, rest: str) -> Expression:
    try:
        return compile_expression(rest)
    except ExpressionError:  # not expected of a conjunction's tail; the whole rule decides as before
        return rule.when


def _together(rests: list[Expression]) -> Any:
    if len(rests) < 2:
        return None
    try:
        return compile_expression("[" + ", ".join(f"({rest.source})" for rest in rests) + "]").program
    except ExpressionError:
        return None
