"""The dashboard: what needs a person now (held changes, open breakers, findings) and each target's health."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.store import console_reads
from scimward.web.auth import requires
from scimward.web.context import console_of


@requires("viewer")
async def dashboard(request: Request) -> Response:
    console = console_of(request)
    overview = await console_reads.overview(console.database)
    targets = await console_reads.target_health(console.database)
    return console.render(request, "dashboard.html", title="Dashboard", overview=overview, targets=targets,
                          severities=console_reads.SEVERITIES)


routes = [Route("/", dashboard, methods=["GET"], name="dashboard")]
