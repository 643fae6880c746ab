"""Resolve a PATCH ``path`` (RFC 7644 3.5.2) to what it targets, and select the elements it names.

The PATCH engine in ``patch.py`` works on a ``Target``: which container (the core document or
one extension object), which attribute, optionally which sub-attribute, and optionally which
elements (a value filter). Path text the IdPs send that the RFC grammar does not quite cover is
resolved here too: a bare extension URN addresses the whole extension object, and an extension
attribute may be named without its URN when no core attribute has that name (Entra sends
``"path": "manager"``).

The element helpers (``select``, ``without``, ``eq_fields``, ``value_eq_ids``) read the value
filters of such paths, and the value lists of Entra's ``remove``, against a multi-valued attribute.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from scimward.scim.ast import And, AttrPath, Compare, CompValue, Filter, Not, Or, ValuePath
from scimward.scim.errors import InvalidFilter, InvalidPath
from scimward.scim.evaluate import matches
from scimward.scim.filter import parse_patch_path
from scimward.scim.resource import find_attribute
from scimward.scim.schema import Attribute, Mutability, ResourceType, Schema

__all__ = [
    "ExtensionTarget",
    "Target",
    "describe",
    "eq_fields",
    "lower_keys",
    "resolve_target",
    "select",
    "value_eq_ids",
    "without",
]

log = logging.getLogger("scimward.scim.patch")


@dataclass(frozen=True)
class Target:
    """One attribute, sub-attribute or set of elements a PATCH operation addresses.

    ``urn`` is the canonical extension URN whose object holds the attribute, None for core
    (and common) attributes. ``sub`` is the sub-attribute of ``name.givenName`` or of
    ``emails[type eq "work"].value``. ``filter`` is the bracketed value filter, if any.
    """

    text: str
    urn: str | None
    attr: Attribute
    sub: Attribute | None = None
    filter: Filter | None = None

    @property
    def read_only(self) -> bool:
        """RFC 7643 2.2: the attribute, or the sub-attribute addressed, is readOnly."""
        return self.attr.mutability is Mutability.READ_ONLY or (
            self.sub is not None and self.sub.mutability is Mutability.READ_ONLY
        )


@dataclass(frozen=True)
class ExtensionTarget:
    """A path that is exactly an extension URN: the whole extension object."""

    text: str
    schema: Schema


def resolve_target(rt: ResourceType, text: str) -> Target | ExtensionTarget:
    """Resolve PATCH path ``text`` against ``rt``; raise InvalidPath for unknown attributes."""
    extension = rt.extension(text.strip())
    if extension is not None:
        return ExtensionTarget(text, extension)
    parsed = parse_patch_path(text)
    urn, attr, sub = _find(rt, parsed.attr, text)
    if parsed.filter is None:
        return Target(text, urn, attr, sub)
    if not (attr.multi_valued or attr.is_complex):
        raise InvalidPath(
            f"{text!r}: a value filter needs a multi-valued or complex attribute, "
            f"and {attr.name} is a single simple value"
        )
    _check_filter_names(parsed.filter, attr, text)
    if parsed.sub_attr is not None:
        sub = attr.sub(parsed.sub_attr)
        if sub is None:
            raise InvalidPath(f"{text!r}: {attr.name} has no sub-attribute {parsed.sub_attr!r}")
    return Target(text, urn, attr, sub, parsed.filter)


def _find(rt: ResourceType, path: AttrPath, text: str) -> tuple[str | None, Attribute, Attribute | None]:
    """``find_attribute``, plus unqualified extension attributes when the name is unambiguous."""
    try:
        return find_attribute(rt, path)
    except InvalidPath:
        if path.schema is not None:
            raise
        owners = [ext.schema for ext in rt.extensions if ext.schema.attribute(path.attr) is not None]
        if len(owners) != 1:
            raise
    qualified = AttrPath(owners[0].id, path.attr, path.sub_attr)
    log.debug("PATCH rewrite unqualified-extension-attribute: %r resolved to %s", text, qualified)
    return find_attribute(rt, qualified)


def _check_filter_names(expr: Filter, attr: Attribute, text: str) -> None:
    """Every attribute inside ``attr[...]`` must be one of its sub-attributes (``value`` if simple)."""
    if isinstance(expr, And | Or):
        _check_filter_names(expr.left, attr, text)
        _check_filter_names(expr.right, attr, text)
    elif isinstance(expr, Not):
        _check_filter_names(expr.expr, attr, text)
    elif isinstance(expr, ValuePath):
        raise InvalidPath(f"{text!r}: value filters cannot be nested")
    else:
        name = expr.path.attr
        known = attr.sub(name) is not None if attr.is_complex else name.lower() == "value"
        if expr.path.schema or expr.path.sub_attr or not known:
            raise InvalidPath(f"{text!r}: {attr.name} has no sub-attribute {str(expr.path)!r}")


def eq_fields(expr: Filter, attr: Attribute) -> dict[str, CompValue] | None:
    """The element a filter of ``eq`` comparisons joined by ``and`` describes, else None.

    ``type eq "work" and primary eq true`` -> ``{"type": "work", "primary": True}`` with canonical
    sub-attribute names. Used to create the element an ``add``/``replace`` on
    ``emails[type eq "work"].value`` addresses when none exists yet.
    """
    if isinstance(expr, And):
        left, right = eq_fields(expr.left, attr), eq_fields(expr.right, attr)
        if left is None or right is None:
            return None
        if any(key in left and left[key] != value for key, value in right.items()):
            return None
        return {**left, **right}
    if isinstance(expr, Compare) and expr.op == "eq" and expr.value is not None:
        sub = attr.sub(expr.path.attr)
        return {sub.name: expr.value} if sub is not None else None
    return None


def value_eq_ids(expr: Filter) -> list[str] | None:
    """The ids of ``value eq "a"`` or ``value eq "a" or value eq "b" ...``, else None."""
    if isinstance(expr, Or):
        left, right = value_eq_ids(expr.left), value_eq_ids(expr.right)
        return None if left is None or right is None else left + right
    if (
        isinstance(expr, Compare)
        and expr.op == "eq"
        and isinstance(expr.value, str)
        and expr.path.attr.lower() == "value"
    ):
        return [expr.value]
    return None


def describe(value: Any) -> str:
    """A short rendering of a JSON value for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def lower_keys(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with lower-cased keys: names in SCIM messages are case-insensitive (RFC 7643 2.1)."""
    return {key.lower(): value for key, value in obj.items() if isinstance(key, str)}


def select(target: Target, items: list[Any]) -> list[Any]:
    """The elements of ``items`` that the target's filter matches; a filter that cannot apply to
    this attribute's values is invalidPath."""
    assert target.filter is not None
    try:
        return [item for item in items if matches(target.filter, item, target.attr)]
    except InvalidFilter as exc:
        raise InvalidPath(f"{target.text!r}: {exc.detail}") from exc


def without(attr: Attribute, current: Any, removed: Any) -> list[Any]:
    """``current`` minus the elements ``removed`` names: by ``value`` when given, else by all fields.

    For Entra's ``{"op": "Remove", "path": "members", "value": [{"value": id}]}`` form on any
    multi-valued attribute. The elements are not normalised: they only select, so ``"$ref": null``
    or unknown names are harmless.
    """
    specs = removed if isinstance(removed, list) else [removed]
    selectors = [selector for spec in specs if (selector := _selector(spec)) is not None]
    items = current if isinstance(current, list) else [] if current is None else [current]
    return [item for item in items if not any(matches(selector, item, attr) for selector in selectors)]


def _selector(spec: Any) -> Filter | None:
    """``{"value": "x"}`` -> ``value eq "x"``; without a value, an ``and`` of the fields given."""
    if isinstance(spec, dict):
        fields = lower_keys(spec)
        if fields.get("value") is not None:
            fields = {"value": fields["value"]}
    else:
        fields = {"value": spec}
    selector: Filter | None = None
    for name, wanted in fields.items():
        if wanted is None or not isinstance(wanted, str | int | float | bool):
            continue
        compare = Compare(AttrPath(None, name), "eq", wanted)
        selector = compare if selector is None else And(selector, compare)
    return selector
