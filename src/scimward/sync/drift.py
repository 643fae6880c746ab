"""Drift: how an account on a target differs from what it should hold. Pure: no I/O.

Reconcile compares three states of every identity (DESIGN.md): *desired* (``sync.mapping``: the
effective state through the target's scope and mapping), *last pushed* (the link's state, what the
target last acknowledged) and *actual* (the account as read back now). Which of them disagree
names the drift:

=============================  =========================================================  ========
kind                           when                                                       severity
=============================  =========================================================  ========
active_should_be_inactive      an account is active that the hub deprovisioned, or whose  critical
                               identity is inactive (late deprovisioning)
orphaned_account               an active account no identity in the hub should hold       high
extra_membership               a member on the target the hub's group does not have       high
changed_in_app                 actual differs from last pushed: edited in the application medium
attribute_drift                actual matches last pushed but not desired: the hub's      medium
                               change never arrived
missing_account                an identity in scope has no account on the target          medium
missing_membership             a member of the hub's group is not a member on the target  low
=============================  =========================================================  ========

Attributes are compared as ``sync.diff`` pushes them: top-level attributes whole, extension
attributes one by one under their URN. A target may add to what it was sent (``meta``, a
manager's ``$ref`` and ``displayName``, sub-attributes it defaults), so actual *satisfies* desired
when it holds everything desired holds; multi-valued attributes compare regardless of order. Only
attributes the target's mapping owns are compared: the rest belong to the application.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from scimward.scim.resource_types import USER_SCHEMA
from scimward.sync.mapping import DEFAULT_USER_RULES
from scimward.sync.targets import AttributeRule


class Kind(StrEnum):
    MISSING_ACCOUNT = "missing_account"
    ORPHANED_ACCOUNT = "orphaned_account"
    ACTIVE_SHOULD_BE_INACTIVE = "active_should_be_inactive"
    ATTRIBUTE_DRIFT = "attribute_drift"
    EXTRA_MEMBERSHIP = "extra_membership"
    MISSING_MEMBERSHIP = "missing_membership"
    CHANGED_IN_APP = "changed_in_app"


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


SEVERITY: Mapping[Kind, Severity] = {
    Kind.ACTIVE_SHOULD_BE_INACTIVE: Severity.CRITICAL,
    Kind.ORPHANED_ACCOUNT: Severity.HIGH,
    Kind.EXTRA_MEMBERSHIP: Severity.HIGH,
    Kind.CHANGED_IN_APP: Severity.MEDIUM,
    Kind.ATTRIBUTE_DRIFT: Severity.MEDIUM,
    Kind.MISSING_ACCOUNT: Severity.MEDIUM,
    Kind.MISSING_MEMBERSHIP: Severity.LOW,
}

#: Attributes that grant something in the application: drift in them is raised to high.
PRIVILEGED = frozenset({"roles", "entitlements", "usertype", "x509certificates"})

#: What the hub owns on every account, whatever the mapping: how the account is found again.
_ALWAYS_OWNED = frozenset({"externalid"})
_NOT_STATE = frozenset({"schemas", "id", "meta"})
#: ``name`` names an Agent; ``userType`` tells a service account (``scimward nhi unmanaged`` reads it).
_SUMMARY = ("id", "userName", "name", "displayName", "userType", "externalId", "active")


@dataclass(frozen=True)
class Drift:
    """One finding's worth of difference. ``attribute`` is a SCIM path, or "" for the whole account;
    ``desired``, ``last_pushed`` and ``actual`` are its three values (None: absent)."""

    kind: Kind
    resource_type: str
    identity_id: str | None
    remote_id: str | None
    attribute: str = ""
    desired: Any = None
    last_pushed: Any = None
    actual: Any = None
    detail: str | None = None

    @property
    def subject(self) -> str:
        """What the finding is about: the hub identity; for an orphaned account, the account itself
        (two accounts may claim one identity)."""
        if self.kind is Kind.ORPHANED_ACCOUNT:
            return self.remote_id or ""
        return self.identity_id or self.remote_id or ""

    @property
    def severity(self) -> Severity:
        if self.kind in (Kind.CHANGED_IN_APP, Kind.ATTRIBUTE_DRIFT) and self.attribute.lower() in PRIVILEGED:
            return Severity.HIGH
        return SEVERITY[self.kind]


# -- values ---------------------------------------------------------------------------------------


def flat_path(path: str) -> str:
    """The path as diffs compare it: ``name.givenName`` is ``name``; an extension attribute keeps its URN;
    a core attribute named by its schema URN loses it."""
    if path.lower().startswith("urn:"):
        urn, _, rest = path.rpartition(":")
        attribute = rest.partition(".")[0]
        return attribute if urn.lower() == USER_SCHEMA.lower() else f"{urn}:{attribute}"
    return path.partition(".")[0]


def flatten(body: Mapping[str, Any]) -> dict[str, tuple[str, Any]]:
    """lower-cased path -> (path, value): top-level attributes whole, extension attributes one by one."""
    flat: dict[str, tuple[str, Any]] = {}
    for key, value in body.items():
        if key.lower() in _NOT_STATE:
            continue
        if key.lower().startswith("urn:") and isinstance(value, dict):
            if key.lower() == USER_SCHEMA.lower():  # core attributes sent under their schema URN
                flat.update(flatten(value))
                continue
            for sub, sub_value in value.items():
                flat[f"{key}:{sub}".lower()] = (f"{key}:{sub}", sub_value)
        else:
            flat[key.lower()] = (key, value)
    return flat


def owned_paths(rules: Iterable[AttributeRule] | None) -> frozenset[str]:
    """The lower-cased paths a User mapping writes (None: the default mapping)."""
    chosen = DEFAULT_USER_RULES if rules is None else rules
    return _ALWAYS_OWNED | {flat_path(rule.target).lower() for rule in chosen}


GROUP_OWNED = frozenset({"externalid", "displayname"})


def empty(value: Any) -> bool:
    return value is None or value == "" or value == [] or value == {}


def satisfies(desired: Any, actual: Any, *, nested: bool = False) -> bool:
    """Whether ``actual`` holds everything ``desired`` holds (see the module docstring)."""
    if empty(desired):
        # Within a complex value a target may drop a false flag (``primary: false``) it was sent.
        return empty(actual) or (nested and actual is False)
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        lowered = {str(key).lower(): value for key, value in actual.items()}
        return all(satisfies(value, lowered.get(str(key).lower()), nested=True) for key, value in desired.items())
    if isinstance(desired, list):
        if not isinstance(actual, list) or len(actual) != len(desired):
            return False
        remaining = list(actual)
        for item in desired:
            match = next((i for i, candidate in enumerate(remaining) if satisfies(item, candidate, nested=True)), None)
            if match is None:
                return False
            del remaining[match]
        return True
    if desired is False and nested and actual is None:
        return True
    if isinstance(desired, bool) or isinstance(actual, bool):
        return desired is actual
    return bool(desired == actual)


def is_active(account: Mapping[str, Any]) -> bool:
    """Whether the account can be used: ``active`` not false. A target that keeps no ``active`` cannot
    switch an account off, so its accounts count as active."""
    for key, value in account.items():
        if key.lower() == "active":
            return value is not False
    return True


def summary(account: Mapping[str, Any]) -> dict[str, Any]:
    """What a finding keeps of an account that is not the hub's: enough to find it in the application."""
    lowered = {key.lower(): value for key, value in account.items()}
    return {name: lowered[name.lower()] for name in _SUMMARY if name.lower() in lowered}


