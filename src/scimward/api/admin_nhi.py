"""Non-human identities in the admin API: the same register as ``scimward nhi`` (``governance.nhi.registry``).

Every action is a change through the gate with source ``api`` and the admin token's name as the
actor; errors answer as every admin endpoint's do (400 for bad input, 404 for an unknown NHI). A hub
token's successor (``rotate``) is in the answer once, as ``token``: it is not stored anywhere readable.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scimward.api.admin_bodies import json_object
from scimward.api.admin_paths import openapi_paths as _paths
from scimward.durations import parse_duration
from scimward.governance.nhi import user_types
from scimward.governance.nhi.registry import Registry
from scimward.policy import identity_store
from scimward.scim.errors import InvalidValue
from scimward.settings import Settings
from scimward.store.database import Database

Handler = Callable[[Request, Database], Awaitable[Response]]
SOURCE = "api"
_REGISTRIES: weakref.WeakKeyDictionary[Database, Registry] = weakref.WeakKeyDictionary()


def _registry(database: Database) -> Registry:
    registry = _REGISTRIES.get(database)
    if registry is None:
        registry = _REGISTRIES[database] = Registry(
            database, user_types(Settings.from_env().nhi_user_types), identity_store(database), source=SOURCE
        )
    return registry


def _actor(request: Request) -> str:
    return str(request.state.admin_token.name)


def _duration(text: Any, name: str) -> timedelta | None:
    if text is None:
        return None
    try:
        if not isinstance(text, str):
            raise ValueError
        return parse_duration(text)
    except ValueError:
        raise InvalidValue(f"{name} is a duration like 90d, 12h, 30m or 45s, not {text!r}") from None


def _text(data: dict[str, Any], name: str, *, required: bool = False) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidValue(f"{name} is a non-empty string")
    return value


async def list_nhis(request: Request, database: Database) -> Response:
    query = request.query_params
    unknown = set(query) - {"owner", "kind", "expiring", "orphaned"}
    if unknown:
        raise InvalidValue(f"unknown query parameter {sorted(unknown)[0]!r}: owner, kind, expiring, orphaned")
    orphaned = query.get("orphaned", "false").lower()
    if orphaned not in ("true", "false"):
        raise InvalidValue("orphaned is true or false")
    views = await _registry(database).query(
        owner=query.get("owner"),
        kind=query.get("kind"),
        expiring=_duration(query.get("expiring"), "expiring"),
        orphaned=orphaned == "true",
    )
    return JSONResponse({"nhis": [v.to_json() for v in views]})


async def add_nhi(request: Request, database: Database) -> Response:
    example = (
        '{"name": "export-bot", "kind": "bot", "owners": ["alice"], "purpose": "why", "expires": "90d", '
        '"environment": "prod"}'
    )
    data = await json_object(request, {"name", "kind", "owners", "purpose", "expires", "environment"}, optional=True)
    owners = data.get("owners")
    if not isinstance(owners, list) or not owners or not all(isinstance(o, str) and o for o in owners):
        raise InvalidValue(f"owners is a list of userNames; the body is {example}")
    view = await _registry(database).add(
        str(_text(data, "name", required=True)),
        str(_text(data, "kind", required=True)),
        owners,
        purpose=_text(data, "purpose"),
        expires_in=_duration(data.get("expires"), "expires"),
        environment=_text(data, "environment"),
        actor=_actor(request),
    )
    return JSONResponse(view.to_json(), status_code=202 if view.pending else 201)


async def show_nhi(request: Request, database: Database) -> Response:
    return JSONResponse((await _registry(database).find(request.path_params["name"])).to_json())


async def transfer_nhi(request: Request, database: Database) -> Response:
    data = await json_object(request, {"to"}, optional=True)
    view = await _registry(database).transfer(
        request.path_params["name"], str(_text(data, "to", required=True)), _actor(request)
    )
    return JSONResponse(view.to_json())


async def attest_nhi(request: Request, database: Database) -> Response:
    await json_object(request, set(), optional=True)
    return JSONResponse((await _registry(database).attest(request.path_params["name"], _actor(request))).to_json())


async def rotate_nhi(request: Request, database: Database) -> Response:
    data = await json_object(request, {"credential", "overlap"}, optional=True)
    overlap = _duration(data.get("overlap", "1h"), "overlap")
    assert overlap is not None
    view, token = await _registry(database).rotate(
        request.path_params["name"], _actor(request), overlap=overlap, identifier=_text(data, "credential")
    )
    body = view.to_json()
    if token is not None:
        body["token"] = token  # shown once: store it now
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def retire_nhi(request: Request, database: Database) -> Response:
    await json_object(request, set(), optional=True)
    return JSONResponse((await _registry(database).retire(request.path_params["name"], _actor(request))).to_json())


#: (path, method, handler, summary): registered by ``api.admin`` and described in its OpenAPI document.
ROUTES: list[tuple[str, str, Handler, str]] = [
    (
        "/nhis",
        "GET",
        list_nhis,
        "Every NHI: Agents, service-account Users, owned hub tokens "
        "(?owner=USERNAME&kind=bot&expiring=30d&orphaned=true)",
    ),
    (
        "/nhis",
        "POST",
        add_nhi,
        'Register an NHI through the gate: {"name", "kind", "owners": [userName], '
        '"purpose", "expires": "90d", "environment"} (202 when the gate holds it)',
    ),
    (
        "/nhis/{name}",
        "GET",
        show_nhi,
        "One NHI: kind, owners, state, expiry, purpose, environment, credential metadata (never the secret)",
    ),
    ("/nhis/{name}/transfer", "POST", transfer_nhi, 'A new owner, through the gate: {"to": "USERNAME"}'),
    ("/nhis/{name}/attest", "POST", attest_nhi, "Record the owner's review (lastReviewed), through the gate"),
    (
        "/nhis/{name}/rotate",
        "POST",
        rotate_nhi,
        'Record a rotation {"credential": ID, "overlap": "1h"}; a hub token\'s successor is in `token`, shown once',
    ),
    (
        "/nhis/{name}/retire",
        "POST",
        retire_nhi,
        "Retire: deleted through the gate, deprovisioned in every target (a hub token is revoked)",
    ),
]


def openapi_paths() -> dict[str, Any]:
    body = {"required": False, "content": {"application/json": {"schema": {"type": "object"}}}}
    return _paths(ROUTES, request_bodies={"POST": body})
