"""Access reviews: each campaign, and a reviewer's inbox of its items with their context and recommendation.

Items are decided keep or revoke one by one or in bulk through ``governance.reviews.Reviews`` (the
same service as ``scimward review decide``): nobody decides an item about their own access, and a
revoke is remediated at once through the gate, with this console's gated store.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scimward.errors import ScimwardError
from scimward.governance.reviews import Reviews
from scimward.web.auth import requires, session_of
from scimward.web.context import console_of
from scimward.web.errors import notice_of

#: Items a page shows: read by number in SQL (``Reviews.page``), not every item of the campaign.
PAGE = 100

MAX_BULK = 1000


def reviews_of(request: Request) -> Reviews:
    console = console_of(request)
    return Reviews(console.database, console.store)


@requires("viewer")
async def campaigns(request: Request) -> Response:
    status = request.query_params.get("status", "open")
    status = status if status in ("open", "closed", "all") else "open"
    rows = await reviews_of(request).campaigns(None if status == "all" else status)
    return console_of(request).render(request, "reviews.html", title="Reviews", campaigns=rows, status=status)


@requires("viewer")
async def campaign(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    params = request.query_params
    mine = params.get("mine", "1") == "1"
    undecided = params.get("undecided", "1") == "1"
    after = int(params["after"]) if params.get("after", "").isdigit() else 0
    found, items, more = await reviews_of(request).page(
        request.path_params["name"],
        after=after,
        undecided=undecided,
        reviewer=session.name if mine else None,
        limit=PAGE,
    )
    return console.render(
        request,
        "review.html",
        title=f"Review {found.name}",
        campaign=found,
        items=items,
        all_items=found.items,
        mine=mine,
        undecided=undecided,
        after=after,
        next_after=items[-1].number if more and items else None,
        can_decide=session.allows("reviewer") and found.status == "open",
    )


@requires("reviewer")
async def decide(request: Request) -> Response:
    console, session = console_of(request), session_of(request)
    name = request.path_params["name"]
    form = await request.form()
    decision = str(form.get("decision", ""))
    note = str(form.get("note") or "").strip()[:1000] or None
    try:
        numbers = sorted({int(str(v)) for v in form.getlist("item")})[:MAX_BULK]
        decided = await reviews_of(request).decide(name, numbers, decision, session.name, note)
        notice = "; ".join(f"item {d.number}: {d.decision}" + (f" ({d.outcome})" if d.outcome else "") for d in decided)
        await console.audit(
            "console_action", session.name, f"review:{name}", action=f"review_{decision}", items=numbers, note=note
        )
    except ValueError:
        notice = "Item numbers are whole numbers."
    except ScimwardError as exc:
        notice = notice_of(exc)
    back = f"/reviews/{quote(name)}"
    return RedirectResponse(console.url(back) + "?" + urlencode({"notice": notice}), 303)


routes = [
    Route("/reviews", campaigns, methods=["GET"], name="reviews"),
    Route("/reviews/{name}", campaign, methods=["GET"], name="review"),
    Route("/reviews/{name}/decide", decide, methods=["POST"], name="review_decide"),
]