def member_path(remote_id: str) -> str:
    escaped = remote_id.replace("\\", "\\\\").replace('"', '\\"')
    return f'members[value eq "{escaped}"]'


# -- accounts -------------------------------------------------------------------------------------


def account_drift(
    resource_type: str,
    identity_id: str,
    remote_id: str,
    desired: Mapping[str, Any],
    last_pushed: Mapping[str, Any] | None,
    actual: Mapping[str, Any],
    owned: Set[str],
    *,
    in_flight: bool = False,
) -> list[Drift]:
    """Attribute by attribute, an account the hub wants against what it should and did send.

    ``in_flight``: the identity has a push on its way, so where actual still matches last pushed the
    difference is the pending change, not drift; edits made in the application are still reported.
    """
    want, was, have = flatten(desired), flatten(last_pushed or {}), flatten(actual)
    paths = {
        **{p: p for p in owned},
        **{p: name for p, (name, _) in was.items()},
        **{p: name for p, (name, _) in want.items()},
    }
    drifts = []
    for lowered, path in sorted(paths.items()):
        d = want[lowered][1] if lowered in want else None
        a = have[lowered][1] if lowered in have else None
        if lowered == "active" and a is None:
            a = True  # as ``is_active`` reads it: an account that does not say is usable
        if satisfies(d, a) or (lowered == "active" and d is None and a is True):
            continue
        p = was[lowered][1] if lowered in was else None
        app_changed = last_pushed is not None and not satisfies(p, a)
        if in_flight and not app_changed:
            continue
        if lowered == "active" and d is False and a is not False:
            kind = Kind.ACTIVE_SHOULD_BE_INACTIVE
        elif app_changed:
            kind = Kind.CHANGED_IN_APP
        else:
            kind = Kind.ATTRIBUTE_DRIFT
        drifts.append(Drift(kind, resource_type, identity_id, remote_id, path, d, p, a))
    return drifts


