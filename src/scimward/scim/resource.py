"""Validation, normalisation and rendering of SCIM resources, driven only by attribute declarations.

RFC 7643 sections 2 (attribute characteristics), 3 (resources) and 7 (``mutability``/``returned``);
RFC 7644 section 3.9 (``attributes`` / ``excludedAttributes``).

The canonical document ("doc") is what the store keeps: declared attribute-name casing, core attributes
at top level, extension attributes under the extension's canonical URN, ``schemas`` listing the core URN
then each extension present. A doc never holds ``id``, ``meta`` or readOnly attributes: the store adds
those on output.

Input is lenient where the identity providers need it, and each such rewrite is logged at DEBUG on
``scimward.scim.resource`` naming it, so an admin can see what a client sent: ``string-boolean``
(``"True"``/``"False"`` for a boolean), ``bare-value`` (a plain value for a complex attribute that has
a ``value`` sub-attribute, e.g. Entra's manager id), ``extra-schema-dropped`` (a URN in ``schemas`` this
resource type does not declare, e.g. Entra's ADSCIM Group schema) and ``read-only-ignored`` (``id``,
``meta``, ``groups``, ``members.display`` and other readOnly input, RFC 7643 2.2).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Literal

from scimward.scim.ast import AttrPath
from scimward.scim.errors import InvalidPath, InvalidSyntax, InvalidValue, MutabilityError
from scimward.scim.limits import MAX_VALUES, check_text
from scimward.scim.resource_types import COMMON_ATTRIBUTES
from scimward.scim.schema import Attribute, AttrType, Mutability, ResourceType, Returned, Schema

#: What ``render`` keeps of one attribute: None = the whole value, a frozenset = only those sub-attributes.
Keep = frozenset[str] | None
#: Per section (None = core and common attributes, else an extension URN): attribute name -> Keep.
#: Attributes absent from a section are not rendered.
Plan = dict[str | None, dict[str, Keep]]

_RO = Mutability.READ_ONLY

log = logging.getLogger("scimward.scim.resource")


class _Tables:
    """Lookup tables for one ResourceType, built once per process (see ``_tables``)."""

    __slots__ = ("attrs", "default_plan", "ext_urns", "exts", "immutable", "prefixes", "required", "rt", "sections")

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt
        # Section -> {lower-case name: Attribute}. The core section also holds the common attributes.
        self.attrs: dict[str | None, dict[str, Attribute]] = {
            None: {a.name.lower(): a for a in (*COMMON_ATTRIBUTES, *rt.schema.attributes)},
            **{e.schema.id: {a.name.lower(): a for a in e.schema.attributes} for e in rt.extensions},
        }
        self.exts: dict[str, Schema] = {e.schema.id.lower(): e.schema for e in rt.extensions}
        self.ext_urns = tuple(e.schema.id for e in rt.extensions)
        # Schema URNs that may qualify a path, longest first so a URN extending another one wins.
        self.prefixes = sorted(
            [(rt.schema.id.lower(), None), *((e.schema.id.lower(), e.schema.id) for e in rt.extensions)],
            key=lambda p: -len(p[0]),
        )
        self.sections: tuple[tuple[str | None, tuple[Attribute, ...]], ...] = (
            (None, rt.schema.attributes),
            *((e.schema.id, e.schema.attributes) for e in rt.extensions),
        )
        required_exts = {e.schema.id for e in rt.extensions if e.required}
        # (section, attribute, its required sub-attributes, required even when its section is absent?)
        self.required: list[tuple[str | None, Attribute, tuple[Attribute, ...], bool]] = []
        # (section, attribute, immutable sub-attributes or () to compare the whole value). Immutable
        # sub-attributes of multi-valued attributes (Group.members) are not compared: such values have
        # no identity besides their content, so a "changed" value is one removed and another added.
        self.immutable: list[tuple[str | None, Attribute, tuple[Attribute, ...]]] = []
        for urn, attrs in self.sections:
            for a in attrs:
                subs = tuple(s for s in a.sub_attributes if s.required and s.mutability is not _RO)
                if a.mutability is not _RO and (a.required or subs):  # readOnly ones are server-assigned
                    self.required.append((urn, a, subs, urn is None or urn in required_exts))
                if a.mutability is Mutability.IMMUTABLE:
                    self.immutable.append((urn, a, ()))
                elif not a.multi_valued and (
                    subs := tuple(s for s in a.sub_attributes if s.mutability is Mutability.IMMUTABLE)
                ):
                    self.immutable.append((urn, a, subs))
        self.default_plan = _build_plan(self, (), ())


_TABLES: dict[int, tuple[ResourceType, _Tables]] = {}


def _tables(rt: ResourceType) -> _Tables:
    # Keyed by identity: hashing a ResourceType walks every declaration (~12 us), too slow per request.
    hit = _TABLES.get(id(rt))
    if hit is not None and hit[0] is rt:
        return hit[1]
    tables = _Tables(rt)
    _TABLES[id(rt)] = (rt, tables)
    return tables


# ---------------------------------------------------------------------------------------------- input


def normalize(body: Any, rt: ResourceType) -> dict[str, Any]:
    """Validate a POST/PUT body and return the canonical doc (see module docstring)."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    t = _tables(rt)
    core: dict[str, Any] = {}
    exts: dict[str, dict[str, Any]] = {}
    schemas: Any = None
    for key, value in body.items():
        lowered = key.lower()
        if lowered == "schemas":
            schemas = value
        elif lowered.startswith("urn:"):
            ext = t.exts.get(lowered)
            if ext is None:
                raise InvalidSyntax(f"unknown schema extension '{key}' for resource type {rt.name}")
            if ext.id in exts:
                raise InvalidSyntax(f"extension '{ext.id}' given more than once")
            if value is not None and not isinstance(value, dict):
                raise InvalidSyntax(f"extension '{ext.id}' must be a JSON object")
            exts[ext.id] = value or {}
        else:
            core[key] = value
    if not isinstance(schemas, list) or not all(isinstance(s, str) for s in schemas):
        raise InvalidSyntax(f"'schemas' must be a list of schema URNs including '{rt.schema.id}'")
    if rt.schema.id.lower() not in {s.lower() for s in schemas}:
        raise InvalidSyntax(f"'schemas' must include '{rt.schema.id}'")
    # Other URNs are tolerated and dropped: Entra lists an ADSCIM Group schema of its own.
    for urn in schemas:
        if urn.lower() != rt.schema.id.lower() and urn.lower() not in t.exts:
            log.debug("rewrite extra-schema-dropped: %r in 'schemas' is not a schema of %s; dropped", urn, rt.name)
    doc: dict[str, Any] = {"schemas": [rt.schema.id]}
    doc.update(_normalize_attrs(core, t.attrs[None], "", f"resource type {rt.name}"))
    for urn in t.ext_urns:  # declared order, whatever order the client used
        data = _normalize_attrs(exts.get(urn) or {}, t.attrs[urn], f"{urn}:", f"extension {urn}")
        if data:
            doc[urn] = data
            doc["schemas"].append(urn)
    check_required(doc, rt)
    check_value_counts(doc, rt)
    return doc


