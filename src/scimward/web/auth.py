"""Who may do what: every console endpoint is wrapped by ``requires(role)``, checked on the server.

A request without a live session is sent to the sign-in page (a page) or refused with 401 (an
action). A state-changing request (POST) without its session's CSRF token is refused with 403, as
is a request from a role below the one the endpoint needs; both refusals go to the audit trail.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scimward.store.auth import ConsoleSession
from scimward.web.context import console_of
from scimward.web.security import same_token, submitted_token

Endpoint = Callable[[Request], Awaitable[Response]]


def requires(role: str) -> Callable[[Endpoint], Endpoint]:
    def wrap(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            console = console_of(request)
            session = await console.session_of(request)
            reading = request.method in ("GET", "HEAD")
            if session is None:
                if reading:
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(console.url("/sign-in?" + urlencode({"next": target})), 303)
                return console.render(
                    request, "error.html", 401, title="Sign in first", message="Your session has ended. Sign in again."
                )
            request.state.session = session
            if not reading and not same_token(await submitted_token(request), session.csrf):
                return await refuse(request, session, "the form carried no valid CSRF token")
            if not session.allows(role):
                return await refuse(request, session, f"this needs the {role} role; you have {session.role}")
            return await endpoint(request)

        return guarded

    return wrap


async def refuse(request: Request, session: ConsoleSession, why: str) -> Response:
    console = console_of(request)
    await console.audit(
        "console_refused", session.name, request.url.path, method=request.method, reason=why, role=session.role
    )
    return console.render(request, "error.html", 403, title="Not allowed", message=why)


def session_of(request: Request) -> ConsoleSession:
    """The signed-in session of a request ``requires`` let through."""
    session: ConsoleSession = request.state.session
    return session
