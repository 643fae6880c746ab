"""The one adapter to CEL (``common-expression-language``): compile a rule once, evaluate it often.

A change is converted to CEL values once (one ``cel.Context``) and every rule runs against that
context, so twenty rules cost one conversion and twenty evaluations of a few hundred nanoseconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import cel

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
#: ``change.after.title``, ``change.before["urn:...:User"]``, or the whole ``change.after``.
_STATE_ACCESS = re.compile(r'change\s*\.\s*(after|before)(?:\s*\.\s*([A-Za-z_]\w*)|\s*\[\s*"([^"]+)"\s*\])?')


@dataclass(frozen=True)
class Expression:
    source: str
    program: Any
    #: The ``change.*`` fields the expression names (e.g. "blast_radius").
    fields: frozenset[str]
    #: For ``before`` and ``after``: the attributes the expression reads, or None when it may read any.
    attributes: dict[str, frozenset[str] | None]

    def holds(self, context: Any) -> bool:
        """Whether the expression is true for ``context``; an evaluation error (a missing key) is not."""
        try:
            return self.program.execute(context) is True
        except (KeyError, ValueError, TypeError, RuntimeError):
            return False


def compile_expression(source: str) -> Expression:
    try:
        program = cel.compile(source)
    except ValueError as exc:
        text = str(exc)
        match = _POSITION.search(text)
        if match:
            raise ExpressionError(match.group(3).strip(), int(match.group(1)), int(match.group(2)) + 1) from exc
        raise ExpressionError(text.splitlines()[0], None, None) from exc
    attributes: dict[str, set[str] | None] = {}
    for state, name, key in _STATE_ACCESS.findall(source):
        named = name or key
        if not named or attributes.get(state, set()) is None:
            attributes[state] = None
        else:
            attributes.setdefault(state, set()).add(named)  # type: ignore[union-attr]
    return Expression(source, program, frozenset(re.findall(r"change\s*\.\s*([A-Za-z_]\w*)", source)),
                      {state: None if names is None else frozenset(names) for state, names in attributes.items()})


def merge_attributes(expressions: list[Expression]) -> dict[str, frozenset[str] | None]:
    """What a set of expressions reads of ``before`` and ``after`` (absent: nothing; None: anything)."""
    merged: dict[str, frozenset[str] | None] = {}
    for expression in expressions:
        for state, names in expression.attributes.items():
            if names is None or merged.get(state, frozenset()) is None:
                merged[state] = None
            else:
                merged[state] = (merged.get(state) or frozenset()) | names
    return merged


def context(values: dict[str, Any]) -> Any:
    """A CEL evaluation context holding ``values`` (converted once)."""
    return cel.Context(variables=values)
