"""Targets: health, backlog, accounts, findings, the breaker and the last reconcile of each."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.store import console_reads
from scimward.web.auth import requires
from scimward.web.context import console_of


@requires("viewer")
async def targets(request: Request) -> Response:
    console = console_of(request)
    health = await console_reads.target_health(console.database)
    breakers = {row["name"]: row for row in await console.approvals.breakers()}
    return console.render(request, "targets.html", title="Targets", targets=health, breakers=breakers)


routes = [Route("/targets", targets, methods=["GET"], name="targets")]