def check_value_counts(doc: dict[str, Any], rt: ResourceType) -> None:
    """At most ``MAX_VALUES`` values in each multi-valued attribute of the document, so a PATCH filter
    over one costs a bounded walk. Group membership is exempt: it lives in rows, not in the document."""
    for urn, attrs in _tables(rt).sections:
        data = doc if urn is None else doc.get(urn)
        if not isinstance(data, dict):
            continue
        for attr in attrs:
            value = data.get(attr.name)
            if attr.multi_valued and attr.name != "members" and isinstance(value, list) and len(value) > MAX_VALUES:
                raise InvalidValue(f"attribute '{attr.name}' has {len(value)} values; at most {MAX_VALUES} are allowed")


def _normalize_attrs(data: dict[str, Any], attrs: dict[str, Attribute], prefix: str, where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        attr = attrs.get(key.lower())
        if attr is None:
            raise InvalidSyntax(f"unknown attribute '{key}' for {where}")
        if attr.mutability is _RO:  # RFC 7643 2.2: readOnly values in input SHALL be ignored
            if value is not None:
                log.debug(
                    "rewrite read-only-ignored: '%s%s' is readOnly; the value given is ignored", prefix, attr.name
                )
            continue
        if attr.name in out:
            raise InvalidSyntax(f"attribute '{prefix}{attr.name}' given more than once")
        normalized = normalize_value(attr, value, prefix + attr.name)
        if normalized is not None:
            out[attr.name] = normalized
    return out


def normalize_value(attr: Attribute, value: Any, path: str) -> Any:
    """Type-check and coerce one attribute's value; None (or an empty list/object) means unassigned.

    A multi-valued attribute accepts a lone value and always returns a list (RFC 7643 2.5: null and
    ``[]`` are equivalent to unassigned, so those return None).
    """
    if value is None:
        return None
    if attr.multi_valued:
        items = value if isinstance(value, list) else [value]  # lenient: a lone value
        out = [v for v in (_one(attr, item, path) for item in items) if v is not None]
        if not out:
            return None
        if attr.is_complex and sum(1 for v in out if v.get("primary") is True) > 1:
            raise InvalidValue(f"attribute '{path}' has more than one value with primary true")
        return out
    if isinstance(value, list):
        raise InvalidValue(f"attribute '{path}' is single-valued and must not be a list")
    return _one(attr, value, path)


def _one(attr: Attribute, value: Any, path: str) -> Any:
    if value is None:
        return None
    if not attr.is_complex:
        scalar = _SCALARS[attr.type](value, path)
        if isinstance(scalar, str):
            _check_stored_text(attr, scalar, path)
        return scalar
    if not isinstance(value, dict):
        # A complex attribute with a "value" sub-attribute accepts the bare value: Entra and Okta send
        # manager as a plain id, and some clients send members/emails as plain strings.
        if isinstance(value, list) or attr.sub("value") is None:
            raise InvalidValue(f"attribute '{path}' must be a complex value (a JSON object)")
        log.debug("rewrite bare-value: '%s' given the plain value %r, read as {\"value\": %r}", path, value, value)
        value = {"value": value}
    out: dict[str, Any] = {}
    for key, sub_value in value.items():
        sub = attr.sub(key)
        if sub is None:
            raise InvalidSyntax(f"unknown attribute '{path}.{key}'")
        if sub.mutability is _RO:
            if sub_value is not None:
                log.debug("rewrite read-only-ignored: '%s.%s' is readOnly; the value given is ignored", path, sub.name)
            continue
        normalized = normalize_value(sub, sub_value, f"{path}.{sub.name}")
        if normalized is not None:
            out[sub.name] = normalized
    return out or None


def _check_stored_text(attr: Attribute, text: str, path: str) -> None:
    """The same text is storable on both dialects (``scim.limits``): no NUL, no lone surrogate, no longer
    than the column that holds it."""
    check_text(text, f"attribute '{path}'")
    if attr.max_length is not None and len(text) > attr.max_length:
        raise InvalidValue(f"attribute '{path}' is {len(text)} characters long; at most {attr.max_length} are allowed")


def _instance_of(kinds: type | tuple[type, ...], what: str) -> Callable[[Any, str], Any]:
    def check(value: Any, path: str) -> Any:
        if isinstance(value, kinds) and not isinstance(value, bool):  # JSON true is no number
            return value
        raise InvalidValue(f"attribute '{path}' must be {what}")

    return check


def _boolean(value: Any, path: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):  # Okta and Entra send "True"/"False"
        lowered = value.lower()
        if lowered in ("true", "false"):
            log.debug("rewrite string-boolean: '%s' given the string %r, read as %s", path, value, lowered)
            return lowered == "true"
    raise InvalidValue(f"attribute '{path}' must be a boolean")


_DATETIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|([+-])(\d\d):(\d\d))?")


