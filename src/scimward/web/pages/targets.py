"""Targets: health, push latency, backlog, accounts, findings (drift), the breaker and the last reconcile;
one target's configuration, and a change of what it holds, previewed before it is applied.

A change of scope, groups, mapping or deprovisioning is planned by ``policy.plans`` (the plan
``scimward target set --dry-run`` prints: accounts to create, update and deprovision) and shown
before it is submitted; it is then applied through ``sync.target_admin.TargetAdmin.update``, the
same service as ``scimward target set``, so a plan past the breaker's threshold is held for a second
person's approval (a pending change of type Target) exactly as from the command line.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scimward.errors import ScimwardError
from scimward.policy.plans import PLANNED, ConfigChangeHeld, planned, would_hold
from scimward.scim.errors import InvalidValue
from scimward.store.provisioning import LinkStore, target_health
from scimward.sync.secrets import SecretBox
from scimward.sync.target_admin import TargetAdmin, merge_config
from scimward.sync.targets import DeprovisionMode
from scimward.web.auth import requires, session_of
from scimward.web.context import Console, console_of
from scimward.web.errors import notice_of

#: The form's field holding the configuration change a preview showed, carried to the apply.
CHANGES = "changes"


def admin_of(console: Console) -> TargetAdmin:
    return TargetAdmin(console.database, SecretBox())


@requires("viewer")
async def targets(request: Request) -> Response:
    console = console_of(request)
    async with asyncio.TaskGroup() as reads:
        health_read = reads.create_task(target_health(console.database))
        breakers_read = reads.create_task(console.approvals.breakers())
    health, links = health_read.result(), LinkStore(console.database)
    breakers = {row["name"]: row for row in breakers_read.result()}
    async with asyncio.TaskGroup() as reads:  # one read per target, at once rather than one after another
        latencies = {target.name: reads.create_task(links.latencies(target.id)) for target in health}
    latency = {name: percentiles(read.result()) for name, read in latencies.items()}
    return console.render(request, "targets.html", title="Targets", targets=health, breakers=breakers, latency=latency)


def percentiles(seconds: list[float]) -> tuple[float, float] | None:
    """The median and 95th percentile of push latencies (change to acknowledgement), if any."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


@requires("viewer")
async def target(request: Request) -> Response:
    console = console_of(request)
    name = request.path_params["name"]
    view = await admin_of(console).show(name)
    return _edit_page(request, view, view["config"])


def _edit_page(
    request: Request, view: dict[str, Any], config: dict[str, Any], error: str | None = None, status_code: int = 200
) -> Response:
    console, session = console_of(request), session_of(request)
    return console.render(
        request,
        "target.html",
        status_code,
        title=f"Target {view['name']}",
        target=view,
        config=config,
        modes=[m.value for m in DeprovisionMode],
        error=error,
        mapping_text=_mapping_text(config.get("mapping")),
        can_change=session.allows("admin"),
    )


def _mapping_text(mapping: Any) -> str:
    return "" if mapping is None else json.dumps(mapping, indent=2)


def changes_of(form: Any) -> dict[str, Any]:
    """The configuration keys the edit form sets, as a JSON merge patch (an empty filter: everyone)."""
    mapping_text = str(form.get("mapping") or "").strip()
    try:
        mapping = json.loads(mapping_text) if mapping_text else None
    except ValueError as exc:
        raise InvalidValue(f"the mapping is not JSON: {exc}") from None
    days = str(form.get("tombstone_days") or "30").strip()
    if not days.isdigit():
        raise InvalidValue("tombstone_days must be a whole number of days, 0 or more")
    return {
        "scope": str(form.get("scope") or "").strip() or None,
        "push_groups": form.get("push_groups") == "on",
        "group_scope": str(form.get("group_scope") or "").strip() or None,
        "mapping": mapping,
        "deprovision": str(form.get("deprovision") or DeprovisionMode.DEACTIVATE.value),
        "tombstone_days": int(days),
    }


@requires("admin")
async def preview(request: Request) -> Response:
    """What the edited configuration would do to the target's accounts, before anything changes."""
    console = console_of(request)
    name = request.path_params["name"]
    admin = admin_of(console)
    view = await admin.show(name)
    form = await request.form()
    try:
        changes = changes_of(form)
        config = merge_config((await admin.get(name)).config, changes)
        plan = await admin.plan(name, config)
    except ScimwardError as exc:
        return _edit_page(request, view, {**view["config"], **_shown(form)}, notice_of(exc), 400)
    before, after = planned(view["config"]), planned(config.to_json())
    return console.render(
        request,
        "target_preview.html",
        title=f"Preview: {name}",
        target=view,
        plan=plan,
        held=await would_hold(console.database, plan),
        before=before,
        after=after,
        differ=[k for k in PLANNED if before.get(k) != after.get(k)],
        changes=json.dumps(changes),
        changes_field=CHANGES,
    )


def _shown(form: Any) -> dict[str, Any]:
    """The form as sent, to show it again beside what was wrong with it."""
    return {
        "scope": form.get("scope") or None,
        "group_scope": form.get("group_scope") or None,
        "push_groups": form.get("push_groups") == "on",
        "deprovision": form.get("deprovision"),
        "tombstone_days": form.get("tombstone_days"),
    }


@requires("admin")
async def apply(request: Request) -> Response:
    """Apply the previewed change through the CLI's service: planned again, and held past the breaker."""
    console, session = console_of(request), session_of(request)
    name = request.path_params["name"]
    admin = admin_of(console)
    back = f"/targets/{quote(name)}"
    try:
        changes = json.loads(str((await request.form()).get(CHANGES) or "null"))
        if not isinstance(changes, dict):
            raise InvalidValue("preview the change first")
        config = merge_config((await admin.get(name)).config, changes)
        await admin.update(name, config=config, actor=session.name, source="console")
        notice = f"Target {name} changed."
        outcome: dict[str, Any] = {"status": "applied"}
    except ConfigChangeHeld as held:
        notice, outcome = notice_of(held), {"status": "held", "change": held.change_id}
    except ScimwardError as exc:
        notice, outcome = notice_of(exc), {}
    except ValueError:
        notice, outcome = "The change the preview carried is not JSON: preview it again.", {}
    if outcome:
        await console.audit(
            "console_action", session.name, f"target:{name}", action="target_config", keys=sorted(changes), **outcome
        )
    return RedirectResponse(console.url(back) + "?" + urlencode({"notice": notice}), 303)


routes = [
    Route("/targets", targets, methods=["GET"], name="targets"),
    Route("/targets/{name}", target, methods=["GET"], name="target"),
    Route("/targets/{name}/preview", preview, methods=["POST"], name="target_preview"),
    Route("/targets/{name}/apply", apply, methods=["POST"], name="target_apply"),
]
