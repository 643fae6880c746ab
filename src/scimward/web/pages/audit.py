"""The audit trail: events newest first, searched by kind, actor and subject; the chain checked on request."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.store.governance import AUDIT_KINDS, audit_page, trail_head, verify_trail
from scimward.web.auth import requires
from scimward.web.context import console_of

PAGE = 50


@requires("viewer")
async def trail(request: Request) -> Response:
    console = console_of(request)
    params = request.query_params
    kind = params.get("kind") if params.get("kind") in AUDIT_KINDS else ""
    actor, subject = params.get("actor", "").strip(), params.get("subject", "").strip()
    found = await audit_page(
        console.database,
        kind=kind or None,
        actor=actor or None,
        subject=subject or None,
        before=params.get("before"),
        after=params.get("after"),
        limit=PAGE,
    )
    verdict = await verify_trail(console.database) if params.get("verify") else None
    return console.render(
        request,
        "audit.html",
        title="Audit",
        events=found.rows,
        older=found.older,
        newer=found.newer,
        kind=kind,
        actor=actor,
        subject=subject,
        kinds=sorted(AUDIT_KINDS),
        verdict=verdict,
        head=await trail_head(console.database),
    )


routes = [Route("/audit", trail, methods=["GET"], name="audit")]