def _datetime(value: Any, path: str) -> Any:
    """xsd:dateTime (RFC 7643 2.3.5), normalised to UTC with ``Z``.

    A time without offset is taken as UTC. Fractional seconds, when given, are kept as milliseconds, or
    microseconds when finer, so equal instants always render identically.
    """
    match = _DATETIME.fullmatch(value) if isinstance(value, str) else None
    if match is not None:
        year, month, day, hour, minute, second, frac, zone, sign, tzh, tzm = match.groups()
        micro = int((frac + "00000")[:6]) if frac else 0
        tz = UTC
        if zone and zone != "Z":
            offset = timedelta(hours=int(tzh), minutes=int(tzm))
            tz = timezone(-offset if sign == "-" else offset)
        try:
            dt = datetime(
                int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
            ).astimezone(UTC)
        except (ValueError, OverflowError):
            pass
        else:
            text = f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}"
            if frac:
                micro = dt.microsecond
                text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
            return text + "Z"
    raise InvalidValue(f"attribute '{path}' must be an xsd:dateTime such as 2026-01-02T03:04:05Z")


_SCALARS: dict[AttrType, Callable[[Any, str], Any]] = {
    AttrType.STRING: _instance_of(str, "a string"),
    AttrType.REFERENCE: _instance_of(str, "a string (a URI)"),
    AttrType.BINARY: _instance_of(str, "a string (base64)"),
    AttrType.BOOLEAN: _boolean,
    AttrType.INTEGER: _instance_of(int, "an integer"),
    AttrType.DECIMAL: _instance_of((int, float), "a decimal number"),
    AttrType.DATETIME: _datetime,
}


