"""Console sessions: who is signed in, and revoking a session (administrators only)."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scimward.web.auth import requires, session_of
from scimward.web.context import console_of


@requires("admin")
async def sessions(request: Request) -> Response:
    console = console_of(request)
    return console.render(
        request,
        "sessions.html",
        title="Sessions",
        rows=await console.sessions.live(),
        accounts=await console.accounts.list(),
    )


@requires("admin")
async def revoke(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    token_hash = str((await request.form()).get("session", ""))
    revoked = await console.sessions.revoke(token_hash) if token_hash else False
    if revoked:
        await console.audit("console_action", session.name, f"session:{token_hash[:12]}", action="revoke_session")
    notice = "Session revoked." if revoked else "That session had ended already."
    return RedirectResponse(console.url("/sessions") + "?" + urlencode({"notice": notice}), 303)


routes = [
    Route("/sessions", sessions, methods=["GET"], name="sessions"),
    Route("/sessions/revoke", revoke, methods=["POST"], name="revoke_session"),
]
