"""Changes and approvals: held changes decided one by one or in bulk, and each target's breaker.

Every decision goes through ``policy.Approvals`` (the same service as ``scimward changes approve``
and the admin API): the four-eyes rule is theirs, so a person can never approve their own change,
and an approval that completes a change moves its effective state and tells the targets.
"""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scimward.errors import ScimwardError
from scimward.store.governance import STATUSES, changes_page, pending_count
from scimward.store.identity import names_of
from scimward.web.auth import requires, session_of
from scimward.web.context import Console, console_of, short_id
from scimward.web.errors import notice_of

PAGE = 50
MAX_BULK = 500


def back(console: Console, path: str, notice: str) -> Response:
    return RedirectResponse(console.url(path) + "?" + urlencode({"notice": notice}), 303)


@requires("viewer")
async def changes(request: Request) -> Response:
    console = console_of(request)
    status = request.query_params.get("status", "pending")
    status = status if status in STATUSES or status == "all" else "pending"
    await console.approvals.expire()
    params = request.query_params
    found = await changes_page(
        console.database,
        None if status == "all" else status,
        before=params.get("before"),
        after=params.get("after"),
        limit=PAGE,
    )
    rows = found.rows
    pending = await pending_count(console.database)
    names = await names_of(console.database, [c.identity_id for c in rows if c.identity_id])
    breakers = [b for b in await console.approvals.breakers() if b["open"] or b["held"]]
    can_decide = session_of(request).allows("approver")
    return console.render(
        request,
        "changes.html",
        title="Changes",
        rows=rows,
        names=names,
        shown=status,
        statuses=("pending", *[s for s in STATUSES if s != "pending"], "all"),
        breakers=breakers,
        can_decide=can_decide,
        pending=pending,
        older=found.older,
        newer=found.newer,
    )


@requires("viewer")
async def change(request: Request) -> Response:
    console = console_of(request)
    row = await console.approvals.show(request.path_params["id"])
    names = await names_of(
        console.database, [row.identity_id, *row.members_added, *row.members_removed] if row.identity_id else []
    )
    return console.render(
        request,
        "change.html",
        title=f"Change {short_id(row.id)}",
        change=row,
        names=names,
        can_decide=session_of(request).allows("approver") and row.status == "pending",
    )


@requires("approver")
async def decide(request: Request) -> Response:
    """Approve or reject the changes the form names: each on its own, so one refusal stops no other."""
    console, session = console_of(request), session_of(request)
    form = await request.form()
    action = form.get("action")
    ids = [str(v) for v in form.getlist("id") if str(v).strip()][:MAX_BULK]
    note = str(form.get("note") or "").strip()[:1000] or None
    back_to = str(form.get("back") or "/changes")
    back_to = back_to if back_to.startswith("/") and not back_to.startswith("//") else "/changes"
    if action not in ("approve", "reject") or not ids:
        return back(console, back_to, "Choose one or more changes, then approve or reject.")
    decided, refused = [], []
    for change_id in ids:
        try:
            if action == "approve":
                outcome = (await console.approvals.approve([change_id], session.name, note))[0]
            else:
                outcome = (await console.approvals.reject([change_id], session.name, note))[0]
        except ScimwardError as exc:
            refused.append(notice_of(exc))
            continue
        decided.append(f"{short_id(outcome.change_id)}: {outcome.message}")
        await console.audit(
            "console_action",
            session.name,
            f"change:{outcome.change_id}",
            action=action,
            status=outcome.status,
            note=note,
        )
    return back(console, back_to, "; ".join([*decided, *refused]))


async def _breaker(request: Request, action: str) -> Response:
    console, session = console_of(request), session_of(request)
    name = request.path_params["name"]
    target = next((b for b in await console.approvals.breakers() if b["name"] == name), None)
    if target is None:
        return back(console, "/changes", f"No target named {name}.")
    try:
        if action == "release":
            count = await console.approvals.release(int(target["id"]), session.name)
            message = f"Breaker of {name} released: {count} held change(s) applied."
        else:
            count = await console.approvals.discard(int(target["id"]), session.name)
            message = f"Breaker of {name} discarded: {count} held change(s) rejected."
    except ScimwardError as exc:
        return back(console, "/changes", notice_of(exc))
    await console.audit("console_action", session.name, f"target:{name}", action=f"breaker_{action}", count=count)
    return back(console, "/changes", message)


@requires("approver")
async def release(request: Request) -> Response:
    return await _breaker(request, "release")


@requires("approver")
async def discard(request: Request) -> Response:
    return await _breaker(request, "discard")


routes = [
    Route("/changes", changes, methods=["GET"], name="changes"),
    Route("/changes/decide", decide, methods=["POST"], name="decide"),
    Route("/changes/{id}", change, methods=["GET"], name="change"),
    Route("/breakers/{name}/release", release, methods=["POST"], name="breaker_release"),
    Route("/breakers/{name}/discard", discard, methods=["POST"], name="breaker_discard"),
]
