"""``scimward blast-radius``: one identity's blast radius, found by name or id."""

from __future__ import annotations

from typing import Any

from scimward.policy import blast
from scimward.policy.errors import ApprovalError, UnknownSubject
from scimward.scim.ast import AttrPath, Compare
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.store.identity import IdentityStore, SearchQuery


async def blast_radius_of(store: IdentityStore, kind: str, name: str) -> dict[str, Any]:
    """``kind`` is "user" or "group"; ``name`` a userName / displayName, or the identity's id."""
    rt = USER_TYPE if kind == "user" else GROUP_TYPE
    attribute = "userName" if kind == "user" else "displayName"
    found = await store.search(rt, SearchQuery(filter=Compare(AttrPath(None, attribute), "eq", name), count=2))
    if not found.items:
        found = await store.search(rt, SearchQuery(filter=Compare(AttrPath(None, "id"), "eq", name), count=1))
    if not found.items:
        raise UnknownSubject(f"no {kind} {name!r}")
    if len(found.items) > 1:
        raise ApprovalError(f"more than one {kind} is called {name!r}: give its id")
    identity = found.items[0]
    async with store.direct.transaction() as tx:
        report = await blast.of_identity(tx, rt.name, identity.id, blast.is_privileged(identity.doc))
    return {"identity": identity.id, "type": rt.name, "name": name, **report}
