"""What makes an identity non-human, who owns it, and its lifecycle attributes.

An NHI is an Agent (any kind: the NHI extension's ``kind`` says which), or a User whose ``userType``
is one of the configured non-human types (``SCIMWARD_NHI_USER_TYPES``: identity providers send
service accounts as Users). An Agent's owners are its ``owners``; a service-account User's owner is
its enterprise ``manager`` (RFC 7643 has no owners for Users, and the manager is who answers for it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scimward.scim.agents import NHI_SCHEMA
from scimward.scim.resource_types import ENTERPRISE_USER_SCHEMA
from scimward.store.timeutil import parse_time

#: Resource types whose every identity is non-human.
NHI_TYPES = ("Agent",)


def user_types(setting: str) -> frozenset[str]:
    """The configured non-human ``userType`` values, lower-cased."""
    return frozenset(part.strip().lower() for part in setting.split(",") if part.strip())


def extension(doc: Mapping[str, Any]) -> dict[str, Any]:
    value = doc.get(NHI_SCHEMA)
    return value if isinstance(value, dict) else {}


def name_of(resource_type: str, doc: Mapping[str, Any]) -> str:
    return str(doc.get("userName") if resource_type == "User" else doc.get("name") or "")


def kind_of(resource_type: str, doc: Mapping[str, Any]) -> str:
    kind = extension(doc).get("kind")
    if isinstance(kind, str) and kind:
        return kind
    return "service_account" if resource_type == "User" else "ai_agent"


@dataclass(frozen=True)
class Owner:
    id: str
    type: str  # User or Group


def owners_of(resource_type: str, doc: Mapping[str, Any]) -> list[Owner]:
    if resource_type == "User":
        manager = (doc.get(ENTERPRISE_USER_SCHEMA) or {}).get("manager")
        value = manager.get("value") if isinstance(manager, dict) else None
        return [Owner(value, "User")] if isinstance(value, str) and value else []
    owners = []
    for owner in doc.get("owners") or ():
        if isinstance(owner, dict) and isinstance(owner.get("value"), str) and owner["value"]:
            owners.append(Owner(owner["value"], "Group" if owner.get("type") == "Group" else "User"))
    return owners


def expires_of(doc: Mapping[str, Any]) -> datetime | None:
    return parse_time(extension(doc).get("expires"))


def iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"
