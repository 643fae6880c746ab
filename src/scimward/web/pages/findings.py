"""Findings: filtered by status, framework id, owner, target and severity, paged in SQL; risk accepted until a date."""

from __future__ import annotations

from datetime import datetime, time
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scimward.errors import ScimwardError
from scimward.governance.catalogue import KINDS, controls, kinds_for, parse_framework
from scimward.store.governance import LIVE, SEVERITIES, STATUSES, FindingStore, findings_page
from scimward.store.provisioning import target_names
from scimward.web.auth import requires, session_of
from scimward.web.context import console_of
from scimward.web.errors import notice_of
from scimward.web.paging import page_number

PAGE = 50
#: The status filter's choices: "live" is every status but resolved.
CHOICES = ("live", *STATUSES, "all")


@requires("viewer")
async def findings(request: Request) -> Response:
    console = console_of(request)
    params = request.query_params
    status = params.get("status", "live") if params.get("status", "live") in CHOICES else "live"
    statuses = LIVE if status == "live" else STATUSES if status == "all" else (status,)
    severity = params.get("severity") if params.get("severity") in SEVERITIES else None
    target, owner = params.get("target") or None, params.get("owner", "").strip() or None
    framework, error = params.get("framework", "").strip(), None
    kinds = None
    if framework:
        try:
            kinds = kinds_for(parse_framework(framework) if ":" in framework else framework.lower())
        except ScimwardError as exc:
            error = notice_of(exc)
    page = page_number(params.get("page"))
    total, rows = await findings_page(
        console.database,
        statuses=statuses,
        target=target,
        severity=severity,
        kinds=kinds,
        owner=owner,
        offset=(page - 1) * PAGE,
        limit=PAGE,
    )
    targets = list((await target_names(console.database)).values())
    query = {
        "status": status,
        "severity": severity or "",
        "target": target or "",
        "owner": owner or "",
        "framework": framework,
    }
    return console.render(
        request,
        "findings.html",
        title="Findings",
        rows=rows,
        total=total,
        page=page,
        page_count=-(-total // PAGE) or 1,
        query=query,
        choices=CHOICES,
        error=error,
        severities=SEVERITIES,
        targets=targets,
        frameworks=controls(),
        catalogue=KINDS,
        can_accept=session_of(request).allows("approver"),
    )


@requires("approver")
async def accept(request: Request) -> Response:
    """Accept a finding's risk until a date, with a reason: it opens again after that date."""
    console, session = console_of(request), session_of(request)
    form = await request.form()
    finding_id, reason = str(form.get("finding", "")), str(form.get("reason", "")).strip()[:1000]
    try:
        until = datetime.combine(datetime.fromisoformat(str(form.get("until", ""))).date(), time.max)
        found = await FindingStore(console.database).accept(
            int(finding_id), until=until, reason=reason, actor=session.name
        )
        notice = f"Risk of finding {found.id} accepted until {until:%Y-%m-%d}."
        await console.audit(
            "console_action",
            session.name,
            f"finding:{found.id}",
            action="accept_risk",
            until=until.isoformat(),
            reason=reason,
        )
    except ValueError:
        notice = "Give the date the acceptance ends (YYYY-MM-DD)."
    except ScimwardError as exc:
        notice = notice_of(exc)
    return RedirectResponse(console.url("/findings") + "?" + urlencode({"notice": notice}), 303)


routes = [
    Route("/findings", findings, methods=["GET"], name="findings"),
    Route("/findings/accept", accept, methods=["POST"], name="accept_risk"),
]
