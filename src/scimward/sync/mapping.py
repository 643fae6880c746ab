"""Desired state: what a target should hold for an identity, a pure function of its effective
state and the target's mapping.

A rule copies one hub attribute (``source``) to a target attribute (``target``) or sets a constant.
Paths may name a sub-attribute (``name.givenName``) or an extension attribute by its URN
(``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``). ``externalId`` on the
target is always the hub's id: that is how an account is found again (adoption, reconcile).
"""

from __future__ import annotations

from typing import Any

from scimward.scim.resource_types import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from scimward.sync.targets import AttributeRule

_CORE_USER = (
    "userName",
    "name",
    "displayName",
    "nickName",
    "profileUrl",
    "title",
    "userType",
    "preferredLanguage",
    "locale",
    "timezone",
    "active",
    "emails",
    "phoneNumbers",
    "ims",
    "photos",
    "addresses",
    "entitlements",
    "roles",
    "x509Certificates",
)
_ENTERPRISE = ("employeeNumber", "costCenter", "organization", "division", "department")

#: What a target receives unless configured otherwise: the whole core User schema (without the
#: password, which the hub never keeps, and groups, which are pushed as Group memberships) and the
#: enterprise extension. The manager is translated to the manager's account id on that target.
DEFAULT_USER_RULES: tuple[AttributeRule, ...] = (
    *(AttributeRule(name, name) for name in _CORE_USER),
    *(AttributeRule(f"{ENTERPRISE_USER_SCHEMA}:{name}", f"{ENTERPRISE_USER_SCHEMA}:{name}") for name in _ENTERPRISE),
    AttributeRule(f"{ENTERPRISE_USER_SCHEMA}:manager", f"{ENTERPRISE_USER_SCHEMA}:manager"),
)
MANAGER = f"{ENTERPRISE_USER_SCHEMA}:manager"


def _split(path: str) -> tuple[str | None, str, str | None]:
    """(extension URN or None, attribute, sub-attribute or None)."""
    urn = None
    if path.lower().startswith("urn:"):
        urn, _, path = path.rpartition(":")
    attr, _, sub = path.partition(".")
    return urn, attr, sub or None


def read(doc: dict[str, Any], path: str) -> Any:
    urn, attr, sub = _split(path)
    container = doc.get(urn, {}) if urn and urn != USER_SCHEMA else doc
    value = container.get(attr) if isinstance(container, dict) else None
    if sub is not None:
        return value.get(sub) if isinstance(value, dict) else None
    return value


def write(body: dict[str, Any], path: str, value: Any) -> None:
    if value is None:
        return
    urn, attr, sub = _split(path)
    container = body.setdefault(urn, {}) if urn and urn != USER_SCHEMA else body
    if urn and urn != USER_SCHEMA and urn not in body["schemas"]:
        body["schemas"].append(urn)
    if sub is None:
        container[attr] = value
    else:
        container.setdefault(attr, {})[sub] = value


def desired_user(
    identity_id: str, doc: dict[str, Any], rules: tuple[AttributeRule, ...] | None, manager_remote_id: str | None = None
) -> dict[str, Any]:
    """The SCIM User body a target should hold for this identity."""
    body: dict[str, Any] = {"schemas": [USER_SCHEMA], "externalId": identity_id}
    for rule in rules if rules is not None else DEFAULT_USER_RULES:
        if rule.source is None:
            write(body, rule.target, rule.constant)
        elif rule.source == MANAGER:
            # A manager is an id in the hub; on the target it must be that manager's account there.
            if manager_remote_id is not None:
                write(body, rule.target, {"value": manager_remote_id})
        else:
            write(body, rule.target, read(doc, rule.source))
    return body


def manager_id(doc: dict[str, Any]) -> str | None:
    manager = read(doc, MANAGER)
    return manager.get("value") if isinstance(manager, dict) else None


def desired_group(identity_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The SCIM Group body, without members: they are pushed as add/remove deltas."""
    return {"schemas": [GROUP_SCHEMA], "externalId": identity_id, "displayName": doc.get("displayName")}
