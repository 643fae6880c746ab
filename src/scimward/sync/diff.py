"""The difference between what a target acknowledged and what it should hold, as PATCH operations.

Top-level attributes are compared whole: a changed one is replaced, a vanished one removed.
Extension attributes are compared one by one under their URN, so a new department does not
resend the whole extension. ``schemas`` and ``externalId`` are identity, not state.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

_SKIP = {"schemas"}


def _flatten(body: dict[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in body.items():
        if key in _SKIP:
            continue
        if key.lower().startswith("urn:") and isinstance(value, dict):
            flat.update({f"{key}:{sub}": sub_value for sub, sub_value in value.items()})
        else:
            flat[key] = value
    return flat


def patch_operations(acknowledged: dict[str, Any] | None, desired: dict[str, Any]) -> list[dict[str, Any]]:
    """PATCH operations turning ``acknowledged`` into ``desired``; with nothing acknowledged (an
    adopted account), every desired attribute is replaced."""
    before = _flatten(acknowledged or {})
    after = _flatten(desired)
    operations = [
        {"op": "replace", "path": path, "value": value} for path, value in after.items() if before.get(path) != value
    ]
    if acknowledged is not None:
        operations += [{"op": "remove", "path": path} for path in before if path not in after]
    return operations


def member_add(remote_ids: list[str]) -> dict[str, Any]:
    return {"op": "add", "path": "members", "value": [{"value": remote_id} for remote_id in remote_ids]}


def member_remove(remote_ids: list[str]) -> dict[str, Any]:
    """RFC 7644 3.5.2.2: ``members[value eq "a" or value eq "b"]``, which every SCIM server understands."""
    condition = " or ".join(f'value eq "{_escape(remote_id)}"' for remote_id in remote_ids)
    return {"op": "remove", "path": f"members[{condition}]"}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def member_remove_values(remote_ids: list[str]) -> dict[str, Any]:
    """The value-list form of a removal (``{"path": "members", "value": [...]}``): what targets that
    cannot evaluate a filter path accept (Entra ID sends this form)."""
    return {"op": "remove", "path": "members", "value": [{"value": remote_id} for remote_id in remote_ids]}


def sub_attribute_paths(operations: list[dict[str, Any]], complex_names: Collection[str]) -> list[dict[str, Any]]:
    """``operations`` with every replace of a whole complex attribute (``name``, the manager) written as
    replaces of its sub-attributes (``name.givenName``): targets that store such an attribute as
    columns often refuse the whole-object form."""
    names = {name.lower() for name in complex_names}
    out: list[dict[str, Any]] = []
    for operation in operations:
        path, value = str(operation.get("path", "")), operation.get("value")
        if operation.get("op") in ("replace", "add") and path.lower() in names and isinstance(value, dict):
            out.extend(
                {"op": "replace", "path": f"{path}.{sub}", "value": sub_value} for sub, sub_value in value.items()
            )
        else:
            out.append(operation)
    return out


def is_deprovisioning(operation: dict[str, Any]) -> bool:
    """A replace of ``active`` to false: it goes alone and first (issue 19), never held back by another attribute."""
    return (
        operation.get("op") == "replace"
        and str(operation.get("path", "")).lower() == "active"
        and operation.get("value") is False
    )
