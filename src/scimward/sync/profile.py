"""A target's capability profile: what its SCIM server really does, as probed or learned.

ServiceProviderConfig says what a server claims; real applications claim full PATCH and filter
support and then refuse a complex replace, answer an empty list to a filter they cannot evaluate,
or drop attributes they cannot store. The profile records what was *observed*, in the target's
JSON configuration under ``capabilities``, so that it survives restarts, shows in ``target show``
and can be set by hand (``--option capabilities.member_remove=value_list``) or from a built-in
profile (``--option profile=conservative``). Propagate and reconcile derive the wire form from it:

- ``complex_paths`` (true/false): replace ``name`` and ``manager`` by sub-attribute paths
  (``name.givenName``) instead of whole objects;
- ``member_remove`` (``filter``/``value_list``): ``members[value eq "x"]`` or
  ``{"path": "members", "value": [...]}``;
- ``group_rename`` (``patch``/``put``): rename a group by PATCH, or by PUT of the group as read;
- ``external_id_patch`` (true/false): adoption PATCHes ``externalId``, or PUTs the account;
- ``filters`` (``{"Users.externalId": bool, ...}``): look accounts up by filter, or from a read of
  every account;
- ``dropped`` (attribute paths): what the target does not store: not sent again, not drift.

A key absent is "not known yet": propagate tries the standard form first and falls back (and then
records what worked). ``probed`` is when ``target test`` last probed the target.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from scimward.scim.errors import InvalidValue

MEMBER_REMOVE = ("filter", "value_list")
GROUP_RENAME = ("patch", "put")
#: Lookups adoption makes: the attribute each resource type is searched by.
LOOKUPS = ("Users.externalId", "Users.userName", "Groups.externalId", "Groups.displayName")
#: Complex (single-valued) attributes sent as sub-attribute paths when ``complex_paths``.
COMPLEX = ("name", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager")

#: Built-in profiles: common behaviours of real applications, a starting point the probe refines.
BUILTIN: dict[str, dict[str, Any]] = {
    # A server that does what RFC 7644 says (a second scimward, scim2-server).
    "standard": {"complex_paths": False, "member_remove": "filter", "group_rename": "patch", "external_id_patch": True},
    # The forms nearly every application accepts: sub-attribute paths, value-list removal, PUT for
    # renames and adoption, and no trust in filters beyond userName.
    "conservative": {
        "complex_paths": True,
        "member_remove": "value_list",
        "group_rename": "put",
        "external_id_patch": False,
        "filters": {"Users.externalId": False, "Groups.externalId": False, "Groups.displayName": False},
    },
}


@dataclass(frozen=True)
class Capabilities:
    complex_paths: bool | None = None
    member_remove: str | None = None
    group_rename: str | None = None
    external_id_patch: bool | None = None
    filters: Mapping[str, bool] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    probed: str | None = None

    @classmethod
    def from_config(cls, extra: Mapping[str, Any]) -> Capabilities:
        """The profile in a target's settings: the built-in ``profile`` first, ``capabilities`` over it."""
        base = dict(BUILTIN.get(str(extra.get("profile")), {}))
        data = {**base, **(extra.get("capabilities") or {})}
        filters = {**base.get("filters", {}), **(data.get("filters") or {})}
        return cls(
            data.get("complex_paths"),
            data.get("member_remove"),
            data.get("group_rename"),
            data.get("external_id_patch"),
            filters,
            tuple(data.get("dropped") or ()),
            data.get("probed"),
        )

    def learned(self, **changes: Any) -> Capabilities:
        return replace(self, **changes)

    def with_drops(self, paths: Iterable[str]) -> Capabilities:
        return replace(self, dropped=tuple(sorted({*self.dropped, *paths})))

    def with_filter(self, lookup: str, works: bool) -> Capabilities:
        return replace(self, filters={**self.filters, lookup: works})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            key: value
            for key, value in (
                ("complex_paths", self.complex_paths),
                ("member_remove", self.member_remove),
                ("group_rename", self.group_rename),
                ("external_id_patch", self.external_id_patch),
                ("probed", self.probed),
            )
            if value is not None
        }
        if self.filters:
            out["filters"] = dict(self.filters)
        if self.dropped:
            out["dropped"] = list(self.dropped)
        return out


