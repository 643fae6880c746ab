"""The admin API: JSON at /admin/v1 for bearer tokens with the ``admin`` scope.

It is a Starlette application of its own, mounted beside SCIM, so that every answer, a routing
failure included, is the admin API's JSON error ``{"error": ..., "detail": ...}`` rather than a
SCIM Error. Targets are administered through ``sync.target_admin``, the same service as the command
line; a target's credential goes in (``token`` in POST and PATCH bodies) and never comes out.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scimward.api import admin_evidence, admin_nhi, admin_operations, admin_policy, admin_reviews, admin_sources
from scimward.api.admin_bodies import json_object
from scimward.api.clients import client_address
from scimward.api.errors import ADMIN_NAMES, as_scim_error
from scimward.errors import ScimwardError
from scimward.policy.plans import ConfigChangeHeld
from scimward.scim.errors import (
    Forbidden,
    InvalidValue,
    ServiceUnavailable,
    Unauthorized,
)
from scimward.store.auth import TokenInfo, TokenStore
from scimward.store.database import Database
from scimward.sync.reconcile import Reconciler
from scimward.sync.secrets import SecretBox
from scimward.sync.target_admin import TargetAdmin, merge_config, parse_config

PREFIX = "/admin/v1"

log = structlog.get_logger("scimward.api.admin")

ERROR_NAMES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    500: "internal_error",
}


@dataclass(frozen=True)
class AdminContext:
    tokens: TokenStore
    targets: TargetAdmin


AdminHandler = Callable[[Request, AdminContext], Awaitable[Response]]


def error_response(
    status: int, detail: str, *, error: str | None = None, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": error or ERROR_NAMES.get(status, "error"), "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def admin_endpoint(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
    """Authenticate an admin, run the handler, answer every failure with a JSON error."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        context: AdminContext = request.app.state.admin
        try:
            token = await authenticate(request, context.tokens)
            request.state.admin_token = token
            structlog.contextvars.bind_contextvars(client=token.name)
            return await handler(request, context)
        except ScimwardError as exc:
            error = as_scim_error(exc)
            headers = {"WWW-Authenticate": 'Bearer realm="scimward"'} if error.status == 401 else None
            if isinstance(error, ServiceUnavailable):
                headers = {"Retry-After": str(error.retry_after)}
            return error_response(error.status, error.detail, error=ADMIN_NAMES.get(type(error)), headers=headers)
        except Exception:  # the edge: a bug, answered as a 500 with its request id
            request_id = request.headers.get("x-request-id") or secrets.token_hex(8)
            log.exception("unhandled error", request_id=request_id, method=request.method, path=request.url.path)
            return error_response(500, f"internal error; request id {request_id}", headers={"X-Request-Id": request_id})

    return endpoint


async def authenticate(request: Request, tokens: TokenStore) -> TokenInfo:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("a bearer token is required (Authorization: Bearer <token>)")
    info = await tokens.verify(token.strip())
    if info is None:
        await tokens.refused(token.strip(), request.url.path, None, client_address(request))
        raise Unauthorized("the bearer token is unknown, expired or revoked")
    if not info.allows("admin"):
        await tokens.refused(token.strip(), request.url.path, "scope", client_address(request))
        raise Forbidden(
            f"the token {info.name!r} is a SCIM client token; the admin API needs one with the admin "
            "scope (scimward token create --scope admin)"
        )
    return info


def _string(data: dict[str, Any], key: str, *, required: bool) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InvalidValue(f"{key} must be a string" if key in data else f"{key} is required")
    return value


@admin_endpoint
async def list_targets(_request: Request, context: AdminContext) -> Response:
    return JSONResponse({"targets": await context.targets.list()})


