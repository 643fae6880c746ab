"""Identities: a search in SCIM filter syntax, paged by cursor in SQL, and one identity in full.

The detail puts the source state (what its source last stated) beside the effective state (what
the hub propagates), with the pending changes that explain a difference, each target's account,
and the identity's blast radius.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.errors import ScimwardError
from scimward.governance.groups import governance_of
from scimward.policy import blast
from scimward.scim.errors import NotFound
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.scim.schema import ResourceType
from scimward.store.governance import effective_of, membership_holds_of
from scimward.store.identity import SearchQuery, StoredIdentity, groups_of, member_counts, names_of
from scimward.store.provisioning import accounts_of, target_names
from scimward.web.auth import requires
from scimward.web.context import Console, console_of
from scimward.web.errors import notice_of
from scimward.web.pages.nhi import owned_by

PAGE = 25
#: The attributes a list shows, per resource type, beside the id.
COLUMNS = {"User": ("userName", "displayName", "active"), "Group": ("displayName", "externalId")}


async def listing(request: Request, rt: ResourceType, template: str, title: str) -> Response:
    console = console_of(request)
    text = request.query_params.get("filter", "").strip()
    cursor = request.query_params.get("cursor", "")
    error = None
    items: list[StoredIdentity] = []
    total, counted, next_cursor, previous_cursor = 0, True, None, None
    try:
        expr = parse_filter(text) if text else None
        # A contains search on SQLite reads up to its page, not every identity for a total.
        query = SearchQuery(filter=expr, count=PAGE, cursor=cursor, exact_total=False)
        result = await console.store.search(rt, query)
        items, total, counted = result.items, result.total, result.counted
        next_cursor, previous_cursor = result.next_cursor, result.previous_cursor
    except ScimwardError as exc:
        error = notice_of(exc)
    members = await member_counts(console.database, [i.id for i in items]) if rt is GROUP_TYPE else {}
    governance = (
        {i.id: governance_of(i.id, str(i.doc.get("displayName") or i.id), i.doc) for i in items}
        if rt is GROUP_TYPE
        else {}
    )
    return console.render(
        request,
        template,
        title=title,
        items=items,
        total=total,
        counted=counted,
        filter=text,
        error=error,
        next_cursor=next_cursor,
        previous_cursor=previous_cursor,
        columns=COLUMNS[rt.name],
        members=members,
        governance=governance,
        rt=rt.name,
    )


@requires("viewer")
async def identities(request: Request) -> Response:
    return await listing(request, USER_TYPE, "identities.html", "Identities")


def differences(source: dict[str, Any], effective: dict[str, Any]) -> list[str]:
    """Top-level attributes whose source and effective values differ."""
    keys = [k for k in {**source, **effective} if k not in ("meta", "schemas")]
    return sorted(k for k in keys if source.get(k) != effective.get(k))


async def _radius(console: Console, stored: StoredIdentity, privileged: bool) -> dict[str, Any]:
    async with console.store.direct.transaction() as tx:
        return await blast.of_identity(tx, stored.resource_type, stored.id, privileged)


async def _none() -> list[Any]:
    """Nothing to read (a group has no groups of its own here, nor owned NHIs)."""
    return []


@requires("viewer")
async def identity(request: Request) -> Response:
    console = console_of(request)
    identity_id = request.path_params["id"]
    stored: StoredIdentity | None = None
    for rt in (USER_TYPE, GROUP_TYPE):
        try:
            stored = await console.store.get(rt, identity_id)
            break
        except NotFound:
            continue
    if stored is None:
        raise NotFound(f"No identity {identity_id}.")
    source = dict(stored.doc)
    user = stored.resource_type == "User"
    # Independent reads, at once: each is one round trip, and a loaded database makes each wait its turn.
    async with asyncio.TaskGroup() as reads:
        overlay = reads.create_task(effective_of(console.database, identity_id))
        pending = reads.create_task(console.approvals.changes("pending", identity_id, 50))
        accounts = reads.create_task(accounts_of(console.database, identity_id))
        radius = reads.create_task(_radius(console, stored, bool(source.get("privileged"))))
        names = reads.create_task(target_names(console.database))
        groups = reads.create_task(groups_of(console.database, identity_id) if user else _none())
        held = reads.create_task(membership_holds_of(console.database, identity_id))
        owned = reads.create_task(owned_by(console, identity_id) if user else _none())
    diverged, effective_doc, source_deleted = overlay.result()
    holds = held.result()
    effective = effective_doc if diverged else source
    member_ids = [m["value"] for m in (stored.members or [])[:100]]
    member_names = await names_of(
        console.database, [*member_ids, *(h.group_id for h in holds), *(h.member_id for h in holds)]
    )
    governance = (
        governance_of(identity_id, str(source.get("displayName") or identity_id), source)
        if stored.resource_type == "Group"
        else None
    )
    return console.render(
        request,
        "identity.html",
        title=source.get("userName") or source.get("displayName") or identity_id,
        stored=stored,
        source=source,
        effective=effective,
        diverged=diverged,
        source_deleted=source_deleted,
        changed=differences(source, effective or {}),
        pending=pending.result(),
        accounts=accounts.result(),
        radius=radius.result(),
        target_names={str(i): n for i, n in names.result().items()},
        groups=groups.result(),
        member_ids=member_ids,
        member_names=member_names,
        member_total=len(stored.members or []),
        holds=holds,
        governance=governance,
        owned=owned.result(),
    )


routes = [
    Route("/identities", identities, methods=["GET"], name="identities"),
    Route("/identities/{id}", identity, methods=["GET"], name="identity"),
]
