"""The dashboard: what needs a person now (held changes, open breakers, findings) and each target's health."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.governance.catalogue import KINDS
from scimward.store.governance import SEVERITIES, overview
from scimward.store.provisioning import target_health
from scimward.web.auth import requires
from scimward.web.context import console_of


@requires("viewer")
async def dashboard(request: Request) -> Response:
    console = console_of(request)
    async with asyncio.TaskGroup() as reads:  # two round trips at once
        summary_read = reads.create_task(overview(console.database))
        targets_read = reads.create_task(target_health(console.database))
    summary, targets = summary_read.result(), targets_read.result()
    return console.render(
        request,
        "dashboard.html",
        title="Dashboard",
        overview=summary,
        targets=targets,
        severities=SEVERITIES,
        frameworks=by_framework(summary.open_by_kind),
    )


def by_framework(open_by_kind: dict[str, int]) -> dict[str, int]:
    """Open findings per framework id (a finding counts for every control its kind is evidence for)."""
    counts: dict[str, int] = {}
    for kind, count in open_by_kind.items():
        described = KINDS.get(kind)
        for framework_id in described.frameworks if described else ():
            counts[framework_id] = counts.get(framework_id, 0) + count
    return dict(sorted(counts.items()))


routes = [Route("/", dashboard, methods=["GET"], name="dashboard")]