@admin_endpoint
async def add_target(request: Request, context: AdminContext) -> Response:
    data = await json_object(request, {"name", "url", "token", "config"})
    name, url, token = (_string(data, key, required=True) for key in ("name", "url", "token"))
    assert name is not None and url is not None and token is not None
    config = parse_config(data["config"] if data.get("config") is not None else {})
    target = await context.targets.add(name, url, token, config, _actor(request))
    log.info("target added", target=target.name, url=target.row.base_url)
    return JSONResponse(
        await context.targets.show(target.name),
        status_code=201,
        headers={"Location": f"{PREFIX}/targets/{target.name}"},
    )


@admin_endpoint
async def get_target(request: Request, context: AdminContext) -> Response:
    return JSONResponse(await context.targets.show(request.path_params["name"]))


@admin_endpoint
async def change_target(request: Request, context: AdminContext) -> Response:
    """Change the URL, the token, or configuration keys (a JSON merge patch: null resets a key)."""
    name = request.path_params["name"]
    data = await json_object(request, {"url", "token", "config"})
    url, token = _string(data, "url", required=False), _string(data, "token", required=False)
    config = merge_config((await context.targets.get(name)).config, data["config"]) if "config" in data else None
    try:
        await context.targets.update(name, url=url, token=token, config=config, actor=_actor(request))
    except ConfigChangeHeld as held:
        return _held(held)
    log.info("target changed", target=name, fields=sorted(data))
    return JSONResponse(await context.targets.show(name))


def _actor(request: Request) -> str:
    return str(request.state.admin_token.name)


def _held(held: ConfigChangeHeld) -> Response:
    """202: accepted for a second person's approval; nothing changed yet."""
    return JSONResponse(
        {"status": "held", "change": held.change_id, "detail": str(held), "plan": held.plan.to_json()}, status_code=202
    )


@admin_endpoint
async def remove_target(request: Request, context: AdminContext) -> Response:
    name = request.path_params["name"]
    try:
        await context.targets.remove(name, _actor(request))
    except ConfigChangeHeld as held:
        return _held(held)
    log.info("target removed", target=name)
    return Response(status_code=204)


@admin_endpoint
async def test_target(request: Request, context: AdminContext) -> Response:
    """200 with the report whether or not the target passed: the test ran; ``ok`` says how it went."""
    return JSONResponse(await context.targets.test(request.path_params["name"]))


@admin_endpoint
async def resume_target(request: Request, context: AdminContext) -> Response:
    name = request.path_params["name"]
    view = await context.targets.resume(name)
    log.info("target resumed", target=name)
    return JSONResponse(view)


@admin_endpoint
async def reconcile_target(request: Request, context: AdminContext) -> Response:
    """Reconcile now and answer with the run's report; ``{"repair": true}`` enqueues corrections."""
    repair = None
    if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers:
        repair = (await json_object(request, {"repair"})).get("repair")
        if repair is not None and not isinstance(repair, bool):
            raise InvalidValue("repair must be true or false")
    reconciler = Reconciler(context.targets.db, secrets=context.targets.secrets)
    report = await reconciler.run(request.path_params["name"], repair=repair, trigger="api")
    return JSONResponse(report.to_json())


async def openapi(_request: Request) -> Response:
    """The OpenAPI description; public, like the SCIM discovery endpoints, as it holds nothing secret."""
    return JSONResponse(OPENAPI)


async def http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(404, "no such admin endpoint; see /admin/v1/openapi.json")
    return error_response(exc.status_code, exc.detail, headers=exc.headers)


def _route(path: str, **handlers: Callable[[Request], Awaitable[Response]]) -> Route:
    """One route per path, so that a 405 lists every method the path allows."""

    async def dispatch(request: Request) -> Response:
        # Starlette routes HEAD to a path that allows GET.
        handler = handlers.get(request.method) or handlers["GET"]
        return await handler(request)

    return Route(path, dispatch, methods=list(handlers))


