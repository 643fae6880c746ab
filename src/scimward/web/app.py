"""The console's ASGI application: its pages (``web.nav``), sign-in, static files and protections."""

from __future__ import annotations

import importlib
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from scimward.errors import ScimwardError
from scimward.settings import Settings
from scimward.store.database import Database
from scimward.store.identity import IdentityStore
from scimward.web import oidc, signin
from scimward.web.context import Console, console_of
from scimward.web.errors import scimward_error
from scimward.web.nav import PAGES
from scimward.web.security import SecurityHeaders

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"


def page_routes() -> list[BaseRoute]:
    routes: list[BaseRoute] = []
    for page in PAGES:
        module, _, attribute = page.routes.partition(":")
        routes.extend(getattr(importlib.import_module(module), attribute))
    return routes


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    titles = {404: "Not found", 405: "Not allowed here"}
    return console_of(request).render(
        request,
        "error.html",
        exc.status_code,
        title=titles.get(exc.status_code, "Error"),
        message="There is no such page in the console." if exc.status_code == 404 else str(exc.detail),
    )


def create_console(database: Database, store: IdentityStore, settings: Settings, prefix: str = PREFIX) -> Starlette:
    """The console for ``database``, writing identities only through ``store`` (the hub's gated store)."""
    console = Console(database, store, settings, prefix)
    oidc_app = Starlette(
        routes=oidc.routes,
        middleware=[
            Middleware(
                oidc.StateCookie, database=database, path=prefix + "/oidc", secure=settings.console_secure_cookies
            )
        ],
    )
    oidc_app.state.console = console
    if console.oidc_enabled:
        oidc_app.state.oidc = oidc.client(settings)
    app = Starlette(
        routes=[
            Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
            *signin.routes,
            Mount("/oidc", app=oidc_app),
            *page_routes(),
        ],
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: http_error, ScimwardError: scimward_error},
    )
    app.state.console = console
    return app
