"""Attribute ownership and HR sources' settings: the policy's ``attributes:`` and ``sources:`` sections.

```yaml
attributes:               # which source is authoritative for each attribute
  active: hr              # hr: any HR source (csv, json); idp: any SCIM source; or a source's name
  manager: hr
  department: {owner: hr, conflict: deny}   # conflict: what the gate does with a non-owner's change
  userName: idp
  emails: idp
sources:
  workday:
    on_termination: deprovision   # deprovision | hold (the deactivation waits for approval)
    grace: 1d                     # counted from the termination date
```

A change from a source (an IdP over SCIM, ``scim:NAME``; an HR import, ``hr:NAME``) that changes an
attribute another source owns is held (the default) or denied. Two exceptions keep the safe
direction open: any source may deactivate or delete (a leaver is never kept by a lagging owner), and
a create has no owner's value yet to contradict. Changes an admin, a review or a lifecycle rule makes
are not a source's statement and are governed by the rules alone.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from scimward.errors import ConfigurationError
from scimward.store.governance import Change, RuleMatch

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
#: Attributes of the enterprise extension, which the policy may name without their schema.
ENTERPRISE_ATTRIBUTES = frozenset({"employeeNumber", "costCenter", "organization", "division", "department", "manager"})
#: The owner names that stand for a kind of source.
OWNER_KINDS = {"hr": "hr", "idp": "scim", "scim": "scim"}
CONFLICT_ACTIONS = ("hold", "deny")
TERMINATION_ACTIONS = ("deprovision", "hold")
#: The grace an HR source gives a termination when the policy does not say (docs/sources.md).
DEFAULT_GRACE = timedelta(days=1)


class OwnershipError(ConfigurationError):
    """An ``attributes:`` or ``sources:`` section scimward cannot use (``PolicyError`` wraps it)."""


@functools.lru_cache(maxsize=1024)
def attribute_path(name: str) -> str:
    """The path ``store.changes.changed_paths`` names an attribute by: ``manager`` is the enterprise
    extension's, ``name.givenName`` is ``name``."""
    if name.startswith("urn:"):
        return name
    if name in ENTERPRISE_ATTRIBUTES:
        return f"{ENTERPRISE}:{name}"
    return name.partition(".")[0]


@dataclass(frozen=True)
class Owner:
    owner: str
    conflict: str = "hold"

    def owns(self, source: str) -> bool:
        """Whether a change from ``source`` (``hr:NAME``, ``scim:NAME``) is the owner's."""
        kind, _, name = source.partition(":")
        wanted = OWNER_KINDS.get(self.owner)
        if wanted is not None:
            return kind == wanted
        return self.owner in (name, source)


@dataclass(frozen=True)
class SourceSettings:
    on_termination: str = "deprovision"
    grace: timedelta = DEFAULT_GRACE


