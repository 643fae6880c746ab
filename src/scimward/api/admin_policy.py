"""The gate in the admin API: the policy, changes and their approval, breakers, blast radius.

The same services as the command line (``policy.approvals``, ``policy.policies``). The deciding
person is the admin token's name (a token is an identity acting for someone; four eyes applies to
it as to a person): the actor of a change can never approve it.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scimward.api.admin_paths import openapi_paths as _paths
from scimward.policy import Approvals, UnknownSubject, identity_store, policies
from scimward.policy.blast_report import blast_radius_of
from scimward.scim.errors import InvalidValue, PayloadTooLarge
from scimward.store.database import Database
from scimward.store.governance import STATUSES
from scimward.store.identity import IdentityStore

MAX_POLICY_BYTES = 256 * 1024

Handler = Callable[[Request, Database], Awaitable[Response]]


#: One gated store per database for the process: each store holds a driver pool, which a store made
#: per request would open anew every time.
_STORES: weakref.WeakKeyDictionary[Database, IdentityStore] = weakref.WeakKeyDictionary()


def _store(database: Database) -> IdentityStore:
    store = _STORES.get(database)
    if store is None:
        store = _STORES[database] = identity_store(database)
    return store


def _approvals(database: Database) -> Approvals:
    return Approvals(database, _store(database).direct)


def _who(request: Request) -> str:
    return str(request.state.admin_token.name)


async def _note(request: Request) -> str | None:
    body = await request.body()
    if not body.strip():
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidValue(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) - {"note"} or not isinstance(data.get("note", ""), str | None):
        raise InvalidValue('the body is optional: {"note": "why"}')
    return data.get("note")


async def get_policy(_request: Request, database: Database) -> Response:
    policy = await policies.current(database)
    return JSONResponse({"version": policy.version, **policy.to_json()})


async def put_policy(request: Request, database: Database) -> Response:
    body = await request.body()
    if len(body) > MAX_POLICY_BYTES:
        raise PayloadTooLarge(f"a policy is at most {MAX_POLICY_BYTES} bytes")
    try:
        text = body.decode()
    except UnicodeDecodeError as exc:
        raise InvalidValue("the policy must be UTF-8 text (YAML)") from exc
    dry_run = request.query_params.get("dry_run", "false").lower() in ("1", "true", "yes")
    preview = await policies.apply(database, text, _who(request), dry_run=dry_run)
    return JSONResponse(
        {
            "dry_run": dry_run,
            "added": preview.added,
            "removed": preview.removed,
            "changed": preview.changed,
            "settings": preview.settings,
            "checked": preview.checked,
            "affected": [
                {"rule": r, "action": a, "type": t, "identity": i, "name": n} for r, a, t, i, n in preview.affected
            ],
        }
    )


async def list_changes(request: Request, database: Database) -> Response:
    status = request.query_params.get("status")
    if status is not None and status not in STATUSES:
        raise InvalidValue(f"status must be one of {', '.join(STATUSES)}")
    try:
        limit = min(max(int(request.query_params.get("limit", "200")), 1), 10_000)
    except ValueError as exc:
        raise InvalidValue("limit must be a whole number") from exc
    rows = await _approvals(database).changes(status, request.query_params.get("identity"), limit)
    return JSONResponse({"changes": [c.to_json() for c in rows]})


async def diverged(_request: Request, database: Database) -> Response:
    return JSONResponse({"identities": await _approvals(database).diverged()})


async def get_change(request: Request, database: Database) -> Response:
    return JSONResponse((await _approvals(database).show(request.path_params["id"])).to_json())


async def approve_change(request: Request, database: Database) -> Response:
    outcomes = await _approvals(database).approve([request.path_params["id"]], _who(request), await _note(request))
    return JSONResponse({"id": outcomes[0].change_id, "status": outcomes[0].status, "detail": outcomes[0].message})


async def reject_change(request: Request, database: Database) -> Response:
    outcomes = await _approvals(database).reject([request.path_params["id"]], _who(request), await _note(request))
    return JSONResponse({"id": outcomes[0].change_id, "status": outcomes[0].status, "detail": outcomes[0].message})


async def list_breakers(_request: Request, database: Database) -> Response:
    return JSONResponse({"targets": await _approvals(database).breakers()})


async def _breaker_target(database: Database, name: str) -> int:
    for row in await _approvals(database).breakers():
        if row["name"] == name:
            return int(row["id"])
    raise UnknownSubject(f"no target named {name!r}")


async def release_breaker(request: Request, database: Database) -> Response:
    target = await _breaker_target(database, request.path_params["name"])
    return JSONResponse({"released": await _approvals(database).release(target, _who(request))})


async def discard_breaker(request: Request, database: Database) -> Response:
    target = await _breaker_target(database, request.path_params["name"])
    return JSONResponse({"discarded": await _approvals(database).discard(target, _who(request))})


async def blast_radius(request: Request, database: Database) -> Response:
    kind, _, name = request.query_params.get("subject", "").partition(":")
    if kind not in ("user", "group") or not name:
        raise InvalidValue("subject must be user:NAME or group:NAME")
    return JSONResponse(await blast_radius_of(_store(database), kind, name))


#: (path, method, handler, summary): registered by ``api.admin`` and described in its OpenAPI document.
ROUTES: list[tuple[str, str, Handler, str]] = [
    ("/policy", "GET", get_policy, "The policy in force"),
    ("/policy", "PUT", put_policy, "Apply a policy (YAML text as the body; ?dry_run=true to preview)"),
    ("/changes", "GET", list_changes, "Changes, newest first (?status=pending&identity=ID&limit=N)"),
    ("/diverged", "GET", diverged, "Identities whose effective state differs from their source state, and why"),
    ("/changes/{id}", "GET", get_change, "One change: before, after, decision, approvals"),
    ("/changes/{id}/approve", "POST", approve_change, "Approve a held change (never the change's own actor)"),
    ("/changes/{id}/reject", "POST", reject_change, "Reject a held change: the effective state stays"),
    ("/breakers", "GET", list_breakers, "Each target's mass-change breaker"),
    ("/breakers/{name}/release", "POST", release_breaker, "Close a target's breaker and push what it held"),
    ("/breakers/{name}/discard", "POST", discard_breaker, "Close a target's breaker and reject what it held"),
    ("/blast-radius", "GET", blast_radius, "What an identity drives downstream (?subject=user:NAME)"),
]


def openapi_paths() -> dict[str, Any]:
    return _paths(
        ROUTES,
        request_bodies={
            "PUT": {
                "required": True,
                "content": {
                    "application/yaml": {"schema": {"type": "string", "description": "A policy file (docs/policy.md)"}}
                },
            }
        },
    )