def create_app(database: Database, tokens: TokenStore, secret_box: SecretBox | None = None) -> Starlette:
    """The admin application, to mount at ``PREFIX``; it shares the hub's database and token store."""
    app = Starlette(
        routes=[
            Route("/openapi.json", openapi, methods=["GET"]),
            _route("/targets", GET=list_targets, POST=add_target),
            _route("/targets/{name}", GET=get_target, PATCH=change_target, DELETE=remove_target),
            _route("/targets/{name}/test", POST=test_target),
            _route("/targets/{name}/resume", POST=resume_target),
            _route("/targets/{name}/reconcile", POST=reconcile_target),
            *_policy_routes(),
        ],
        exception_handlers={HTTPException: http_error},
    )
    app.state.admin = AdminContext(tokens, TargetAdmin(database, secret_box))
    return app


def _policy_routes() -> list[Route]:
    """The gate's endpoints (``api.admin_policy``) and the reviews' (``api.admin_reviews``), one route per path."""
    by_path: dict[str, dict[str, Callable[[Request], Awaitable[Response]]]] = {}
    for path, method, handler, _summary in [
        *admin_policy.ROUTES,
        *admin_reviews.ROUTES,
        *admin_evidence.ROUTES,
        *admin_operations.ROUTES,
        *admin_nhi.ROUTES,
        *admin_sources.ROUTES,
    ]:
        by_path.setdefault(path, {})[method] = admin_endpoint(_with_database(handler))
    return [_route(path, **handlers) for path, handlers in by_path.items()]