@dataclass(frozen=True)
class Ownership:
    #: (path, owner) pairs, as written; a tuple so the policy stays hashable.
    owners: tuple[tuple[str, Owner], ...] = ()
    sources: tuple[tuple[str, SourceSettings], ...] = ()

    @functools.cached_property
    def by_path(self) -> Mapping[str, Owner]:
        # Once per policy: the gate asks for each change (100,000 of them in an HR backfill).
        return {attribute_path(name): owner for name, owner in self.owners}

    def owner_of(self, name: str) -> Owner | None:
        return self.by_path.get(attribute_path(name))

    def source(self, name: str) -> SourceSettings:
        return dict(self.sources).get(name, SourceSettings())

    def owned_by(self, source: str) -> list[str]:
        """The attributes (as written in the policy) that ``source`` owns."""
        return [name for name, owner in self.owners if owner.owns(source)]

    def to_json(self, duration: Callable[[timedelta], str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.owners:
            out["attributes"] = {
                name: owner.owner if owner.conflict == "hold" else {"owner": owner.owner, "conflict": owner.conflict}
                for name, owner in self.owners
            }
        if self.sources:
            out["sources"] = {
                name: {"on_termination": s.on_termination, "grace": duration(s.grace)} for name, s in self.sources
            }
        return out


Duration = Callable[[Any, str], timedelta]


def parse_ownership(data: Mapping[str, Any], duration: Duration) -> Ownership:
    """The ``attributes:`` and ``sources:`` sections of a policy document (either may be absent);
    ``duration`` reads a grace (``policy.document.parse_duration``), raising ``ValueError``."""
    raw_owners = data.get("attributes") or {}
    if not isinstance(raw_owners, dict):
        raise OwnershipError("attributes: a mapping from attribute to its owner (hr, idp or a source's name)")
    owners: list[tuple[str, Owner]] = []
    for name, raw in raw_owners.items():
        owners.append((str(name), _owner(str(name), raw)))
    raw_sources = data.get("sources") or {}
    if not isinstance(raw_sources, dict):
        raise OwnershipError("sources: a mapping from a source's name to its settings")
    settings = [(str(name), _settings(str(name), raw, duration)) for name, raw in raw_sources.items()]
    return Ownership(tuple(owners), tuple(settings))


def _owner(name: str, raw: Any) -> Owner:
    if isinstance(raw, str) and raw.strip():
        return Owner(raw.strip())
    if not isinstance(raw, dict) or not isinstance(raw.get("owner"), str) or not raw["owner"].strip():
        raise OwnershipError(
            f"attributes.{name}: an owner (hr, idp or a source's name), or {{owner: ..., conflict: hold | deny}}"
        )
    unknown = set(raw) - {"owner", "conflict"}
    if unknown:
        raise OwnershipError(f"attributes.{name}: unknown setting {sorted(unknown)[0]!r} (owner, conflict)")
    conflict = raw.get("conflict", "hold")
    if conflict not in CONFLICT_ACTIONS:
        raise OwnershipError(f"attributes.{name}.conflict: hold or deny, not {conflict!r}")
    return Owner(raw["owner"].strip(), conflict)


def _settings(name: str, raw: Any, duration: Duration) -> SourceSettings:
    if raw is None:
        return SourceSettings()
    if not isinstance(raw, dict):
        raise OwnershipError(f"sources.{name}: a mapping with on_termination and grace")
    unknown = set(raw) - {"on_termination", "grace"}
    if unknown:
        raise OwnershipError(f"sources.{name}: unknown setting {sorted(unknown)[0]!r} (on_termination, grace)")
    action = raw.get("on_termination", "deprovision")
    if action not in TERMINATION_ACTIONS:
        raise OwnershipError(f"sources.{name}.on_termination: deprovision or hold, not {action!r}")
    try:
        grace = duration(raw["grace"], f"sources.{name}.grace") if "grace" in raw else DEFAULT_GRACE
    except ValueError as exc:
        raise OwnershipError(str(exc)) from exc
    return SourceSettings(action, grace)


def source_verdict(ownership: Ownership, change: Change) -> RuleMatch | None:
    """A ``hold`` or ``deny`` for a change that contradicts ownership or waits by its source's settings;
    None when ownership has nothing to say. Pure: the gate adds it to the rules' decision."""
    source = change.source or ""
    kind, _, name = source.partition(":")
    if change.resource_type != "User" or kind not in ("hr", "scim") or change.before is None:
        return None
    if kind == "hr" and change.op == "deactivate" and ownership.source(name).on_termination == "hold":
        return RuleMatch(
            f"sources.{name}.on_termination", "hold", f"a termination from HR source {name} waits for approval"
        )
    if change.after is None:
        return None  # a delete: any source may take an identity away
    leaving = change.after.get("active") is False
    by_path = ownership.by_path
    denied: list[str] = []
    held: list[str] = []
    for path in change.changed:
        owner = by_path.get(path)
        if owner is None or owner.owns(source) or (path == "active" and leaving):
            continue
        short = path.rpartition(":")[2] if path.startswith("urn:") else path
        (denied if owner.conflict == "deny" else held).append(short)
    if not denied and not held:
        return None
    names = denied or held
    owners = sorted({owner.owner for n in names if (owner := ownership.owner_of(n)) is not None})
    return RuleMatch(
        "attributes",
        "deny" if denied else "hold",
        f"{source} does not own {', '.join(names)} (owned by {', '.join(owners)})",
    )
