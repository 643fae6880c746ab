"""The console's browser protections: security headers on every answer, cookies, the CSRF check.

The Content-Security-Policy allows nothing but the console's own scripts, styles and images: no
inline script or style, no eval (htmx is configured without it), no framing, forms posting only to
the console itself. The session cookie is HttpOnly and SameSite=Lax (Lax, not Strict: the identity
provider's redirect back is a cross-site navigation, and a Strict cookie set there would not be sent
on the next page); every state-changing request must carry the session's CSRF token besides.
"""

from __future__ import annotations

import hmac

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
SESSION_COOKIE = "scimward_console"
#: The sign-in form's token, before there is a session to hold one (a double-submit cookie).
SIGN_IN_COOKIE = "scimward_console_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class SecurityHeaders:
    """Adds ``HEADERS`` to every response, and ``Cache-Control: no-store`` to every page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)


def set_cookie(
    response: Response, name: str, value: str, *, path: str, secure: bool, max_age: int | None = None
) -> None:
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="lax")


async def submitted_token(request: Request) -> str:
    """The CSRF token a request carries: the form field, or the header htmx sends."""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def same_token(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())
