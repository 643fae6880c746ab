"""Group governance and access reviews in the admin API: groups, campaigns, decisions, reports.

The same services as the command line (``governance.groups``, ``governance.reviews``). The decider is
the admin token's name, as for approvals; nobody decides an item about their own access.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scimward.api.admin_paths import openapi_paths as _paths
from scimward.governance.groups import list_groups
from scimward.governance.reviews import DECISIONS, Reviews
from scimward.governance.reviews.report import campaign_json, item_json, report, report_csv
from scimward.policy import identity_store
from scimward.scim.errors import InvalidValue
from scimward.store.database import Database
from scimward.store.identity import IdentityStore

Handler = Callable[[Request, Database], Awaitable[Response]]
#: The most items one decision names (the command line's ranges expand to lists as long).
MAX_ITEMS = 100_000


_STORES: weakref.WeakKeyDictionary[Database, IdentityStore] = weakref.WeakKeyDictionary()


def _reviews(database: Database) -> Reviews:
    store = _STORES.get(database)
    if store is None:
        store = _STORES[database] = identity_store(database)
    return Reviews(database, store)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() in ("1", "true", "yes")


async def get_groups(request: Request, database: Database) -> Response:
    groups = await list_groups(database, unowned=_flag(request, "unowned"), privileged=_flag(request, "privileged"))
    return JSONResponse({"groups": [g.to_json() for g in groups]})


async def list_campaigns(_request: Request, database: Database) -> Response:
    return JSONResponse({"campaigns": [campaign_json(c) for c in await _reviews(database).campaigns()]})


async def get_campaign(request: Request, database: Database) -> Response:
    campaign, items = await _reviews(database).show(request.path_params["name"])
    return JSONResponse({**campaign_json(campaign), "items": [item_json(i) for i in items]})


async def _body(request: Request) -> dict[str, Any]:
    try:
        data = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidValue(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidValue("the body is a JSON object")
    return data


async def decide(request: Request, database: Database) -> Response:
    data = await _body(request)
    items, decision, note = data.get("items"), data.get("decision"), data.get("note")
    if (
        set(data) - {"items", "decision", "note"}
        or not isinstance(items, list)
        or not items
        or len(items) > MAX_ITEMS
        or not all(isinstance(i, int) and not isinstance(i, bool) for i in items)
        or decision not in DECISIONS
        or not isinstance(note, str | None)
    ):
        raise InvalidValue('the body is {"items": [1, 2], "decision": "keep" or "revoke", "note": "why"}')
    decided = await _reviews(database).decide(
        request.path_params["name"], items, decision, str(request.state.admin_token.name), note
    )
    return JSONResponse(
        {
            "decided": [
                {"id": d.number, "decision": d.decision, "outcome": d.outcome, "detail": d.detail} for d in decided
            ]
        }
    )


async def close(request: Request, database: Database) -> Response:
    decided = await _reviews(database).close(request.path_params["name"], str(request.state.admin_token.name))
    return JSONResponse(
        {"defaulted": [{"id": d.number, "decision": d.decision, "outcome": d.outcome} for d in decided]}
    )


async def get_report(request: Request, database: Database) -> Response:
    document = await report(_reviews(database), request.path_params["name"])
    if request.query_params.get("format") == "csv":
        return Response(report_csv(document), media_type="text/csv")
    return JSONResponse(document)


#: (path, method, handler, summary): registered by ``api.admin`` and described in its OpenAPI document.
ROUTES: list[tuple[str, str, Handler, str]] = [
    (
        "/groups",
        "GET",
        get_groups,
        "Groups with their governance: owners, purpose, privilege, cadence (?unowned=true&privileged=true)",
    ),
    ("/reviews", "GET", list_campaigns, "Access-review campaigns, newest first, with their counts"),
    (
        "/reviews/{name}",
        "GET",
        get_campaign,
        "A campaign and its items: member, group or target, recommendation, decision, outcome",
    ),
    (
        "/reviews/{name}/decide",
        "POST",
        decide,
        'Decide items: {"items": [1, 2], "decision": "revoke", "note": "why"} (never your own access)',
    ),
    ("/reviews/{name}/close", "POST", close, "Close a campaign: undecided items take its default"),
    ("/reviews/{name}/report", "GET", get_report, "The campaign as evidence (?format=csv)"),
]


def openapi_paths() -> dict[str, Any]:
    return _paths(ROUTES)