def check(extra: Mapping[str, Any]) -> None:
    """Refuse a ``profile`` or ``capabilities`` setting that propagate could not follow."""
    profile = extra.get("profile")
    if profile is not None and profile not in BUILTIN:
        raise InvalidValue(f"profile must be one of {', '.join(BUILTIN)}, not {profile!r}")
    data = extra.get("capabilities")
    if data is None:
        return
    if not isinstance(data, dict):
        raise InvalidValue("capabilities must be an object of capability settings")
    allowed = {"complex_paths", "member_remove", "group_rename", "external_id_patch", "filters", "dropped", "probed"}
    unknown = set(data) - allowed
    if unknown:
        raise InvalidValue(
            f"capabilities.{sorted(unknown)[0]} is not a capability; allowed: {', '.join(sorted(allowed))}"
        )
    for key in ("complex_paths", "external_id_patch"):
        if key in data and not isinstance(data[key], bool):
            raise InvalidValue(f"capabilities.{key} must be true or false")
    for key, allowed_values in (("member_remove", MEMBER_REMOVE), ("group_rename", GROUP_RENAME)):
        if key in data and data[key] not in allowed_values:
            raise InvalidValue(f"capabilities.{key} must be one of {', '.join(allowed_values)}, not {data[key]!r}")
    filters = data.get("filters", {})
    if not isinstance(filters, dict) or any(k not in LOOKUPS or not isinstance(v, bool) for k, v in filters.items()):
        raise InvalidValue(f"capabilities.filters maps {', '.join(LOOKUPS)} to true or false")
    dropped = data.get("dropped", [])
    if not isinstance(dropped, list) or not all(isinstance(p, str) and p for p in dropped):
        raise InvalidValue("capabilities.dropped must be a list of attribute paths")
    if "probed" in data and not isinstance(data["probed"], str):
        raise InvalidValue("capabilities.probed must be a timestamp")


# -- what a target stores ---------------------------------------------------------------------------


def strip(body: dict[str, Any], dropped: Iterable[str]) -> dict[str, Any]:
    """``body`` without the attributes a target does not store: ``title``, a whole extension URN,
    ``urn:...:department``, or a sub-attribute of every value of a multi-valued one (``emails.type``)."""
    drops = {path.lower() for path in dropped}
    if not drops:
        return body
    out: dict[str, Any] = {}
    for key, value in body.items():
        low = key.lower()
        if low in drops:
            continue
        if low.startswith("urn:") and isinstance(value, dict):
            kept = {sub: v for sub, v in value.items() if f"{low}:{sub.lower()}" not in drops}
            if kept:
                out[key] = kept
            continue
        if isinstance(value, list):
            subs = {path.partition(".")[2] for path in drops if path.partition(".")[0] == low and "." in path}
            if subs:
                value = [
                    {k: v for k, v in item.items() if k.lower() not in subs} if isinstance(item, dict) else item
                    for item in value
                ]
        out[key] = value
    if "schemas" in out:
        present = {k for k in out if k.lower().startswith("urn:")}
        out["schemas"] = [
            s
            for s in out["schemas"]
            if not s.lower().startswith("urn:ietf:params:scim:schemas:extension") or s in present
        ]
    return out


def drops(sent: Mapping[str, Any], held: Mapping[str, Any]) -> set[str]:
    """Attribute paths ``sent`` held that the target's answer ``held`` does not: it did not store them.

    Attribute names compare case-insensitively (RFC 7643 2.1). Only what carried a value counts: a
    ``primary: false`` left out is the same as sent.
    """
    lowered = {k.lower(): v for k, v in held.items()}
    missing: set[str] = set()
    for key, value in sent.items():
        low = key.lower()
        if low in ("schemas", "id", "meta", "members", "password") or value in (None, "", [], {}):
            continue
        if low not in lowered:
            if low.startswith("urn:") and isinstance(value, dict):
                missing.update(f"{key}:{sub}" for sub, v in value.items() if v not in (None, "", [], {}))
            else:
                missing.add(key)
            continue
        answer = lowered[low]
        if low.startswith("urn:") and isinstance(value, dict) and isinstance(answer, dict):
            inner = {k.lower() for k in answer}
            missing.update(
                f"{key}:{sub}" for sub, v in value.items() if v not in (None, "", [], {}) and sub.lower() not in inner
            )
        elif isinstance(value, list) and isinstance(answer, list):
            sent_keys = {k.lower() for item in value if isinstance(item, dict) for k, v in item.items() if v}
            held_keys = {k.lower() for item in answer if isinstance(item, dict) for k in item}
            missing.update(f"{key}.{sub}" for sub in sent_keys - held_keys)
    return missing
