"""Non-human identities: Agents, agentic applications, service-account Users and owned hub tokens, with
their owners, expiry, rotation and open findings; one NHI in full, attested, transferred or retired.

Lists are searched in SCIM filter syntax and paged by cursor in SQL (the store's search), the quick
filters (kind, owner, expiring) added to the typed filter. Every action goes through
``governance.nhi.registry.Registry``, the same register as ``scimward nhi attest|transfer|retire``,
with this console's gated store and source ``console``: the policy's rules, approvals and the
breaker apply as to the command line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scimward.errors import ScimwardError
from scimward.governance.nhi import user_types
from scimward.governance.nhi.registry import NhiView, Registry
from scimward.scim.agents import NHI_KINDS, NHI_SCHEMA
from scimward.scim.errors import NotFound
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import AGENT_TYPE, AGENTIC_APPLICATION_TYPE, ENTERPRISE_USER_SCHEMA, USER_TYPE
from scimward.scim.schema import ResourceType
from scimward.store.governance import open_findings_of
from scimward.store.identity import SearchQuery
from scimward.store.timeutil import utcnow
from scimward.web.auth import requires, session_of
from scimward.web.context import Console, console_of
from scimward.web.errors import notice_of

PAGE = 25
EXPIRING_DAYS = (7, 30, 90)


@dataclass(frozen=True)
class Shown:
    """One tab of the page: which identities it lists, and the filter that makes them NHIs."""

    key: str
    label: str
    rt: ResourceType | None  # None: the hub's tokens, not identities


SHOWN = (
    Shown("agents", "Agents", AGENT_TYPE),
    Shown("applications", "Agentic applications", AGENTIC_APPLICATION_TYPE),
    Shown("accounts", "Service accounts", USER_TYPE),
    Shown("tokens", "Hub tokens", None),
)


def registry_of(console: Console) -> Registry:
    return Registry(console.database, user_types(console.settings.nhi_user_types), console.store, source="console")


def _literal(value: str) -> str:
    return json.dumps(value)  # a SCIM string literal: JSON's quoting


def _service_accounts(registry: Registry) -> str:
    """What makes a User a service account: its ``userType`` (SCIMWARD_NHI_USER_TYPES; none: no User is)."""
    types = sorted(registry.user_types)
    return "(" + " or ".join(f"userType eq {_literal(t)}" for t in types) + ")" if types else '(id eq "")'


async def _filter_text(
    registry: Registry, shown: Shown, typed: str, kind: str, owner: str, expiring: int | None
) -> str:
    """The typed filter with the quick filters and, for service accounts, what makes a User one."""
    parts = [f"({typed})"] if typed else []
    if shown.rt is USER_TYPE:
        parts.append(_service_accounts(registry))
    if owner:
        owner_id = _literal(await registry.user_id(owner))
        parts.append(
            f"{ENTERPRISE_USER_SCHEMA}:manager.value eq {owner_id}"
            if shown.rt is USER_TYPE
            else f"owners[value eq {owner_id}]"
        )
    if kind and shown.rt is AGENT_TYPE:
        parts.append(f"{NHI_SCHEMA}:kind eq {_literal(kind)}")
    if expiring and shown.rt is not USER_TYPE:
        until = (utcnow() + timedelta(days=expiring)).replace(microsecond=0).isoformat() + "Z"
        parts.append(f"{NHI_SCHEMA}:expires lt {_literal(until)}")
    return " and ".join(parts)


def _expiring(given: str | None) -> int | None:
    return int(given) if given and given.isdigit() and int(given) in EXPIRING_DAYS else None


@requires("viewer")
async def nhis(request: Request) -> Response:
    console = console_of(request)
    params = request.query_params
    shown = next((s for s in SHOWN if s.key == params.get("show")), SHOWN[0])
    typed, cursor = params.get("filter", "").strip(), params.get("cursor", "")
    kind = params.get("kind", "") if params.get("kind", "") in NHI_KINDS else ""
    owner, expiring = params.get("owner", "").strip(), _expiring(params.get("expiring"))
    registry = registry_of(console)
    views: list[NhiView] = []
    total, counted, next_cursor, previous_cursor, error = 0, True, None, None, None
    try:
        if shown.rt is None:
            views = [
                v for v in await registry.owned_tokens() if not owner or owner.lower() in (o.lower() for o in v.owners)
            ]
            total = len(views)
        else:
            text = await _filter_text(registry, shown, typed, kind, owner, expiring)
            expr = parse_filter(text) if text else None
            result = await console.store.search(
                shown.rt, SearchQuery(filter=expr, count=PAGE, cursor=cursor, exact_total=False)
            )
            views = await registry.views_of([i.id for i in result.items])
            total, counted = result.total, result.counted
            next_cursor, previous_cursor = result.next_cursor, result.previous_cursor
    except ScimwardError as exc:
        error = notice_of(exc)
    findings = await open_findings_of(console.database, [v.id for v in views])
    query = {"show": shown.key, "filter": typed, "kind": kind, "owner": owner, "expiring": expiring or ""}
    return console.render(
        request,
        "nhis.html",
        title="Non-human identities",
        views=views,
        shown=shown,
        tabs=SHOWN,
        total=total,
        counted=counted,
        next_cursor=next_cursor,
        previous_cursor=previous_cursor,
        error=error,
        query=query,
        kinds=NHI_KINDS,
        expiring_days=EXPIRING_DAYS,
        findings=findings,
        filter=typed,
        last_rotated=last_rotated,
    )


async def owned_by(console: Console, user_id: str, limit: int = PAGE) -> list[NhiView]:
    """The Agents a person owns (an identity's page lists them; the service accounts they manage are a
    search of every User's document, so that page links to the NHI page's owner filter instead)."""
    registry = registry_of(console)
    result = await console.store.search(
        AGENT_TYPE, SearchQuery(filter=parse_filter(f"owners[value eq {_literal(user_id)}]"), count=limit)
    )
    return await registry.views_of([i.id for i in result.items])


def last_rotated(view: NhiView) -> str | None:
    """When any of its credentials was last rotated (or made, if never rotated): ISO text sorts as time."""
    moments = [
        str(c.get("lastRotated") or c.get("created"))
        for c in view.credentials
        if c.get("lastRotated") or c.get("created")
    ]
    return max(moments) if moments else None


async def _view(console: Console, nhi_id: str) -> NhiView:
    registry = registry_of(console)
    if nhi_id.startswith("token:"):
        found = [v for v in await registry.owned_tokens() if v.id == nhi_id]
    else:
        found = await registry.views_of([nhi_id])
    if not found:
        raise NotFound(f"No non-human identity {nhi_id}.")
    return found[0]


@requires("viewer")
async def nhi(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    view = await _view(console, request.path_params["id"])
    findings = (await open_findings_of(console.database, [view.id])).get(view.id, [])
    pending = [] if view.resource_type == "Token" else await console.approvals.changes("pending", view.id, 50)
    agent = view.resource_type == "Agent"
    return console.render(
        request,
        "nhi.html",
        title=view.name,
        view=view,
        findings=findings,
        pending=pending,
        last_rotated=last_rotated(view),
        can_attest=agent and session.allows("reviewer"),
        can_transfer=view.resource_type in ("Agent", "User", "Token") and session.allows("approver"),
        can_retire=view.resource_type in ("Agent", "User", "Token") and session.allows("admin"),
    )


async def _act(request: Request, action: str) -> Response:
    """Attest, transfer or retire the NHI the path names, through the register (and so the gate)."""
    console, session = console_of(request), session_of(request)
    nhi_id = request.path_params["id"]
    form = await request.form()
    back = f"/nhi/{quote(nhi_id)}"
    try:
        view = await _view(console, nhi_id)
        registry = registry_of(console)
        if action == "attest":
            await registry.attest(view.name, session.name)
            notice = f"{view.name} attested: still needed, as it is."
        elif action == "transfer":
            to = str(form.get("to", "")).strip()
            if not to:
                return _back(console, back, "Name the new owner (a userName).")
            await registry.transfer(view.name, to, session.name)
            notice = f"{view.name} now belongs to {to}."
        else:
            if form.get("confirm") != "yes":
                return _back(console, back, f"Tick the box to confirm retiring {view.name}.")
            await registry.retire(view.name, session.name)
            notice, back = f"{view.name} retired: every target deprovisions it.", "/nhi"
        held = [] if view.resource_type == "Token" else await console.approvals.changes("pending", view.id, 1)
        if held and action != "retire":
            notice += f" The gate holds the change for approval ({held[0].id})."
        await console.audit(
            "console_action",
            session.name,
            f"nhi:{view.name}",
            action=f"nhi_{action}",
            **({"to": str(form.get("to", ""))} if action == "transfer" else {}),
        )
    except ScimwardError as exc:
        notice = notice_of(exc)
    return _back(console, back, notice)


def _back(console: Console, path: str, notice: str) -> Response:
    return RedirectResponse(console.url(path) + "?" + urlencode({"notice": notice}), 303)


@requires("reviewer")
async def attest(request: Request) -> Response:
    return await _act(request, "attest")


@requires("approver")
async def transfer(request: Request) -> Response:
    return await _act(request, "transfer")


@requires("admin")
async def retire(request: Request) -> Response:
    return await _act(request, "retire")


routes = [
    Route("/nhi", nhis, methods=["GET"], name="nhis"),
    Route("/nhi/{id}", nhi, methods=["GET"], name="nhi"),
    Route("/nhi/{id}/attest", attest, methods=["POST"], name="nhi_attest"),
    Route("/nhi/{id}/transfer", transfer, methods=["POST"], name="nhi_transfer"),
    Route("/nhi/{id}/retire", retire, methods=["POST"], name="nhi_retire"),
]
