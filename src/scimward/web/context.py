"""What every console page needs: the hub's stores, the templates, who is signed in, and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from scimward.policy import Approvals
from scimward.settings import Settings
from scimward.store.auth import ConsoleAccounts, ConsoleSession, ConsoleSessions, record
from scimward.store.database import Database
from scimward.store.identity import IdentityStore
from scimward.web.nav import visible_pages
from scimward.web.security import CSRF_FIELD, SESSION_COOKIE


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M:%S}" if moment is not None else "—"


def short_id(identifier: str) -> str:
    """An id as pages show it: its last 8 characters (ids are time-ordered, so their heads agree)."""
    return identifier[-8:]


def subject_path(resource_type: str, identifier: str) -> str:
    """The console page of a change's subject: an identity, a non-human identity or a target."""
    if resource_type == "Target":
        return f"/targets/{quote(identifier)}"
    if resource_type in ("Agent", "AgenticApplication"):
        return f"/nhi/{quote(identifier)}"
    return f"/identities/{quote(identifier)}"


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("scimward.web", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["when"] = _when
    environment.filters["short"] = short_id
    environment.globals["subject_path"] = subject_path
    return environment


@dataclass
class Console:
    database: Database
    #: The hub's gated store: the console reads through it, and writes identities only through it.
    store: IdentityStore
    settings: Settings
    prefix: str

    def __post_init__(self) -> None:
        self.accounts = ConsoleAccounts(self.database)
        self.sessions = ConsoleSessions(
            self.database,
            timedelta(minutes=self.settings.console_session_minutes),
            timedelta(minutes=self.settings.console_idle_minutes),
        )
        self.approvals = Approvals(self.database, self.store.direct)
        self.templates = _templates()

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.settings.console_oidc_issuer and self.settings.console_oidc_client_id)

    async def session_of(self, request: Request) -> ConsoleSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        return await self.sessions.get(token) if token else None

    async def audit(self, kind: str, actor: str, subject: str = "", **data: Any) -> None:
        """One event in the hub's audit trail (sign-ins, refusals and every action taken here)."""
        await record(self.database, kind, actor, subject, {"via": "console", **data})

    def url(self, path: str = "/") -> str:
        return self.prefix + path

    def render(self, request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        session: ConsoleSession | None = getattr(request.state, "session", None)
        page = self.templates.get_template(template)
        html = page.render(
            prefix=self.prefix,
            session=session,
            csrf_field=CSRF_FIELD,
            csrf=session.csrf if session else "",
            pages=visible_pages(session.role) if session else [],
            path=request.url.path,
            notice=request.query_params.get("notice"),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
