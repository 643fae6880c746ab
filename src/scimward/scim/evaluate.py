"""Evaluate a value filter against one value of a multi-valued attribute (RFC 7644 3.4.2.2).

The PATCH engine uses this for paths such as ``emails[type eq "work"]``: each element of the
``emails`` list is tested on its own. Searches over stored resources are compiled to SQL
elsewhere; this module only ever sees one element and the attribute that declares it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scimward.scim.ast import And, AttrPath, Compare, CompValue, Filter, Not, Or, Present, ValuePath
from scimward.scim.errors import InvalidFilter
from scimward.scim.schema import Attribute, AttrType

__all__ = ["MISSING", "absent", "compare", "matches"]

_MISSING: Any = object()
#: An attribute with no value in the element (distinct from JSON null).
MISSING: Any = _MISSING
_ORDERING = frozenset({"gt", "ge", "lt", "le"})
_SUBSTRING = frozenset({"co", "sw", "ew"})
_STRINGLIKE = frozenset({AttrType.STRING, AttrType.REFERENCE, AttrType.BINARY})
_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "co": lambda have, wanted: wanted in have,
    "sw": str.startswith,
    "ew": str.endswith,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}


def matches(expr: Filter, element: Any, attribute: Attribute) -> bool:
    """Whether ``element``, one value of the multi-valued ``attribute``, satisfies ``expr``.

    ``element`` is a dict when ``attribute`` is complex; otherwise it is the simple value itself,
    addressed in the filter as ``value`` (``roles[value eq "admin"]``). Sub-attribute names and,
    unless the sub-attribute is caseExact, string values compare case-insensitively.
    Raises InvalidFilter for filters that can never be valid here: nested value paths, ordering
    on boolean/binary/null, substring operators on non-strings.
    """
    if isinstance(expr, And):
        return matches(expr.left, element, attribute) and matches(expr.right, element, attribute)
    if isinstance(expr, Or):
        return matches(expr.left, element, attribute) or matches(expr.right, element, attribute)
    if isinstance(expr, Not):
        return not matches(expr.expr, element, attribute)
    if isinstance(expr, ValuePath):
        raise InvalidFilter(f"value filter {expr.path}[...] cannot be nested inside {attribute.name}[...]")
    decl, actual = _resolve(expr.path, element, attribute)
    if isinstance(expr, Present):
        return decl is not None and not _absent(actual) and actual != ""
    return _compare(expr, decl, actual)


def _resolve(path: AttrPath, element: Any, attribute: Attribute) -> tuple[Attribute | None, Any]:
    """The sub-attribute declaration ``path`` names and its value in ``element``."""
    if path.schema or path.sub_attr:
        raise InvalidFilter(f"{path} inside {attribute.name}[...] must name a sub-attribute")
    if not attribute.is_complex:
        return (attribute, element) if path.attr.lower() == "value" else (None, _MISSING)
    decl = attribute.sub(path.attr)
    if decl is None or not isinstance(element, dict):
        return decl, _MISSING
    wanted = decl.name.lower()
    return decl, next((v for k, v in element.items() if k.lower() == wanted), _MISSING)


def _absent(value: Any) -> bool:
    # RFC 7643 2.5: unassigned, null and empty multi-valued/complex values are the same state.
    return value is _MISSING or value is None or value == [] or value == {}


def absent(value: Any) -> bool:
    """Whether ``value`` is unassigned (RFC 7643 2.5): missing, null, or an empty list or object."""
    return _absent(value)


def compare(expr: Compare, decl: Attribute | None, actual: Any) -> bool:
    """Whether the value ``actual`` of the attribute ``decl`` satisfies the comparison ``expr``."""
    return _compare(expr, decl, actual)


def _compare(expr: Compare, decl: Attribute | None, actual: Any) -> bool:
    op, expected = expr.op, expr.value
    _check_operands(expr, decl)
    if expected is None:
        # Only eq/ne survive _check_operands; "x eq null" asks whether x is unassigned.
        return _absent(actual) == (op == "eq")
    if decl is None:
        return op == "ne"
    wanted = _normalise(expected, decl)
    if wanted is _MISSING and op in _ORDERING:
        raise InvalidFilter(f"{expected!r} is not a valid {decl.type.value} for '{expr.path} {op}'")
    have = _MISSING if _absent(actual) else _normalise(actual, decl)
    if wanted is _MISSING or have is _MISSING:
        # Unassigned, or of another type than declared: equal to nothing, so only ne matches.
        return op == "ne"
    return bool(_OPERATORS[op](have, wanted))


def _check_operands(expr: Compare, decl: Attribute | None) -> None:
    """Reject comparisons that are invalid whatever the data (RFC 7644 3.4.2.2: invalidFilter)."""
    op, expected = expr.op, expr.value
    kind = decl.type if decl is not None else None
    if op in _ORDERING and (
        expected is None or isinstance(expected, bool) or kind in (AttrType.BOOLEAN, AttrType.BINARY)
    ):
        raise InvalidFilter(f"'{op}' cannot order boolean, binary or null values: {expr.path} {op}")
    if op in _SUBSTRING and (not isinstance(expected, str) or (kind is not None and kind not in _STRINGLIKE)):
        raise InvalidFilter(f"'{op}' needs a string attribute and a string value: {expr.path} {op}")


def _normalise(value: Any, decl: Attribute) -> Any:
    """``value`` in a form Python compares the way ``decl``'s type does, or _MISSING."""
    kind = decl.type
    if kind is AttrType.BOOLEAN:
        return value if isinstance(value, bool) else _MISSING
    if kind in (AttrType.INTEGER, AttrType.DECIMAL):
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        return value if is_number else _MISSING
    if kind is AttrType.DATETIME:
        return _datetime(value)
    if not isinstance(value, str):
        return _MISSING
    return value if decl.case_exact else value.casefold()


def _datetime(value: CompValue | datetime) -> Any:
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return _MISSING
    else:
        return _MISSING
    # Naive and aware datetimes do not compare; SCIM dateTimes without an offset are taken as UTC.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