def check_required(doc: dict[str, Any], rt: ResourceType) -> None:
    """Raise InvalidValue when a required attribute, or a required sub-attribute of a present value, is
    missing. Required attributes of an optional extension are required only when it is present."""
    for urn, attr, subs, always in _tables(rt).required:
        data = doc if urn is None else doc.get(urn)
        path = attr.name if urn is None else f"{urn}:{attr.name}"
        value = data.get(attr.name) if isinstance(data, dict) else None
        if value is None:
            if attr.required and (always or data):
                raise InvalidValue(f"attribute '{path}' is required")
            continue
        for item in value if isinstance(value, list) else [value]:
            for sub in subs:
                if isinstance(item, dict) and item.get(sub.name) is None:
                    raise InvalidValue(f"attribute '{path}.{sub.name}' is required")


def check_immutable(old: dict[str, Any], new: dict[str, Any], rt: ResourceType) -> None:
    """RFC 7643 2.2: an immutable attribute that has a value SHALL NOT be updated (removal included)."""
    for urn, attr, subs in _tables(rt).immutable:
        old_data = old if urn is None else old.get(urn) or {}
        new_data = new if urn is None else new.get(urn) or {}
        old_value, new_value = old_data.get(attr.name), new_data.get(attr.name)
        path = attr.name if urn is None else f"{urn}:{attr.name}"
        if not subs:
            if old_value is not None and not _same(attr, old_value, new_value):
                raise MutabilityError(f"attribute '{path}' is immutable and cannot be changed")
            continue
        if not isinstance(old_value, dict):
            continue
        for sub in subs:
            old_sub = old_value.get(sub.name)
            new_sub = new_value.get(sub.name) if isinstance(new_value, dict) else None
            if old_sub is not None and not _same(sub, old_sub, new_sub):
                raise MutabilityError(f"attribute '{path}.{sub.name}' is immutable and cannot be changed")