def _with_database(handler: admin_policy.Handler) -> AdminHandler:
    async def run(request: Request, context: AdminContext) -> Response:
        return await handler(request, context.targets.db)

    return run


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERRORS = {
    str(status): {"$ref": f"#/components/responses/{name}"}
    for status, name in ((400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound"))
}
_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "scimward admin API",
        "version": "1",
        "description": "Administer targets: the applications scimward provisions over SCIM. "
        "Needs a bearer token with the admin scope (scimward token create --scope admin). "
        "A target's token is accepted in requests and never returned.",
    },
    "servers": [{"url": PREFIX}],
    "security": [{"bearer": []}],
    "paths": {
        "/targets": {
            "get": {
                "summary": "List targets",
                "responses": {
                    "200": _json(
                        {"type": "object", "properties": {"targets": {"type": "array", "items": _ref("Target")}}},
                        "The targets, by name",
                    ),
                    **_ERRORS,
                },
            },
            "post": {
                "summary": "Add a target",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("NewTarget")}}},
                "responses": {
                    "201": _json(_ref("Target"), "Added"),
                    "409": {"$ref": "#/components/responses/Conflict"},
                    **_ERRORS,
                },
            },
        },
        "/targets/{name}": {
            "parameters": _NAME,
            "get": {"summary": "Show a target", "responses": {"200": _json(_ref("Target"), "The target"), **_ERRORS}},
            "patch": {
                "summary": "Change a target's URL, token or configuration (a JSON merge patch)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("TargetChange")}}},
                "responses": {"200": _json(_ref("Target"), "Changed"), **_ERRORS},
            },
            "delete": {
                "summary": "Remove a target with its outbox and links; its accounts stay",
                "responses": {"204": {"description": "Removed"}, **_ERRORS},
            },
        },
        "/targets/{name}/test": {
            "parameters": _NAME,
            "post": {
                "summary": "Read the target's ServiceProviderConfig and try its token",
                "responses": {
                    "200": _json(_ref("TestReport"), "The report; ok says whether the token works"),
                    **_ERRORS,
                },
            },
        },
        "/targets/{name}/resume": {
            "parameters": _NAME,
            "post": {"summary": "Lift a quarantine", "responses": {"200": _json(_ref("Target"), "Resumed"), **_ERRORS}},
        },
        "/targets/{name}/reconcile": {
            "parameters": _NAME,
            "post": {
                "summary": "Read the target back now and record the drift (see docs/reconcile.md)",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "repair": {
                                        "type": "boolean",
                                        "description": "Enqueue corrections; default: the target's "
                                        "reconcile_repair setting",
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": _json(_ref("ReconcileReport"), "The run's report"),
                    "409": {"$ref": "#/components/responses/Conflict"},
                    "502": _json(_ref("Error"), "The target failed"),
                    **_ERRORS,
                },
            },
        },
        **admin_policy.openapi_paths(),
        **admin_reviews.openapi_paths(),
        **admin_evidence.openapi_paths(),
        **admin_operations.openapi_paths(),
        **admin_nhi.openapi_paths(),
        **admin_sources.openapi_paths(),
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "responses": {
            name: _json(_ref("Error"), name)
            for name in ("BadRequest", "Unauthorized", "Forbidden", "NotFound", "Conflict")
        },
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error", "detail"],
                "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
            },
            "TargetConfig": {
                "type": "object",
                "additionalProperties": True,
                "properties": {
                    "scope": {"type": ["string", "null"], "description": "SCIM filter over Users; null: every user"},
                    "push_groups": {"type": "boolean", "default": True},
                    "group_scope": {
                        "type": ["string", "null"],
                        "description": "SCIM filter over Groups; null: every group",
                    },
                    "mapping": {
                        "type": ["array", "null"],
                        "description": "null: the default mapping",
                        "items": {
                            "type": "object",
                            "required": ["target"],
                            "properties": {"target": {"type": "string"}, "source": {"type": "string"}, "constant": {}},
                        },
                    },
                    "deprovision": {"enum": ["deactivate", "delete", "tombstone"], "default": "deactivate"},
                    "tombstone_days": {"type": "integer", "minimum": 0, "default": 30},
                },
            },
            "NewTarget": {
                "type": "object",
                "required": ["name", "url", "token"],
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"},
                    "url": {"type": "string", "format": "uri"},
                    "token": {"type": "string", "writeOnly": True},
                    "config": _ref("TargetConfig"),
                },
            },
            "TargetChange": {
                "type": "object",
                "properties": {
                    "url": {"type": "string", "format": "uri"},
                    "token": {"type": "string", "writeOnly": True},
                    "config": {"type": "object", "description": "Keys to change; null resets a key to its default"},
                },
            },
            "Target": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "url": {"type": "string"},
                    "created": {"type": "string", "format": "date-time"},
                    "status": {"enum": ["active", "quarantined"]},
                    "quarantine": {"type": ["object", "null"]},
                    "consecutive_failures": {"type": "integer"},
                    "last_error": {"type": ["object", "null"]},
                    "config": _ref("TargetConfig"),
                    "outbox": {
                        "type": "object",
                        "properties": {"pending": {"type": "integer"}, "failing": {"type": "integer"}},
                    },
                    "links": {"type": "object", "additionalProperties": {"type": "integer"}},
                },
            },
            "ReconcileReport": {
                "type": "object",
                "properties": {
                    "run": {"type": "integer"},
                    "target": {"type": "string"},
                    "repair": {"type": "boolean"},
                    "started": {"type": "string", "format": "date-time"},
                    "finished": {"type": "string", "format": "date-time"},
                    "seconds": {"type": "number"},
                    "users_read": {"type": "integer"},
                    "groups_read": {"type": "integer"},
                    "open": {"type": "integer", "description": "Open findings this run saw"},
                    "counts": {"type": "object", "description": "Per drift kind: open, new and repaired findings"},
                    "resolved": {"type": "integer"},
                    "enqueued": {"type": "integer"},
                    "orphans_deactivated": {"type": "integer"},
                },
            },
            "TestReport": {
                "type": "object",
                "properties": {
                    "target": {"type": "string"},
                    "url": {"type": "string"},
                    "ok": {"type": "boolean"},
                    "credential": {"enum": ["accepted", "rejected", "unknown"]},
                    "checks": {"type": "array", "items": {"type": "object"}},
                    "supports": {"type": ["object", "null"]},
                    "authentication_schemes": {"type": "array", "items": {"type": "string"}},
                    "elapsed_ms": {"type": "integer"},
                },
            },
        },
    },
}
