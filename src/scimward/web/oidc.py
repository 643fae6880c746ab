"""Signing in over OpenID Connect (Authlib): the authorization code flow with PKCE and a nonce.

The state, nonce and code verifier live between the redirect and the callback in a signed cookie
(Starlette's session middleware, on the ``/oidc`` paths only, keyed by a hub secret). The ID token
is checked by Authlib (signature against the provider's keys, issuer, audience, expiry, nonce);
its claims, with the userinfo endpoint's, are mapped to a console role by
``settings.console_oidc_roles``. A person no rule matches is refused, and the refusal audited.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx2
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from scimward.settings import Settings, role_mapping
from scimward.store.auth import hub_secret, role_rank
from scimward.store.database import Database
from scimward.web.context import console_of
from scimward.web.signin import safe_next, signed_in

STATE_COOKIE = "scimward_console_oidc"


def client(settings: Settings) -> StarletteOAuth2App:
    oauth = OAuth()
    issuer = (settings.console_oidc_issuer or "").rstrip("/")
    app: StarletteOAuth2App = oauth.register(
        "console",
        client_id=settings.console_oidc_client_id,
        client_secret=settings.console_oidc_client_secret,
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256"},
    )
    return app


def role_for(claims: dict[str, Any], rules: list[tuple[str, str, str]]) -> str | None:
    """The highest role whose rule the claims match; None when none does."""
    best: str | None = None
    for claim, value, role in rules:
        held = claims.get(claim)
        matched = (
            value in [str(v) for v in held]
            if isinstance(held, list)
            else str(held) == value
            if held is not None
            else False
        )
        if matched and (best is None or role_rank(role) > role_rank(best)):
            best = role
    return best


def person(claims: dict[str, Any]) -> str:
    for claim in ("preferred_username", "email", "sub"):
        if isinstance(claims.get(claim), str) and claims[claim]:
            return str(claims[claim])[:200]
    return "unknown"


async def start(request: Request) -> Response:
    console = console_of(request)
    if not console.oidc_enabled:
        return console.render(
            request,
            "error.html",
            404,
            title="Not configured",
            message="No identity provider is configured for the console.",
        )
    request.session["next"] = safe_next(console, request.query_params.get("next"))
    oauth: StarletteOAuth2App = request.app.state.oidc
    try:
        response: Response = await oauth.authorize_redirect(request, str(request.url_for("oidc_callback")))
    except httpx2.HTTPError:
        return unreachable(request)
    return response


def unreachable(request: Request) -> Response:
    return console_of(request).render(
        request,
        "error.html",
        503,
        title="Identity provider unreachable",
        message="The identity provider did not answer. Try again, or sign in as a break-glass administrator.",
    )


async def callback(request: Request) -> Response:
    console = console_of(request)
    oauth: StarletteOAuth2App = request.app.state.oidc
    try:
        token = await oauth.authorize_access_token(request)  # type: ignore[no-untyped-call]
    except httpx2.HTTPError:
        return unreachable(request)
    except OAuthError as exc:
        await console.audit("console_refused", "-", "sign-in", method="oidc", reason=exc.error)
        return console.render(
            request,
            "error.html",
            401,
            title="Sign-in failed",
            message=f"The identity provider's answer was not accepted ({exc.error}).",
        )
    claims = dict(token.get("userinfo") or {})
    # Without the userinfo endpoint's claims, the ID token's alone.
    with contextlib.suppress(OAuthError, httpx2.HTTPError):
        claims = {**dict(await oauth.userinfo(token=token)), **claims}
    name = person(claims)
    role = role_for(claims, role_mapping(console.settings.console_oidc_roles))
    if role is None:
        await console.audit("console_refused", name, "sign-in", method="oidc", reason="no role rule matches")
        return console.render(
            request,
            "error.html",
            403,
            title="Not allowed",
            message=f"{name} is signed in at the identity provider, but no console role is "
            "granted to them (SCIMWARD_CONSOLE_OIDC_ROLES).",
        )
    session_token, session = await console.sessions.open(name, role, "oidc")
    next_path = str(request.session.pop("next", ""))
    return await signed_in(console, session, session_token, next_path)


routes = [
    Route("/start", start, methods=["GET"], name="oidc_start"),
    Route("/callback", callback, methods=["GET"], name="oidc_callback"),
]


class StateCookie:
    """Starlette's session middleware, keyed by a hub secret read on the first request."""

    def __init__(self, app: ASGIApp, database: Database, path: str, secure: bool) -> None:
        self.app, self.database, self.path, self.secure = app, database, path, secure
        self._inner: SessionMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._inner is None:
            key = await hub_secret(self.database, "console-oidc-state")
            self._inner = SessionMiddleware(
                self.app,
                secret_key=key.hex(),
                session_cookie=STATE_COOKIE,
                max_age=600,
                path=self.path,
                same_site="lax",
                https_only=self.secure,
            )
        await self._inner(scope, receive, send)