def _same(attr: Attribute, a: Any, b: Any) -> bool:
    """Equality as SCIM compares values: caseExact=false strings ignore case, lists ignore order."""
    if a is None or b is None:
        return a is None and b is None
    if attr.multi_valued and isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(any(_same_one(attr, x, y) for y in b) for x in a)
    return _same_one(attr, a, b)


def _same_one(attr: Attribute, a: Any, b: Any) -> bool:
    if attr.is_complex and isinstance(a, dict) and isinstance(b, dict):
        return all(_same(s, a.get(s.name), b.get(s.name)) for s in attr.sub_attributes)
    if attr.type is AttrType.STRING and not attr.case_exact and isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return bool(a == b)


# ---------------------------------------------------------------------------------------------- paths


def find_attribute(rt: ResourceType, path: AttrPath) -> tuple[str | None, Attribute, Attribute | None]:
    """Resolve ``[urn:]attr[.sub]`` to (extension URN or None for core/common, attribute, sub-attribute).

    The path is re-read from its text so that however a parser split a URN-qualified name
    (``urn:...:enterprise:2.0:User:manager.value``), the declared URNs decide. Raises InvalidPath.
    """
    return _resolve(_tables(rt), str(path))


@lru_cache(maxsize=4096)
def _resolve(t: _Tables, text: str) -> tuple[str | None, Attribute, Attribute | None]:
    urn, rest = _split_urn(t, text)
    if rest is None:
        raise InvalidPath(f"unknown schema in attribute path '{text}' for resource type {t.rt.name}")
    name, dot, sub_name = rest.partition(".")
    attr = t.attrs[urn].get(name.lower())
    if attr is None:
        raise InvalidPath(f"unknown attribute '{text}' for resource type {t.rt.name}")
    if not dot:
        return urn, attr, None
    sub = attr.sub(sub_name)
    if sub is None:
        raise InvalidPath(f"unknown sub-attribute '{text}' for resource type {t.rt.name}")
    return urn, attr, sub


def _split_urn(t: _Tables, text: str) -> tuple[str | None, str | None]:
    """(section, remaining name); remaining is None when the text has an undeclared URN prefix."""
    lowered = text.lower()
    if not lowered.startswith("urn:"):
        return None, text
    for prefix, urn in t.prefixes:
        if lowered.startswith(prefix) and lowered[len(prefix) : len(prefix) + 1] == ":":
            return urn, text[len(prefix) + 1 :]
    return None, None


def parse_attribute_list(text: str | None, rt: ResourceType) -> tuple[AttrPath, ...]:
    """Parse an ``attributes=``/``excludedAttributes=`` value (RFC 7644 3.9); blanks are skipped."""
    if not text:
        return ()
    t = _tables(rt)
    paths: list[AttrPath] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        schema: str | None = None
        urn, rest = _split_urn(t, part)
        if part[:4].lower() == "urn:":
            if rest is not None:
                schema = urn or t.rt.schema.id
            else:  # undeclared URN or a whole extension: the prefix ends at the last ':'
                schema, _, rest = part.rpartition(":")
        name, _, sub = (rest or part).partition(".")
        paths.append(AttrPath(schema, name, sub or None))
    return tuple(paths)


# -------------------------------------------------------------------------------------------- output


def render(
    doc: dict[str, Any], rt: ResourceType, *, attributes: Sequence[AttrPath] = (), excluded: Sequence[AttrPath] = ()
) -> dict[str, Any]:
    """The representation of ``doc`` (which includes ``id`` and ``meta``) per ``returned`` and the
    ``attributes``/``excludedAttributes`` parameters (RFC 7643 7, RFC 7644 3.9).

    Nested values are shared with ``doc``, not copied.
    """
    t = _tables(rt)
    plan = t.default_plan if not attributes and not excluded else _build_plan(t, tuple(attributes), tuple(excluded))
    core = _apply(plan[None], doc)
    schemas = [rt.schema.id]
    out: dict[str, Any] = {"schemas": schemas}
    for key in ("id", "externalId"):
        if key in core:
            out[key] = core.pop(key)
    meta = core.pop("meta", None)
    out.update(core)
    for urn in t.ext_urns:
        data = doc.get(urn)
        section = _apply(plan[urn], data) if isinstance(data, dict) else None
        if section:
            out[urn] = section
            schemas.append(urn)
    if meta is not None:
        out["meta"] = meta
    return out


