"""The ASGI application: SCIM at /scim/v2, the admin API at /admin/v1, health and metrics (``api.health``),
and the web console at /console (``scimward.web``)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from scimward.api import admin, bulk, discovery, health, search
from scimward.api.context import Hub, scim_endpoint
from scimward.api.resources import ResourceEndpoints
from scimward.api.responses import error_response
from scimward.api.settings import Settings
from scimward.governance.nhi import run_nhi_schedule
from scimward.governance.nhi import user_types as nhi_user_types
from scimward.governance.schedule import run_governance_schedule
from scimward.governance.sources.runner import parse_imports, run_source_schedule
from scimward.policy import identity_store
from scimward.scim.errors import MethodNotAllowed, NotFound, ScimError
from scimward.scim.resource_types import AGENT_TYPE, AGENTIC_APPLICATION_TYPE, GROUP_TYPE, USER_TYPE
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from scimward.store.identity import IdentityStore
from scimward.sync.propagate import Propagator
from scimward.sync.schedule import run_reconcile_schedule

SCIM_PREFIX = "/scim/v2"
#: The console is another edge: this app mounts it by name, never by import (DESIGN.md layers).
CONSOLE_MODULE = "scimward.web"


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
    identities = identity_store(database)
    tokens = TokenStore(database)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Requests make many short-lived objects and few cycles: move what startup built out of the
        # collector's sight and collect young objects less often.
        gc.collect()
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        stop = asyncio.Event()
        worker: asyncio.Task[None] | None = None
        propagator: Propagator | None = None
        if settings.run_worker:
            # The embedded default: this process pushes its own changes as soon as they commit.
            propagator = Propagator(database)
            identities.on_change = propagator.wake
            worker = asyncio.create_task(propagator.run(stop))
            reconciles = asyncio.create_task(run_reconcile_schedule(database, stop))
            governance = asyncio.create_task(
                run_governance_schedule(database, identities, stop, catch_all_share=settings.catch_all_percent / 100)
            )
            # Non-human identities: the leaver cascade, expiry and leavers' hub tokens, within seconds.
            nhis = asyncio.create_task(
                run_nhi_schedule(database, identities, stop, nhi_user_types(settings.nhi_user_types))
            )
        sources = (
            asyncio.create_task(
                run_source_schedule(
                    database,
                    identities,
                    parse_imports(settings.source_imports),
                    stop,
                    every_seconds=settings.source_check_seconds,
                )
            )
            if settings.source_imports
            else None
        )
        yield
        stop.set()
        if sources is not None:
            await sources
        if worker is not None and propagator is not None:
            for task in (reconciles, governance, nhis):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await worker
            await propagator.close()
        await database.dispose()

    endpoints = [ResourceEndpoints(rt) for rt in (USER_TYPE, GROUP_TYPE, AGENT_TYPE, AGENTIC_APPLICATION_TYPE)]
    scim_routes: list[Route] = [
        # The resources first: the router tries routes in order, and these take nearly every request.
        *(route for e in endpoints for route in e.routes()),
        *discovery.routes,
        *search.routes(endpoints),
        *bulk.routes(endpoints),
        Route("/Me", scim_endpoint(endpoints[0].me), methods=["GET", "PUT", "PATCH", "DELETE"]),
    ]
    app = Starlette(
        # SCIM routes carry the prefix themselves rather than sit in a Mount: one router, not two, per request.
        routes=[
            *(Route(SCIM_PREFIX + r.path, r.endpoint, methods=r.methods, name=r.name) for r in scim_routes),
            *health.routes(database, tokens),
            Mount(admin.PREFIX, app=admin.create_app(database, tokens)),
            _console(database, identities, settings),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.hub = Hub(settings, identities, tokens)
    return app


def _console(database: Database, identities: IdentityStore, settings: Settings) -> Mount:
    """The web console, writing identities through this app's gated store (so its worker is woken)."""
    web = importlib.import_module(CONSOLE_MODULE)
    return Mount(web.PREFIX, app=web.create_console(database, identities, settings))


def app_from_env() -> Starlette:
    """The application configured from ``SCIMWARD_*`` variables (uvicorn's factory)."""
    return create_app(Settings.from_env())
