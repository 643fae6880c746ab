"""What an operator watches, in the admin API: tokens, a target's status, its push log and its
reconcile runs (the same figures as ``scimward token list``, ``target status`` and ``reconcile``).

A token is listed by name, scopes, owner and dates: never its hash, and the token itself is only
ever shown once, when it is made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scimward.api.admin_paths import openapi_paths as _paths
from scimward.scim.errors import InvalidValue
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.governance import RunStore
from scimward.store.provisioning import LinkStore, TargetRepository
from scimward.sync.status import target_status

Handler = Callable[[Request, Database], Awaitable[Response]]
MAX_LIMIT = 1000
OUTCOMES = ("ok", "failed")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() + "Z" if moment is not None else None


def _number(request: Request, name: str, default: int | None, high: int) -> int | None:
    text = request.query_params.get(name)
    if text is None:
        return default
    if not text.isdigit() or not 0 < int(text) <= high:
        raise InvalidValue(f"{name} is a whole number from 1 to {high}")
    return int(text)


async def list_tokens(_request: Request, database: Database) -> Response:
    tokens = await TokenStore(database).list()
    return JSONResponse(
        {
            "tokens": [
                {
                    "name": t.name,
                    "status": t.status,
                    "scopes": sorted(t.scopes),
                    "created": _iso(t.created),
                    "created_by": t.created_by,
                    "expires": _iso(t.expires),
                    "last_used": _iso(t.last_used),
                    "revoked": _iso(t.revoked),
                    "owner_id": t.owner_id,
                    "source": t.source,
                    "rotated_from": t.rotated_from,
                }
                for t in tokens
            ]
        }
    )


async def get_status(request: Request, database: Database) -> Response:
    return JSONResponse(await target_status(database, request.path_params["name"]))


async def get_push_log(request: Request, database: Database) -> Response:
    target = await TargetRepository(database).by_name(request.path_params["name"])
    outcome = request.query_params.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidValue(f"outcome is one of {', '.join(OUTCOMES)}")
    limit = _number(request, "limit", 100, MAX_LIMIT) or 100
    rows = await LinkStore(database).push_log(
        target.id, limit=limit, outcome=outcome, before=_number(request, "before", None, 2**62)
    )
    body: dict[str, Any] = {"target": target.name, "pushes": rows}
    if len(rows) == limit:
        body["next"] = f"?limit={limit}&before={rows[-1]['id']}" + (f"&outcome={outcome}" if outcome else "")
    return JSONResponse(body)


async def list_runs(request: Request, database: Database) -> Response:
    target = await TargetRepository(database).by_name(request.path_params["name"])
    limit = _number(request, "limit", 20, MAX_LIMIT) or 20
    return JSONResponse({"target": target.name, "runs": await RunStore(database).runs(target.id, limit=limit)})


ROUTES: list[tuple[str, str, Handler, str]] = [
    (
        "/tokens",
        "GET",
        list_tokens,
        "The hub's API tokens: name, status, scopes, owner, source and dates (never the token or its hash)",
    ),
    (
        "/targets/{name}/status",
        "GET",
        get_status,
        "A target's health: links, backlog, failures, last error, push latency, what it does not store",
    ),
    (
        "/targets/{name}/push-log",
        "GET",
        get_push_log,
        "A target's pushes, newest first (?limit=N&outcome=failed&before=ID; `next` pages on)",
    ),
    ("/targets/{name}/reconcile-runs", "GET", list_runs, "A target's reconcile runs, the latest first (?limit=N)"),
]


def openapi_paths() -> dict[str, Any]:
    return _paths(ROUTES)
