"""Findings, the evidence report and the audit trail in the admin API (issue 16).

The same services as the command line: ``GET /findings`` takes the filters of ``scimward findings``,
``POST /findings/{id}/accept`` accepts a risk until a date, with a reason, as the admin token's
name; ``GET /report`` is ``scimward report --format json``; ``GET /audit`` verifies the chain and
gives its head.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scimward.api.admin_paths import openapi_paths as _paths
from scimward.governance import finding_filters, report
from scimward.scim.errors import InvalidValue
from scimward.store.database import Database
from scimward.store.governance import FindingStore, verify_trail

Handler = Callable[[Request, Database], Awaitable[Response]]
MAX_LIMIT = 10_000


def _errors(handler: Handler) -> Handler:
    async def wrapped(request: Request, database: Database) -> Response:
        try:
            return await handler(request, database)
        except finding_filters.FilterError as exc:
            raise InvalidValue(str(exc)) from exc

    return wrapped


@_errors
async def list_findings(request: Request, database: Database) -> Response:
    query = request.query_params
    limit_text = query.get("limit", "1000")
    if not limit_text.isdigit() or not 0 < int(limit_text) <= MAX_LIMIT:
        raise InvalidValue(f"limit is a number from 1 to {MAX_LIMIT}")
    found = await FindingStore(database).list(
        kinds=finding_filters.framework_kinds(query.get("framework")),
        statuses=finding_filters.statuses(query.getlist("status")),
        owner=query.get("owner"),
        include_resolved=query.get("all", "false").lower() in ("1", "true", "yes"),
        limit=int(limit_text),
    )
    return JSONResponse({"findings": [finding_filters.finding_json(f) for f in found]})


@_errors
async def accept_finding(request: Request, database: Database) -> Response:
    try:
        body: Any = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidValue(f"the request body is not valid JSON: {exc}") from exc
    if (
        not isinstance(body, dict)
        or set(body) - {"until", "reason"}
        or not isinstance(body.get("until"), str)
        or not isinstance(body.get("reason"), str)
    ):
        raise InvalidValue('the body is {"until": "30d" or "2027-01-31", "reason": "why the risk is accepted"}')
    text = request.path_params["id"]
    if not text.isdigit():
        raise InvalidValue(f"finding ids are numbers, not {text!r}")
    accepted = await FindingStore(database).accept(
        int(text),
        until=finding_filters.accepted_until(body["until"]),
        reason=body["reason"],
        actor=str(request.state.admin_token.name),
    )
    return JSONResponse(finding_filters.finding_json(accepted))


async def get_report(_request: Request, database: Database) -> Response:
    return JSONResponse(await report.gather(database))


async def get_audit(_request: Request, database: Database) -> Response:
    return JSONResponse((await verify_trail(database)).to_json())


#: (path, method, handler, summary): registered by ``api.admin`` and described in its OpenAPI document.
ROUTES: list[tuple[str, str, Handler, str]] = [
    (
        "/findings",
        "GET",
        list_findings,
        "Findings, the most severe first (?framework=csf:PR.AA-05&owner=NAME"
        "&status=open&all=true&limit=N), each with its framework ids",
    ),
    (
        "/findings/{id}/accept",
        "POST",
        accept_finding,
        'Accept a finding\'s risk: {"until": "30d", "reason": "why"}; it opens again after that',
    ),
    (
        "/report",
        "GET",
        get_report,
        "The evidence report: coverage, propagation risk, findings per control, "
        "reconciles, reviews, breaker trips, audit chain status",
    ),
    ("/audit", "GET", get_audit, "Verify the audit trail's hash chain: events, head, the first break if any"),
]


def openapi_paths() -> dict[str, Any]:
    return _paths(ROUTES, integer_ids=True)
