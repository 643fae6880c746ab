"""The console's pages, once: the navigation, the routes and who may see each come from this list.

Adding a page is one entry here (and its module in ``web.pages``): its path under ``/console``, the
title the navigation shows, the least role that may open it, and the routes it serves.
"""

from __future__ import annotations

from dataclasses import dataclass

from scimward.store.auth import role_rank


@dataclass(frozen=True)
class Page:
    path: str
    title: str
    #: The least role that may open the page (``store.auth.ROLES``); actions check their own.
    role: str
    #: ``module:attribute`` of the page's list of routes, imported when the console is built.
    routes: str


PAGES: tuple[Page, ...] = (
    Page("/", "Dashboard", "viewer", "scimward.web.pages.dashboard:routes"),
    Page("/identities", "Identities", "viewer", "scimward.web.pages.identities:routes"),
    Page("/groups", "Groups", "viewer", "scimward.web.pages.groups:routes"),
    Page("/targets", "Targets", "viewer", "scimward.web.pages.targets:routes"),
    Page("/changes", "Changes", "viewer", "scimward.web.pages.changes:routes"),
    Page("/reviews", "Reviews", "viewer", "scimward.web.pages.reviews:routes"),
    Page("/nhi", "NHIs", "viewer", "scimward.web.pages.nhi:routes"),
    Page("/findings", "Findings", "viewer", "scimward.web.pages.findings:routes"),
    Page("/audit", "Audit", "viewer", "scimward.web.pages.audit:routes"),
    Page("/sessions", "Sessions", "admin", "scimward.web.pages.sessions:routes"),
)


def visible_pages(role: str) -> list[Page]:
    return [page for page in PAGES if role_rank(role) >= role_rank(page.role)]