def unwanted_account_drift(
    identity_id: str,
    remote_id: str,
    last_pushed: Mapping[str, Any] | None,
    link_status: str,
    actual: Mapping[str, Any],
    reason: str,
    *,
    in_flight: bool = False,
    resource_type: str = "User",
) -> list[Drift]:
    """A linked account (a User's, an NHI's) the hub no longer wants (deleted, or out of scope): it must not be active.

    While its deprovisioning is on its way (``in_flight`` and not yet acknowledged) that is not drift;
    an account the application reactivated after the hub switched it off always is.
    """
    if not is_active(actual):
        return []
    pushed_active = (last_pushed or {}).get("active")
    if in_flight and link_status != "deactivated":
        return []
    return [
        Drift(
            Kind.ACTIVE_SHOULD_BE_INACTIVE,
            resource_type,
            identity_id,
            remote_id,
            "active",
            False,
            pushed_active,
            True,
            reason,
        )
    ]


def orphan_drift(
    resource_type: str, remote_id: str, actual: Mapping[str, Any], reason: str, identity_id: str | None = None
) -> list[Drift]:
    """An account no hub identity should hold. Only an active one is an access path; switched off,
    it is left to the application."""
    if not is_active(actual):
        return []
    return [
        Drift(Kind.ORPHANED_ACCOUNT, resource_type, identity_id, remote_id, "", None, None, summary(actual), reason)
    ]


def missing_account_drift(
    resource_type: str,
    identity_id: str,
    desired: Mapping[str, Any],
    last_pushed: Mapping[str, Any] | None,
    found: Mapping[str, Any] | None = None,
) -> Drift:
    detail = (
        f"an account that the hub has not linked exists ({found.get('id')}); a push adopts it"
        if found
        else "no account on the target"
    )
    return Drift(
        Kind.MISSING_ACCOUNT,
        resource_type,
        identity_id,
        found.get("id") if found else None,
        "",
        dict(desired),
        dict(last_pushed) if last_pushed is not None else None,
        dict(found) if found else None,
        detail,
    )


# -- memberships ----------------------------------------------------------------------------------


def membership_drift(
    group_id: str,
    group_remote_id: str,
    desired: Set[str],
    acknowledged: Set[str],
    actual: Set[str],
    members: Mapping[str, str],
    *,
    in_flight: bool = False,
) -> list[Drift]:
    """Members (remote ids) the group has on the target against those it should have and was sent.

    ``members`` names the hub identity behind a remote id where one is known. ``in_flight``: a push of
    the group is on its way, so differences it will carry (hub added, hub removed) are not drift.
    """
    drifts = []
    for remote in sorted(actual - desired):
        if in_flight and remote in acknowledged:
            continue  # removed in the hub; the removal is on its way
        owner = members.get(remote)
        detail = (
            f"member {owner} is not a member of this group in the hub"
            if owner
            else f"member {remote} is no identity of the hub"
        )
        drifts.append(
            Drift(
                Kind.EXTRA_MEMBERSHIP,
                "Group",
                group_id,
                group_remote_id,
                member_path(remote),
                False,
                remote in acknowledged,
                True,
                detail,
            )
        )
    for remote in sorted(desired - actual):
        if in_flight and remote not in acknowledged:
            continue  # added in the hub; the addition is on its way
        drifts.append(
            Drift(
                Kind.MISSING_MEMBERSHIP,
                "Group",
                group_id,
                group_remote_id,
                member_path(remote),
                True,
                remote in acknowledged,
                False,
                f"member {members.get(remote, remote)}",
            )
        )
    return drifts


# -- repair ---------------------------------------------------------------------------------------


def acknowledge(
    last_pushed: Mapping[str, Any] | None, actual: Mapping[str, Any], paths: Iterable[str]
) -> dict[str, Any]:
    """``last_pushed`` with the given attributes as the target actually holds them.

    Propagate sends the difference between desired and last pushed, so recording what the
    application really holds makes the next push correct it: a value changed in the app is
    replaced, one added there is removed.
    """
    state: dict[str, Any] = {
        key: dict(value) if isinstance(value, dict) and key.lower().startswith("urn:") else value
        for key, value in (last_pushed or {}).items()
    }
    have = flatten(actual)
    for path in paths:
        value = have[path.lower()][1] if path.lower() in have else None
        container, name = state, path
        if path.lower().startswith("urn:"):
            urn, _, name = path.rpartition(":")
            key = next((k for k in state if k.lower() == urn.lower()), urn)
            container = state.setdefault(key, {})
        for existing in [k for k in container if k.lower() == name.lower()]:
            del container[existing]
        if not empty(value):
            container[name] = value
    return state
