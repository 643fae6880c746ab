"""Evaluate a filter against one whole resource document, in Python.

Searches compile filters to SQL over the stored source state (``store.filter_sql``). The policy gate
needs the same answer for states that are not stored as rows: an identity's effective state where
it differs from its source state, and the state a change proposes (does it leave a target's scope?).
Element comparisons are ``scim.evaluate``'s, so both evaluators agree on case, types and absence.
"""

from __future__ import annotations

from typing import Any

from scimward.scim.ast import And, AttrPath, Compare, Filter, Not, Or, Present, ValuePath
from scimward.scim.errors import InvalidFilter
from scimward.scim.evaluate import MISSING, absent, compare, matches
from scimward.scim.schema import Attribute, AttrType, ResourceType

__all__ = ["resource_matches"]

_ID = Attribute("id", case_exact=True)
_META = Attribute(
    "meta",
    AttrType.COMPLEX,
    sub_attributes=(
        Attribute("created", AttrType.DATETIME),
        Attribute("lastModified", AttrType.DATETIME),
        Attribute("resourceType"),
        Attribute("version"),
    ),
)


def resource_matches(expr: Filter, doc: dict[str, Any], rt: ResourceType) -> bool:
    """Whether the resource ``doc`` (with ``id`` and ``meta`` if the filter names them) satisfies ``expr``.

    Raises InvalidFilter for a filter that names an attribute the resource type does not have.
    """
    if isinstance(expr, And):
        return resource_matches(expr.left, doc, rt) and resource_matches(expr.right, doc, rt)
    if isinstance(expr, Or):
        return resource_matches(expr.left, doc, rt) or resource_matches(expr.right, doc, rt)
    if isinstance(expr, Not):
        return not resource_matches(expr.expr, doc, rt)
    if isinstance(expr, ValuePath):
        decl, value = _attribute(expr.path, doc, rt)
        return any(matches(expr.filter, element, decl) for element in _values(value))
    decl, value = _attribute(expr.path, doc, rt)
    values = _values(value)
    if expr.path.sub_attr is not None:
        sub = decl.sub(expr.path.sub_attr)
        if sub is None:
            raise InvalidFilter(f"{expr.path} is not an attribute of {rt.name}")
        decl = sub
        values = [_field(element, sub.name) for element in values if isinstance(element, dict)]
    if isinstance(expr, Present):
        return any(not absent(v) and v != "" for v in values)
    if not values:
        values = [MISSING]
    if expr.op == "ne":  # no value equals: RFC 7644 3.4.2.2 compares each value of a multi-valued attribute
        return not any(compare(Compare(expr.path, "eq", expr.value), decl, v) for v in values)
    return any(compare(expr, decl, v) for v in values)


def _attribute(path: AttrPath, doc: dict[str, Any], rt: ResourceType) -> tuple[Attribute, Any]:
    container: Any = doc
    schema = rt.schema
    if path.schema is not None and path.schema.lower() != rt.schema.id.lower():
        extension = rt.extension(path.schema)
        if extension is None:
            raise InvalidFilter(f"{path.schema} is not a schema of {rt.name}")
        schema = extension
        container = _field(doc, extension.id)
    name = path.attr.lower()
    if path.schema is None and name == "id":
        return _ID, doc.get("id", MISSING)
    if path.schema is None and name == "meta":
        return _META, doc.get("meta", MISSING)
    decl = schema.attribute(path.attr)
    if decl is None:
        raise InvalidFilter(f"{path} is not an attribute of {rt.name}")
    return decl, _field(container, decl.name) if isinstance(container, dict) else MISSING


def _field(container: dict[str, Any], name: str) -> Any:
    """``container[name]``, with attribute names compared case-insensitively (RFC 7643 2.1)."""
    if name in container:
        return container[name]
    lowered = name.lower()
    return next((v for k, v in container.items() if k.lower() == lowered), MISSING)


def _values(value: Any) -> list[Any]:
    if value is MISSING or value is None:
        return []
    return list(value) if isinstance(value, list) else [value]
