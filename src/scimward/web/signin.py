"""Signing in with a local break-glass administrator, and signing out."""

from __future__ import annotations

import secrets
from datetime import timedelta

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scimward.store.auth import ConsoleSession, failed_sign_ins
from scimward.store.timeutil import utcnow
from scimward.web.auth import requires, session_of
from scimward.web.context import Console, console_of
from scimward.web.security import CSRF_FIELD, SESSION_COOKIE, SIGN_IN_COOKIE, same_token, set_cookie

#: Guessing a password is slowed to this many tries per account and window (counted in the audit trail).
MAX_FAILURES = 10
THROTTLE_WINDOW = timedelta(minutes=15)


def safe_next(console: Console, given: str | None) -> str:
    """Where to go after signing in: a console path only, never another site."""
    if given and given.startswith(console.prefix + "/") and not given.startswith("//") and "\\" not in given:
        return given
    return console.url("/")


async def sign_in_form(request: Request) -> Response:
    console = console_of(request)
    if await console.session_of(request) is not None:
        return RedirectResponse(safe_next(console, request.query_params.get("next")), 303)
    return _form(request, console)


def _form(request: Request, console: Console, error: str | None = None, status: int = 200) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or secrets.token_urlsafe(32)
    response = console.render(
        request,
        "sign_in.html",
        status,
        title="Sign in",
        sign_in_csrf=token,
        error=error,
        next=safe_next(console, request.query_params.get("next")),
        oidc=console.oidc_enabled,
    )
    set_cookie(
        response,
        SIGN_IN_COOKIE,
        token,
        path=console.url("/sign-in"),
        secure=console.settings.console_secure_cookies,
        max_age=3600,
    )
    return response


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not isinstance(given, str) or not same_token(given, request.cookies.get(SIGN_IN_COOKIE, "")):
        return console.render(
            request,
            "error.html",
            403,
            title="Not allowed",
            message="the form carried no valid CSRF token: reload the sign-in page",
        )
    name, password = str(form.get("name", "")).strip()[:128], str(form.get("password", ""))
    if name and await failed_sign_ins(console.database, name, utcnow() - THROTTLE_WINDOW) >= MAX_FAILURES:
        return _form(
            request,
            console,
            f"Too many failed sign-ins as {name}: wait "
            f"{THROTTLE_WINDOW.seconds // 60} minutes, or ask an administrator.",
            429,
        )
    role = await console.accounts.verify(name, password) if name and password else None
    if role is None:
        await console.audit("console_refused", name or "-", "sign-in", method="local", reason="wrong name or password")
        return _form(request, console, "That name and password do not match an active administrator.", 401)
    token, session = await console.sessions.open(name, role, "local")
    return await signed_in(console, session, token, str(form.get("next", "")))


async def signed_in(console: Console, session: ConsoleSession, token: str, next_path: str) -> Response:
    """The session's cookie set, its sign-in audited, and on to where the person was going."""
    await console.audit(
        "console_sign_in", session.name, f"session:{session.token_hash[:12]}", method=session.via, role=session.role
    )
    response = RedirectResponse(safe_next(console, next_path), 303)
    set_cookie(
        response, SESSION_COOKIE, token, path=console.prefix or "/", secure=console.settings.console_secure_cookies
    )
    response.delete_cookie(SIGN_IN_COOKIE, path=console.url("/sign-in"))
    return response


@requires("viewer")
async def sign_out(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    await console.sessions.revoke(session.token_hash)
    await console.audit("console_sign_out", session.name, f"session:{session.token_hash[:12]}")
    response = RedirectResponse(console.url("/sign-in"), 303)
    response.delete_cookie(SESSION_COOKIE, path=console.prefix or "/")
    return response


routes = [
    Route("/sign-in", sign_in_form, methods=["GET"], name="sign_in_form"),
    Route("/sign-in", sign_in, methods=["POST"], name="sign_in"),
    Route("/sign-out", sign_out, methods=["POST"], name="sign_out"),
]
