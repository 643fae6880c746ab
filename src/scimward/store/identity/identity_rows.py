"""An identity as stored, and the columns and child rows derived from its document."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scimward.scim.errors import InvalidValue, PreconditionFailed
from scimward.scim.schema import ResourceType
from scimward.store._direct import Encoder, decode_json, decode_time
from scimward.store.identity import reads


def etag(version: int) -> str:
    return f'W/"{version}"'


@dataclass
class StoredIdentity:
    """An identity as stored: its source-state document plus what the store keeps beside it."""

    id: str
    resource_type: str
    doc: dict[str, Any]
    created: datetime
    last_modified: datetime
    version: int
    members: list[dict[str, str]] | None = None
    groups: list[dict[str, str]] | None = None

    @property
    def etag(self) -> str:
        return etag(self.version)


def columns(tx: Encoder, rt: ResourceType, doc: dict[str, Any]) -> dict[str, Any]:
    """The promoted columns of an identity row, from its document."""
    return {**naming(rt, doc), "active": doc.get("active"), "doc": tx.json(doc)}


def naming(rt: ResourceType, doc: dict[str, Any]) -> dict[str, Any]:
    """The columns of an identity row that name it, and that its indexes hold, from its document."""
    user_name = doc.get(rt.key) if rt.key else None
    display_name = doc.get("displayName")
    user_type = doc.get("userType")
    return {
        "resource_type": rt.name,
        "user_name": user_name,
        "user_name_lower": user_name.lower() if isinstance(user_name, str) else None,
        "external_id": doc.get("externalId"),
        "display_name": display_name,
        "display_name_lower": display_name.lower() if isinstance(display_name, str) else None,
        "user_type_lower": user_type.lower() if isinstance(user_type, str) else None,
    }


def email_rows(identity_id: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for position, email in enumerate(doc.get("emails") or ()):
        value = email.get("value")
        rows.append(
            {
                "identity_id": identity_id,
                "position": position,
                "value": value,
                "value_lower": value.lower() if isinstance(value, str) else None,
                "type": email.get("type"),
                "display": email.get("display"),
                "primary": email.get("primary"),
            }
        )
    return rows


def check_if_match(if_match: str | None, version: int) -> None:
    """RFC 7644 3.14: a mismatched If-Match is 412, so no update is lost."""
    if if_match is None:
        return
    candidates = {tag.strip() for tag in if_match.split(",")}
    if "*" in candidates:
        return
    current = etag(version)
    if current not in candidates and current.removeprefix("W/") not in candidates:
        raise PreconditionFailed(f"resource version is {current}, not {if_match}")


def stored_row(rt: ResourceType, row: Sequence[Any], with_groups: bool) -> StoredIdentity:
    """An identity from a driver row: id, doc, created, last_modified, version[, groups]."""
    stored = StoredIdentity(row[0], rt.name, decode_json(row[1]), decode_time(row[2]), decode_time(row[3]), row[4])
    if with_groups:
        stored.groups = reads.groups_out(decode_json(row[5]))
    return stored


def dedupe(members: Iterable[dict[str, str]]) -> list[dict[str, str]]:
    seen: dict[str, dict[str, str]] = {}
    for member in members:
        value = member.get("value") if isinstance(member, dict) else None
        if not isinstance(value, str) or not value:
            raise InvalidValue("every member needs a string 'value' with the member's id")
        seen.setdefault(value, member)
    return list(seen.values())
