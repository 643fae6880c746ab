"""The SCIM PATCH engine (RFC 7644 section 3.5.2), pure: a document in, a new document out.

``apply_patch`` applies a PatchOp body to a canonical resource document: canonical attribute
names, core attributes at top level, extension attributes under their extension URN, a
``schemas`` list, no ``id``/``meta``. Operations apply in order to a copy; any error raises and
the input is untouched, so a request is atomic (RFC 7644 3.5.2) together with the caller's
transaction.

Group membership never lives in the document (a group may have 100,000 members): operations on
``members`` come back as ``MemberOp`` values, in request order, for the store to apply.

The IdPs' dialects are accepted and each rewrite is logged at DEBUG on ``scimward.scim.patch``:
``op`` in any case (Entra sends ``Replace``), path-less values keyed by attribute paths
(``name.givenName``, URN-qualified names, ``emails[type eq "work"].value``), ``id`` and other
read-only attributes inside path-less values (ignored), ``remove`` with a ``value`` list on a
multi-valued path, and ``add``/``replace`` on ``attr[type eq "x"].sub`` creating the element when
none matches. Value rewrites (``"True"``/``"False"`` strings for booleans, a plain id for
``manager``) happen in ``resource.normalize_value`` and are logged on ``scimward.scim.resource``.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Literal

from scimward.scim.ast import Filter
from scimward.scim.errors import InvalidSyntax, InvalidValue, MutabilityError, NoTarget, TooMany
from scimward.scim.limits import MAX_PATCH_VALUE_VISITS, check_operation_count
from scimward.scim.patch_target import (
    ExtensionTarget,
    Target,
    describe,
    eq_fields,
    lower_keys,
    resolve_target,
    select,
    value_eq_ids,
    without,
)
from scimward.scim.resource import check_immutable, check_required, check_value_counts, normalize_value
from scimward.scim.resource_types import GROUP_SCHEMA, MEMBER_TYPES
from scimward.scim.schema import Attribute, Mutability, ResourceType

__all__ = ["PATCH_OP_SCHEMA", "MemberOp", "PatchResult", "apply_patch", "check_operation_limit"]

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

log = logging.getLogger("scimward.scim.patch")

_OPS = frozenset({"add", "replace", "remove"})
#: Keys a path-less value may carry that are not writable attributes; they are ignored.
_SERVER_KEYS = frozenset({"id", "meta", "schemas"})


@dataclass(frozen=True)
class MemberOp:
    """One change to a group's membership, for the store to apply in order.

    ``add``: the ``members`` (``{"value": id}`` plus ``"type"`` when the client gave it);
    ``remove``: the ``members`` (``{"value": id}``); ``remove_where``: every member ``where``
    matches (a ``members[...]`` filter other than ``value eq`` / an ``or`` of them);
    ``clear``: every member.
    """

    kind: Literal["add", "remove", "remove_where", "clear"]
    members: tuple[dict[str, str], ...] = ()
    where: Filter | None = None


@dataclass(frozen=True)
class PatchResult:
    """The new document (the input is never mutated), the member operations in request order
    (always empty for Users), and whether anything changed at all."""

    doc: dict[str, Any]
    member_ops: tuple[MemberOp, ...]
    changed: bool


def apply_patch(doc: dict[str, Any], body: Any, rt: ResourceType) -> PatchResult:
    """Apply the PatchOp ``body`` to ``doc`` (never mutated) for a resource of type ``rt``."""
    engine = _Engine(copy.deepcopy(doc), rt)
    for op, path, value, has_value in _operations(body):
        engine.apply(op, path, value, has_value)
    if engine.doc != doc:
        _check_required(doc, engine.doc, rt)
        _sync_schemas(engine.doc, rt)
        check_required(engine.doc, rt)
        check_value_counts(engine.doc, rt)
    changed = engine.doc != doc or bool(engine.member_ops)
    return PatchResult(engine.doc, tuple(engine.member_ops), changed)


def check_operation_limit(body: Any, limit: int) -> None:
    """400 ``tooMany`` when a PatchOp body carries more than ``limit`` operations (the server's
    ``patch.maxOperations``); any other malformation is left to ``apply_patch`` to name."""
    if not isinstance(body, dict):
        return
    operations = lower_keys(body).get("operations")
    if isinstance(operations, list):
        check_operation_count(len(operations), limit)


# --- request body ---------------------------------------------------------------------------


def _operations(body: Any) -> list[tuple[str, str | None, Any, bool]]:
    """``(op, path, value, has_value)`` for each operation; raise InvalidSyntax for a bad body."""
    if not isinstance(body, dict):
        raise InvalidSyntax("a PATCH body must be a JSON object")
    fields = lower_keys(body)
    schemas = fields.get("schemas")
    if not isinstance(schemas, list) or PATCH_OP_SCHEMA not in schemas:
        raise InvalidSyntax(f"a PATCH body's 'schemas' must contain {PATCH_OP_SCHEMA!r}")
    operations = fields.get("operations")
    if not isinstance(operations, list):
        raise InvalidSyntax("a PATCH body must have an 'Operations' list")
    return [_operation(index, raw) for index, raw in enumerate(operations)]


def _operation(index: int, raw: Any) -> tuple[str, str | None, Any, bool]:
    if not isinstance(raw, dict):
        raise InvalidSyntax(f"Operations[{index}] must be an object")
    fields = lower_keys(raw)
    name = fields.get("op")
    if not isinstance(name, str) or name.lower() not in _OPS:
        raise InvalidSyntax(f"Operations[{index}]: 'op' must be add, replace or remove, not {describe(name)}")
    op = name.lower()
    if name != op:
        log.debug("PATCH rewrite op-name-case: %r read as %r", name, op)
    path = fields.get("path")
    if path is not None and not isinstance(path, str):
        raise InvalidSyntax(f"Operations[{index}]: 'path' must be a string, not {describe(path)}")
    if path is not None and not path.strip():
        log.debug("PATCH rewrite empty-path: Operations[%d] has an empty path, read as no path", index)
        path = None
    return op, path, fields.get("value"), "value" in fields


# --- the engine -------------------------------------------------------------------------------


class _Engine:
    """Applies operations to ``doc`` (already a private copy) and collects member operations."""

    def __init__(self, doc: dict[str, Any], rt: ResourceType) -> None:
        self.doc = doc
        self.rt = rt
        self.member_ops: list[MemberOp] = []
        self.members_attr = rt.schema.attribute("members") if rt.schema.id == GROUP_SCHEMA else None
        self.immutable = _immutable_attributes(rt)
        #: The multi-valued attributes that ``add`` operations have appended to so far, by (URN, name).
        self.lists: dict[tuple[str | None, str], _ListIndex] = {}
        #: Values walked by the operations that are not appends (``MAX_PATCH_VALUE_VISITS``).
        self.visits = 0

    def apply(self, op: str, path: str | None, value: Any, has_value: bool) -> None:
        # RFC 7644 3.5.2: an immutable attribute may only be given a value while it has none. Only those
        # attributes are copied: a copy of the whole document per operation made PATCH quadratic.
        before = _snapshot(self.doc, self.immutable) if self.immutable else None
        if path is None:
            self._apply_without_path(op, value)
        else:
            self._apply_path(op, path, value, has_value)
        if before is not None:
            check_immutable(before, self.doc, self.rt)

    # path-less operations (RFC 7644 3.5.2.1 / 3.5.2.3: the target is the resource itself)

    def _apply_without_path(self, op: str, value: Any) -> None:
        if op == "remove":
            raise NoTarget("a 'remove' operation needs a 'path' (RFC 7644 3.5.2.2)")
        if not isinstance(value, dict):
            raise InvalidValue(
                f"'{op}' without a path needs an object of attributes as its value, not {describe(value)}"
            )
        for key, item in value.items():
            self._apply_keyed(op, key, item)

    def _apply_keyed(self, op: str, key: str, item: Any) -> None:
        """One ``key: value`` pair of a path-less value, or of a value addressed to an extension URN."""
        if key.lower() in _SERVER_KEYS:
            log.debug("PATCH rewrite server-attribute-ignored: %r in a path-less %s value", key, op)
            return
        if key.lower() == self.rt.schema.id.lower() and isinstance(item, dict):
            log.debug("PATCH rewrite core-urn-key: %r in a path-less %s value, read as attributes", key, op)
            for inner_key, inner_item in item.items():
                self._apply_keyed(op, inner_key, inner_item)
            return
        if any(mark in key for mark in ".:["):
            log.debug("PATCH rewrite path-keyed-value: %r in a path-less %s value read as a path", key, op)
        target = resolve_target(self.rt, key)
        if isinstance(target, ExtensionTarget):
            self._apply_extension(op, target, item)
            return
        if target.read_only:
            log.debug("PATCH rewrite read-only-ignored: %r in a path-less %s value", key, op)
            return
        self._apply_target(op, target, item, True)

    def _apply_extension(self, op: str, target: ExtensionTarget, value: Any) -> None:
        urn = target.schema.id
        if op == "remove" or value is None:
            if op != "add":
                self.doc.pop(urn, None)
            return
        if not isinstance(value, dict):
            raise InvalidValue(f"the value for {target.text!r} must be an object of {urn} attributes")
        for key, item in value.items():
            if key.lower() in _SERVER_KEYS:  # scim2-models sends the extension's own "schemas"
                log.debug("PATCH rewrite server-attribute-ignored: %r in a value for %s", key, urn)
                continue
            self._apply_keyed(op, f"{urn}:{key}", item)

    # operations with a path

    def _apply_path(self, op: str, path: str, value: Any, has_value: bool) -> None:
        target = resolve_target(self.rt, path)
        if isinstance(target, ExtensionTarget):
            self._apply_extension(op, target, value)
            return
        if target.read_only:
            raise MutabilityError(f"{path!r} is readOnly and cannot be modified")
        self._apply_target(op, target, value, has_value)

    def _apply_target(self, op: str, target: Target, value: Any, has_value: bool) -> None:
        if self.members_attr is not None and target.attr is self.members_attr and target.urn is None:
            self._apply_members(op, target, value, has_value)
            return
        if op != "remove" and not has_value:
            raise InvalidValue(f"'{op}' on {target.text!r} needs a 'value'")
        if op != "remove" and value is None:
            if op == "add":  # adding nothing changes nothing
                return
            # RFC 7643 2.5: null is the same state as unassigned, so replacing with null removes.
            op, has_value = "remove", False
        container = self._container(target.urn)
        if op == "add" and target.attr.multi_valued and target.filter is None and target.sub is None:
            self._append(target, container, value)
        else:
            # Anything but an append may rewrite the list in place: its index no longer holds.
            self.lists.pop((target.urn, target.attr.name), None)
            current = container.get(target.attr.name)
            self.visits += len(current) if isinstance(current, list) else 1
            if self.visits > MAX_PATCH_VALUE_VISITS:
                raise TooMany(
                    f"the operations walk more than {MAX_PATCH_VALUE_VISITS} values in all (each "
                    "operation that is not an append walks every value of its attribute); split the PATCH"
                )
            if target.filter is not None:
                _apply_filtered(op, target, container, value)
            elif target.sub is not None:
                _apply_sub(op, target, container, value)
            else:
                _apply_whole(op, target, container, value, has_value)
            _tidy(container, target.attr.name)
        if target.urn is not None and not container:
            self.doc.pop(target.urn, None)

    def _append(self, target: Target, container: dict[str, Any], value: Any) -> None:
        """``add`` on a whole multi-valued attribute (RFC 7644 3.5.2.1), in time proportional to the
        values added: the list is tidied and indexed on the first append only, and kept so after.

        A value already present is not added again; a value added as primary takes primary from the
        one that had it (RFC 7643 2.4).
        """
        key = (target.urn, target.attr.name)
        new_items = _elements(target.attr, value, target.text)  # normalised, so already tidy
        index = self.lists.get(key)
        if index is None or container.get(target.attr.name) is not index.items:
            _tidy(container, target.attr.name)
            index = self.lists[key] = _ListIndex(_as_list(container.get(target.attr.name)))
        items = index.items
        added = []
        for item in new_items:
            frozen = _frozen(item)
            if frozen not in index.keys:
                index.keys.add(frozen)
                items.append(item)
                added.append(item)
        winners = [item for item in added if isinstance(item, dict) and item.get("primary") is True]
        if winners:
            index.make_primary(winners[-1])
        if items:
            container[target.attr.name] = items
        else:
            container.pop(target.attr.name, None)

    def _container(self, urn: str | None) -> dict[str, Any]:
        if urn is None:
            return self.doc
        container = self.doc.get(urn)
        if not isinstance(container, dict):
            container = self.doc[urn] = {}
        return container

    # group membership

    def _apply_members(self, op: str, target: Target, value: Any, has_value: bool) -> None:
        if target.sub is not None:
            raise MutabilityError(
                f"{target.text!r}: member sub-attributes are immutable; add or remove the member instead"
            )
        if target.filter is not None:
            if op != "remove":
                raise MutabilityError(
                    f"{target.text!r}: members are immutable; '{op}' cannot modify "
                    "a member in place, add or remove it instead"
                )
            ids = value_eq_ids(target.filter)
            if ids is None:
                self.member_ops.append(MemberOp("remove_where", where=target.filter))
            else:
                self.member_ops.append(MemberOp("remove", tuple({"value": i} for i in dict.fromkeys(ids))))
            return
        if op == "remove":
            if has_value and value is not None:
                log.debug("PATCH rewrite remove-with-value: remove on %r with a value list", target.text)
                members = _members(value, target.text, keep_type=False)
                if members:
                    self.member_ops.append(MemberOp("remove", members))
            else:
                self.member_ops.append(MemberOp("clear"))
            return
        if not has_value:
            raise InvalidValue(f"'{op}' on {target.text!r} needs a 'value'")
        members = _members(value, target.text, keep_type=True) if value is not None else ()
        if op == "replace":
            self.member_ops.append(MemberOp("clear"))
        if members:
            self.member_ops.append(MemberOp("add", members))


# --- applying values ----------------------------------------------------------------------------


def _apply_whole(op: str, target: Target, container: dict[str, Any], value: Any, has_value: bool) -> None:
    """An operation on a whole attribute: ``"path": "emails"``, ``"path": "name"``."""
    attr, key = target.attr, target.attr.name
    if op == "remove":
        if has_value and value is not None and attr.multi_valued:
            log.debug("PATCH rewrite remove-with-value: remove on %r with a value list", target.text)
            container[key] = without(attr, container.get(key), value)
        else:
            container.pop(key, None)
        return
    if attr.multi_valued:
        # ``add`` appends (``_Engine._append``); ``replace`` sets the whole list.
        container[key] = _elements(attr, value, target.text)
        return
    new = normalize_value(attr, value, target.text)
    if new is None:  # e.g. only readOnly sub-attributes, which input ignores (RFC 7643 2.2)
        return
    current = container.get(key)
    if attr.is_complex and isinstance(current, dict) and isinstance(new, dict):
        # RFC 7644 3.5.2.1 and 3.5.2.3: sub-attributes not in the value are left unchanged.
        container[key] = {**current, **new}
    else:
        container[key] = new


def _apply_sub(op: str, target: Target, container: dict[str, Any], value: Any) -> None:
    """An operation on a sub-attribute without a filter: ``name.givenName``, ``emails.type``."""
    assert target.sub is not None
    attr, sub, key = target.attr, target.sub, target.attr.name
    new = None if op == "remove" else normalize_value(sub, value, target.text)
    if attr.multi_valued:
        items = _as_list(container.get(key))
        if new is not None and not items:
            items = [{}]
        for item in items:
            _set(item, sub.name, new)
        container[key] = items
        if new is True and sub.name == "primary" and len(items) > 1:
            raise InvalidValue(f"{target.text!r}: only one value may be primary (RFC 7643 2.4)")
        return
    current = container.get(key)
    element = dict(current) if isinstance(current, dict) else {}
    _set(element, sub.name, new)
    container[key] = element


def _apply_filtered(op: str, target: Target, container: dict[str, Any], value: Any) -> None:
    """An operation on the elements ``attr[filter]`` selects, or their sub-attribute ``.sub``."""
    assert target.filter is not None
    attr, key = target.attr, target.attr.name
    current = container.get(key)
    items = _as_list(current) if attr.multi_valued else ([current] if current is not None else [])
    selected = select(target, items)
    touched: list[Any]
    if op == "remove":
        if target.sub is not None:
            for item in selected:
                _set(item, target.sub.name, None)
        else:
            items = [item for item in items if not _contains(selected, item)]
        touched = []
    elif target.sub is not None:
        new = normalize_value(target.sub, value, target.text)
        for item in selected:
            _set(item, target.sub.name, new)
        touched = selected or [_create_from_filter(target, {target.sub.name: new}, items)]
    else:
        element = _single_element(attr, value, target.text)
        touched = []
        for index, item in enumerate(items):
            if _contains(selected, item):
                # RFC 7644 3.5.2.3: a complex value's sub-attributes merge into each match.
                both_complex = isinstance(item, dict) and isinstance(element, dict)
                items[index] = {**item, **element} if both_complex else copy.deepcopy(element)
                touched.append(items[index])
        if not selected:
            if op != "add":
                raise NoTarget(f"{target.text!r} matches no value (RFC 7644 3.5.2.3)")
            touched = [_create_from_filter(target, element, items)]
    if attr.multi_valued:
        container[key] = items
        _settle_primary(items, touched)
    elif items:
        container[key] = items[0]
    else:
        container.pop(key, None)


def _create_from_filter(target: Target, given: Any, items: list[Any]) -> Any:
    """Append the element an ``eq`` filter describes, merged with ``given``; else NoTarget.

    RFC 7644 3.5.2.1 is silent on a filtered ``add`` that matches nothing and 3.5.2.3 says
    noTarget for ``replace``, but Okta and Entra send ``replace`` on ``emails[type eq "work"].value``
    for a user who has no work email yet and expect it to be created.
    """
    assert target.filter is not None
    fields = eq_fields(target.filter, target.attr) if target.attr.is_complex else None
    if fields is None or not isinstance(given, dict):
        raise NoTarget(f"{target.text!r} matches no value (RFC 7644 3.5.2.3)")
    if not target.attr.multi_valued and items:
        raise NoTarget(f"{target.text!r} does not match the current value")
    element = _single_element(target.attr, {**fields, **given}, target.text)
    log.debug("PATCH rewrite create-from-filter: %r matched nothing, created %r", target.text, element)
    items.append(element)
    return element


# --- group members --------------------------------------------------------------------------------


def _members(value: Any, path: str, keep_type: bool) -> tuple[dict[str, str], ...]:
    """Member references from an operation value: ``[{"value": id, "type": "User"}, ...]``.

    ``display`` and ``$ref`` (Entra sends ``"$ref": null``, Okta a ``display``) are ignored, and
    logged as ``member-fields-ignored``: the store derives them.
    """
    raw = value if isinstance(value, list) else [value]
    members: dict[str, dict[str, str]] = {}
    debug = log.isEnabledFor(logging.DEBUG)  # a replace may carry 100,000 members
    for item in raw:
        fields = lower_keys(item) if isinstance(item, dict) else {}
        member_id = fields.get("value")
        if not isinstance(member_id, str) or not member_id:
            raise InvalidValue(f"each member in {path!r} needs a string 'value', not {describe(item)}")
        member = {"value": member_id}
        ignored = sorted(key for key in fields if key not in ("value", "type")) if debug else ()
        if ignored:
            log.debug(
                "PATCH rewrite member-fields-ignored: %r member %r: %s ignored, the hub derives them",
                path,
                member_id,
                ", ".join(ignored),
            )
        kind = fields.get("type")
        if keep_type and kind is not None:
            member["type"] = _member_type(kind, path)
        members.setdefault(member_id, member)
    return tuple(members.values())


def _member_type(kind: Any, path: str) -> str:
    for canonical in MEMBER_TYPES:
        if isinstance(kind, str) and kind.lower() == canonical.lower():
            return canonical
    raise InvalidValue(
        f"a member's type in {path!r} must be one of {', '.join(map(repr, MEMBER_TYPES))}, not {describe(kind)}"
    )


# --- helpers ------------------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _contains(items: list[Any], item: Any) -> bool:
    return any(candidate is item for candidate in items)


def _set(element: Any, name: str, value: Any) -> None:
    if not isinstance(element, dict):
        return
    if value is None:
        element.pop(name, None)
    else:
        element[name] = value


def _elements(attr: Attribute, value: Any, path: str) -> list[Any]:
    """Normalised values for multi-valued ``attr``; a lone value is read as a list of one."""
    if not isinstance(value, list):
        log.debug("PATCH rewrite single-value-as-list: %r given one value, read as a list", path)
        value = [value]
    result = normalize_value(attr, value, path)
    return list(result) if isinstance(result, list) else []


def _single_element(attr: Attribute, value: Any, path: str) -> Any:
    """One normalised element of ``attr`` (for a path that selects elements with a filter)."""
    if attr.multi_valued:
        result = normalize_value(attr, value if isinstance(value, list) else [value], path)
        items = result if isinstance(result, list) else []
    else:
        items = [normalize_value(attr, value, path)]
    if len(items) != 1 or items[0] is None:
        raise InvalidValue(f"{path!r} selects values of {attr.name}; the value must be one element")
    return items[0]


def _settle_primary(items: list[Any], touched: list[Any]) -> None:
    """RFC 7643 2.4 / RFC 7644 3.5.2: a value newly made primary clears primary on the others."""
    primaries = [item for item in items if isinstance(item, dict) and item.get("primary") is True]
    if len(primaries) < 2:
        return
    winners = [item for item in primaries if _contains(touched, item)]
    winner = winners[-1] if winners else primaries[-1]
    for item in primaries:
        if item is not winner:
            item["primary"] = False


def _unassigned(value: Any) -> bool:
    return value is None or value == [] or value == {}


def _clean(value: Any) -> Any:
    """``value`` without null, empty lists and empty objects (RFC 7643 2.5: unassigned)."""
    if isinstance(value, dict):
        cleaned = {key: _clean(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if not _unassigned(item)}
    if isinstance(value, list):
        return [item for item in (_clean(element) for element in value) if not _unassigned(item)]
    return value


def _tidy(container: dict[str, Any], key: str) -> None:
    if key in container:
        cleaned = _clean(container[key])
        if _unassigned(cleaned):
            del container[key]
        else:
            container[key] = cleaned


class _ListIndex:
    """A multi-valued attribute's list while ``add`` operations append to it: its values' keys, so a
    duplicate is found in constant time, and its primary values, so a new primary clears them directly."""

    def __init__(self, items: list[Any]) -> None:
        self.items = items
        self.keys = {_frozen(item) for item in items}
        self.primaries = [item for item in items if isinstance(item, dict) and item.get("primary") is True]

    def make_primary(self, winner: dict[str, Any]) -> None:
        for item in self.primaries:
            if item is not winner:
                self.keys.discard(_frozen(item))
                item["primary"] = False
                self.keys.add(_frozen(item))
        self.primaries = [winner]


def _frozen(item: Any) -> Any:
    """A hashable key equal for values that compare equal: a complex value's sub-attributes are simple."""
    if isinstance(item, dict):
        return frozenset((key, _frozen(value)) for key, value in item.items())
    if isinstance(item, list):
        return tuple(_frozen(value) for value in item)
    return item


