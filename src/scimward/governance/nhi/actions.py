"""Lifecycle actions on a non-human identity, each a change through the gate (DESIGN.md: no side doors):
disable (one or many), enable, retire (delete, so every target deprovisions it), transfer, record a rotation."""

from __future__ import annotations

from typing import Any

from scimward.governance.nhi.model import extension
from scimward.scim.agents import NHI_SCHEMA
from scimward.scim.errors import ScimError
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource_types import RESOURCE_TYPES
from scimward.store.identity import IdentityStore, StoredIdentity


def _patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


async def set_active(
    store: IdentityStore, resource_type: str, identity_id: str, active: bool, *, source: str, actor: str
) -> StoredIdentity:
    return await store.patch(
        RESOURCE_TYPES[resource_type],
        identity_id,
        _patch({"op": "replace", "path": "active", "value": active}),
        source=source,
        actor=actor,
    )


async def disable_many(
    store: IdentityStore, resource_type: str, identity_ids: list[str], *, source: str, actor: str
) -> dict[str, ScimError]:
    """``active: false`` for each, each its own change through the gate, written together where the gate
    allows (``IdentityStore.patch_many``); answers the refused ones by id."""
    body = _patch({"op": "replace", "path": "active", "value": False})
    return await store.patch_many(
        RESOURCE_TYPES[resource_type], [(i, body) for i in identity_ids], source=source, actor=actor
    )


async def retire(store: IdentityStore, resource_type: str, identity_id: str, *, source: str, actor: str) -> None:
    await store.delete(RESOURCE_TYPES[resource_type], identity_id, source=source, actor=actor)


async def transfer(
    store: IdentityStore, identity_id: str, owners: list[dict[str, str]], *, source: str, actor: str
) -> StoredIdentity:
    """Replace an Agent's owners (the new owner attests it: the review clock starts again)."""
    return await store.patch(
        RESOURCE_TYPES["Agent"],
        identity_id,
        _patch({"op": "replace", "path": "owners", "value": owners}),
        source=source,
        actor=actor,
    )


async def record_rotation(
    store: IdentityStore, identity_id: str, doc: dict[str, Any], credential: dict[str, Any], *, source: str, actor: str
) -> StoredIdentity:
    """Set the credential metadata after a rotation (identifier, created, lastRotated, expires)."""
    credentials = [c for c in extension(doc).get("credentials") or () if isinstance(c, dict)]
    kept = [c for c in credentials if c.get("identifier") != credential.get("identifier")]
    return await store.patch(
        RESOURCE_TYPES["Agent"],
        identity_id,
        _patch(
            {
                "op": "add" if not extension(doc) else "replace",
                "path": f"{NHI_SCHEMA}:credentials",
                "value": [credential, *kept][:20],
            }
        ),
        source=source,
        actor=actor,
    )
