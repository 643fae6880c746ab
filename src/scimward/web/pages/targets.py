"""Targets: health, push latency, backlog, accounts, findings (drift), the breaker and the last reconcile."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.store.provisioning import LinkStore, target_health
from scimward.web.auth import requires
from scimward.web.context import console_of


@requires("viewer")
async def targets(request: Request) -> Response:
    console = console_of(request)
    health = await target_health(console.database)
    breakers = {row["name"]: row for row in await console.approvals.breakers()}
    links = LinkStore(console.database)
    latency = {target.name: percentiles(await links.latencies(target.id)) for target in health}
    return console.render(request, "targets.html", title="Targets", targets=health, breakers=breakers,
                          latency=latency)


def percentiles(seconds: list[float]) -> tuple[float, float] | None:
    """The median and 95th percentile of push latencies (change to acknowledgement), if any."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


routes = [Route("/targets", targets, methods=["GET"], name="targets")]