def _apply(section: dict[str, Keep], data: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key not in section:
            continue
        keep = section[key]
        if keep is not None:
            if isinstance(value, list):
                value = [d for d in ({k: v for k, v in i.items() if k in keep} for i in value) if d] or None
            else:
                value = {k: v for k, v in value.items() if k in keep} or None
            if value is None:
                continue
        out[key] = value
    return out


#: Selection from attributes/excludedAttributes: (section, attribute name) -> None for the whole
#: attribute, else the set of named sub-attributes.
_Selection = dict[tuple[str | None, str], set[str] | None]


@lru_cache(maxsize=1024)
def _build_plan(t: _Tables, attributes: tuple[AttrPath, ...], excluded: tuple[AttrPath, ...]) -> Plan:
    selected, dropped = _selection(t, attributes), _selection(t, excluded)
    plan: Plan = {}
    for urn, attrs in ((None, (*COMMON_ATTRIBUTES, *t.rt.schema.attributes)), *t.sections[1:]):
        section: dict[str, Keep] = plan.setdefault(urn, {})
        for attr in attrs:
            key = (urn, attr.name)
            returned = attr.returned
            if urn is None and attr.name == "meta":
                returned = Returned.ALWAYS  # the server always renders meta (location, version)
            keep = _keep(
                attr, returned, bool(selected), key in selected, selected.get(key), key in dropped, dropped.get(key)
            )
            if keep is not False:
                section[attr.name] = keep
    return plan


def _selection(t: _Tables, paths: tuple[AttrPath, ...]) -> _Selection:
    selection: _Selection = {}
    for path in paths:
        ext = t.exts.get(str(path).lower())
        if ext is not None:  # a whole extension named by its URN
            selection.update({(ext.id, a.name): None for a in ext.attributes})
            continue
        try:
            urn, attr, sub = _resolve(t, str(path))
        except InvalidPath:
            continue  # RFC 7644 3.9: unknown names are ignored
        key = (urn, attr.name)
        if sub is None:
            selection[key] = None
        elif key not in selection:
            selection[key] = {sub.name}
        elif (subs := selection[key]) is not None:
            subs.add(sub.name)
    return selection


def _keep(
    attr: Attribute,
    returned: Returned,
    any_selected: bool,
    named: bool,
    named_subs: set[str] | None,
    excluded: bool,
    excluded_subs: set[str] | None,
) -> Keep | Literal[False]:
    """What to render of ``attr``; False = nothing."""
    if returned is Returned.NEVER or (returned is Returned.REQUEST and not named):
        return False
    if returned is Returned.DEFAULT and ((any_selected and not named) or (excluded and not excluded_subs)):
        return False
    if not attr.is_complex:
        return None
    kept = []
    for sub in attr.sub_attributes:
        if sub.returned is Returned.ALWAYS:
            kept.append(sub.name)
        elif sub.returned is Returned.NEVER:
            continue
        elif named_subs is not None:  # only the named sub-attributes
            if sub.name in named_subs:
                kept.append(sub.name)
        elif sub.returned is Returned.REQUEST:
            if named:  # the whole parent was asked for
                kept.append(sub.name)
        elif not excluded_subs or sub.name not in excluded_subs:
            kept.append(sub.name)
    if len(kept) == len(attr.sub_attributes):
        return None
    return frozenset(kept) if kept else False
