"""Findings: what reconciles and the gate found, filtered by status, target and severity, paged in SQL."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.store import console_reads
from scimward.web.auth import requires
from scimward.web.context import console_of
from scimward.web.paging import page_number

PAGE = 50
STATUSES = ("open", "resolved", "all")


@requires("viewer")
async def findings(request: Request) -> Response:
    console = console_of(request)
    params = request.query_params
    status = params.get("status", "open") if params.get("status", "open") in STATUSES else "open"
    severity = params.get("severity") if params.get("severity") in console_reads.SEVERITIES else None
    target = params.get("target") or None
    page = page_number(params.get("page"))
    total, rows = await console_reads.findings_page(console.database, status=status, target=target,
                                                    severity=severity, offset=(page - 1) * PAGE, limit=PAGE)
    targets = [t.name for t in await console_reads.target_health(console.database)]
    return console.render(request, "findings.html", title="Findings", rows=rows, total=total, page=page,
                          page_count=-(-total // PAGE) or 1, status=status, severity=severity or "",
                          target=target or "", statuses=STATUSES, severities=console_reads.SEVERITIES, targets=targets)


routes = [Route("/findings", findings, methods=["GET"], name="findings")]
