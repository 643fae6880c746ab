"""The ASGI application: SCIM at /scim/v2, health at /healthz."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from scimward.api import bulk, discovery, search
from scimward.api.context import Hub, scim_endpoint
from scimward.api.resources import ResourceEndpoints
from scimward.api.responses import error_response
from scimward.api.settings import Settings
from scimward.scim.errors import MethodNotAllowed, NotFound, ScimError
from scimward.scim.resource_types import GROUP_TYPE, USER_TYPE
from scimward.store.database import Database
from scimward.store.identities import IdentityStore
from scimward.store.tokens import TokenStore

SCIM_PREFIX = "/scim/v2"


async def healthz(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def http_error(_request: Request, exc: Exception) -> Response:
    """Routing failures (unknown path, wrong method) as SCIM Error bodies too."""
    assert isinstance(exc, HTTPException)
    error: ScimError
    if exc.status_code == 405:
        error = MethodNotAllowed("this method is not allowed on this endpoint")
        response = error_response(error)
        if exc.headers and "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    error = NotFound("no such endpoint") if exc.status_code == 404 else _status_error(exc.status_code, exc.detail)
    return error_response(error)


def _status_error(status: int, detail: str) -> ScimError:
    error = ScimError(detail)
    error.status = status  # type: ignore[misc]
    return error


def create_app(settings: Settings) -> Starlette:
    database = Database(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Requests make many short-lived objects and few cycles: move what startup built out of the
        # collector's sight and collect young objects less often (measured: docs/benchmarks.md).
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        yield
        await database.dispose()

    endpoints = [ResourceEndpoints(USER_TYPE), ResourceEndpoints(GROUP_TYPE)]
    scim_routes: list[Route] = [
        *discovery.routes,
        *search.routes(endpoints),
        *bulk.routes(endpoints),
        *(route for e in endpoints for route in e.routes()),
        Route("/Me", scim_endpoint(endpoints[0].me), methods=["GET", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(
        routes=[Route("/healthz", healthz), Mount(SCIM_PREFIX, routes=scim_routes)],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.hub = Hub(settings, IdentityStore(database), TokenStore(database))
    return app


def app_from_env() -> Starlette:
    """The application configured from ``SCIMWARD_*`` variables (uvicorn's factory)."""
    return create_app(Settings.from_env())
