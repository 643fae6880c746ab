"""The one adapter to CEL (``common-expression-language``): compile a rule once, evaluate it often.

A change is converted to CEL values once (one ``cel.Context``) and every rule runs against that
context, so twenty rules cost one conversion and twenty evaluations of a few hundred nanoseconds.

The binding is imported on first use: its package also imports its own REPL (prompt_toolkit, pygments),
0.4 s that a command which never compiles a rule should not pay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from scimward.errors import ConfigurationError


class ExpressionError(ConfigurationError):
    """A rule expression CEL cannot compile: its position and CEL's message."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column

    @property
    def position(self) -> str:
        return f"line {self.line}, column {self.column}" if self.line is not None else "unknown position"


_POSITION = re.compile(r"<input>:(\d+):(\d+): (.*)")
_STEP = r'(?:\.\s*([A-Za-z_]\w*)|\[\s*"([^"]+)"\s*\])'
#: ``change.after``, then up to two steps (``.title``, ``["urn:...:User"]``), then a call's ``(``.
_STATE_ACCESS = re.compile(rf"change\s*\.\s*(after|before)\b(?:\s*{_STEP})?(?:\s*{_STEP})?(\s*\()?")
_HAS_BEFORE = re.compile(r"has\s*\(\s*$")
_CLOSE_AFTER = re.compile(r"\s*\)")

#: What expressions read of ``change.before`` / ``change.after``: per state, None (anything) or, per
#: attribute, None (all of it) or the sub-attributes read (empty: only whether it is there, ``has()``).
Reads = dict[str, dict[str, frozenset[str] | None] | None]


@dataclass(frozen=True)
class Expression:
    source: str
    program: Any
    #: The ``change.*`` fields the expression names (e.g. "blast_radius").
    fields: frozenset[str]
    #: What it reads of ``before`` and ``after`` (``Reads``).
    attributes: Reads

    def holds(self, context: Any) -> bool:
        """Whether the expression is true for ``context``; an evaluation error (a missing key) is not."""
        try:
            return self.program.execute(context) is True
        except (KeyError, ValueError, TypeError, RuntimeError):
            return False


@cache
def _cel() -> ModuleType:
    import cel

    return cel


def compile_expression(source: str) -> Expression:
    try:
        program = _cel().compile(source)
    except ValueError as exc:
        text = str(exc)
        match = _POSITION.search(text)
        if match:
            raise ExpressionError(match.group(3).strip(), int(match.group(1)), int(match.group(2)) + 1) from exc
        raise ExpressionError(text.splitlines()[0], None, None) from exc
    return Expression(source, program, frozenset(re.findall(r"change\s*\.\s*([A-Za-z_]\w*)", source)), reads(source))


def reads(source: str) -> Reads:
    """What ``source`` reads of the change's states, erring towards more: any access it cannot place
    (an index, a computed key, a macro over a whole map, the state as a value) takes all of it."""
    found: list[Reads] = []
    for match in _STATE_ACCESS.finditer(source):
        state, name, key, sub_name, sub_key, call = match.groups()
        attribute, sub = name or key, sub_name or sub_key
        if attribute is None or (call and sub is None and name is not None):
            found.append({state: None})  # the whole state, or a macro/method on it
        elif sub is None:
            presence = (
                _HAS_BEFORE.search(source, 0, match.start()) is not None
                and _CLOSE_AFTER.match(source, match.end()) is not None
            )
            found.append({state: {attribute: frozenset() if presence else None}})
        else:
            found.append({state: {attribute: None if call and sub_name else frozenset({sub})}})
    return _merge(found)


def _merge(many: list[Reads]) -> Reads:
    merged: Reads = {}
    for one in many:
        for state, attributes in one.items():
            if state in merged and merged[state] is None:
                continue
            if attributes is None:
                merged[state] = None
                continue
            into = merged.setdefault(state, {})
            assert into is not None
            for attribute, subs in attributes.items():
                if attribute in into and (into[attribute] is None or subs is None):
                    into[attribute] = None
                else:
                    into[attribute] = (
                        (into.get(attribute) or frozenset()) | (subs or frozenset()) if subs is not None else None
                    )
    return merged


def merge_attributes(expressions: list[Expression]) -> Reads:
    """What a set of expressions reads of ``before`` and ``after`` (absent: nothing; None: anything)."""
    return _merge([expression.attributes for expression in expressions])


def only(doc: dict[str, Any] | None, read: Reads | None, state: str) -> dict[str, Any]:
    """The part of ``doc`` (the change's ``state``) that ``read`` says the rules read."""
    if not doc:
        return {}
    if read is None:
        return doc
    if state not in read:
        return {}
    attributes = read[state]
    if attributes is None:
        return doc
    out: dict[str, Any] = {}
    for attribute, subs in attributes.items():
        if attribute in doc:
            value = doc[attribute]
            out[attribute] = (
                value if subs is None or not isinstance(value, dict) else {k: v for k, v in value.items() if k in subs}
            )
    return out


def context(values: dict[str, Any]) -> Any:
    """A CEL evaluation context holding ``values`` (converted once)."""
    return _cel().Context(variables=values)