def _immutable_attributes(rt: ResourceType) -> tuple[tuple[str | None, str], ...]:
    """(URN or None, name) of the values ``check_immutable`` compares (not Group.members)."""
    sections = [(None, rt.schema), *((ext.schema.id, ext.schema) for ext in rt.extensions)]
    immutable = Mutability.IMMUTABLE
    return tuple(
        (urn, attr.name)
        for urn, schema in sections
        for attr in schema.attributes
        if attr.mutability is immutable
        or (not attr.multi_valued and any(sub.mutability is immutable for sub in attr.sub_attributes))
    )


def _snapshot(doc: dict[str, Any], names: tuple[tuple[str | None, str], ...]) -> dict[str, Any]:
    """A copy of only the named attributes of ``doc``, laid out as ``doc`` is, for ``check_immutable``."""
    out: dict[str, Any] = {}
    for urn, name in names:
        source = doc if urn is None else doc.get(urn)
        if isinstance(source, dict) and name in source:
            section = out if urn is None else out.setdefault(urn, {})
            section[name] = copy.deepcopy(source[name])
    return out


def _lookup(doc: dict[str, Any], urn: str | None, attr: Attribute) -> Any:
    container = doc.get(urn) if urn is not None else doc
    value = container.get(attr.name) if isinstance(container, dict) else None
    return None if _unassigned(value) else value


def _check_required(before: dict[str, Any], after: dict[str, Any], rt: ResourceType) -> None:
    """RFC 7644 3.5.2: removing a required attribute fails with scimType mutability."""
    schemas = [(None, rt.schema), *((ext.schema.id, ext.schema) for ext in rt.extensions)]
    for urn, schema in schemas:
        for attr in schema.attributes:
            if attr.required and _lookup(before, urn, attr) is not None and _lookup(after, urn, attr) is None:
                raise MutabilityError(f"{attr.name} is required and cannot be removed (RFC 7644 3.5.2)")


def _sync_schemas(doc: dict[str, Any], rt: ResourceType) -> None:
    """List exactly the extensions that hold data, after the core schema (RFC 7643 3)."""
    current = doc.get("schemas")
    schemas = [s for s in current if isinstance(s, str)] if isinstance(current, list) else [rt.schema.id]
    for ext in rt.extensions:
        urn = ext.schema.id
        listed = [s for s in schemas if s.lower() == urn.lower()]
        if doc.get(urn) and not listed:
            schemas.append(urn)
        elif not doc.get(urn) and listed:
            schemas = [s for s in schemas if s.lower() != urn.lower()]
    doc["schemas"] = schemas
