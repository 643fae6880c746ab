"""The evidence report (issue 16, item 6): one self-contained HTML file to show an auditor, or JSON.

It holds automation coverage and propagation risk with their trend (the daily snapshots), the
findings per framework control with status and samples, the last reconcile per target, review
completion, breaker trips, non-human identities without owner or expiry, and the audit chain's
status. ``build`` gathers it as JSON; ``render_html`` turns that into one file whose charts are
inline SVG (no script, no external asset), from the Jinja2 template shipped in the package.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import jinja2

from scimward.governance import catalogue, charts, snapshots
from scimward.governance.coverage import Estate, on_schedule, read_estate, reconcile_every
from scimward.governance.evidence_figures import Figures, figures_of
from scimward.store.database import Database
from scimward.store.governance import TrailStatus, evidence, verify_trail

HISTORY_DAYS = 90
SAMPLES = 3
TRIPS_SINCE = timedelta(days=30)
NON_HUMAN = ("User", "Group")


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"


def controls_section(estate: Estate) -> list[dict[str, Any]]:
    """Each framework control with its catalogue kinds, live findings by status, and a few samples."""
    out = []
    for control in catalogue.controls():
        kinds = catalogue.kinds_for(control)
        live = [f for f in estate.findings if f.kind in kinds]
        statuses: dict[str, int] = {}
        for finding in live:
            statuses[finding.status] = statuses.get(finding.status, 0) + 1
        out.append(
            {
                "control": control,
                "kinds": kinds,
                "live": len(live),
                "statuses": statuses,
                "samples": [
                    {"kind": f.kind, "subject": f.subject, "status": f.status, "severity": f.severity}
                    for f in live[:SAMPLES]
                ],
            }
        )
    return out


def reconciles_section(estate: Estate) -> list[dict[str, Any]]:
    out = []
    for target in estate.targets:
        every = reconcile_every(target.config)
        out.append(
            {
                "target": target.name,
                "last_run": _iso(target.last_run),
                "last_status": target.last_status,
                "last_ok": _iso(target.last_ok),
                "every": None if every is None else str(every),
                "on_schedule": on_schedule(target, estate.now),
                "quarantined": target.quarantined,
            }
        )
    return out


def non_human_section(estate: Estate) -> dict[str, Any]:
    """Identities that are neither users nor groups (non-human identities, issue 14) without an owner."""
    others = [i for i in estate.identities if i.resource_type not in NON_HUMAN]
    unowned = [i for i in others if i.owner is None]
    return {
        "total": len(others),
        "without_owner": len(unowned),
        "samples": [{"id": i.id, "type": i.resource_type, "name": i.name} for i in unowned[: SAMPLES * 3]],
    }


def build(
    estate: Estate,
    figures: Figures,
    history: Sequence[tuple[date, dict[str, Any]]],
    trail: TrailStatus,
    trips: Sequence[tuple[str, str, datetime, str | None]],
    changes: dict[str, int],
) -> dict[str, Any]:
    """The report as JSON (``scimward report --format json``); the HTML shows the same."""
    coverage = figures.coverage
    privileged = coverage.privileged_reviewed
    return {
        "generated": _iso(figures.taken),
        "coverage": coverage.to_json(),
        "risk": figures.risk.to_json(),
        "trend": [
            {
                "day": day.isoformat(),
                "coverage": kept.get("coverage", {}).get("overall"),
                "risk_total": kept.get("risk", {}).get("total"),
                "risk_ungoverned": kept.get("risk", {}).get("ungoverned"),
            }
            for day, kept in history
        ],
        "controls": controls_section(estate),
        "catalogue": [k.to_json() for k in catalogue.KINDS.values()],
        "reconciles": reconciles_section(estate),
        "reviews": {
            "privileged_groups": privileged.whole,
            "reviewed_within_cadence": privileged.part,
            "share": privileged.to_json()["share"],
        },
        "breaker_trips": [{"target": t, "status": s, "opened": _iso(at), "detail": d} for t, s, at, d in trips],
        "changes_last_30_days": changes,
        "non_human": non_human_section(estate),
        "audit": trail.to_json(),
    }


async def gather(database: Database, *, snapshot: bool = True) -> dict[str, Any]:
    """Read the estate, take today's snapshot (``snapshot``), verify the audit trail, and build the report."""
    estate = await read_estate(database)
    figures = figures_of(estate)
    if snapshot:
        kept = figures.snapshot()
        async with database.write() as conn:
            await evidence.save_snapshot(conn, figures.taken.date(), figures.taken, kept)
    history = await snapshots.history(database, figures.taken.date() - timedelta(days=HISTORY_DAYS))
    trail = await verify_trail(database)
    async with database.read() as conn:
        trips = await evidence.breaker_trips(conn, estate.now - TRIPS_SINCE)
        changes = await evidence.change_counts(conn, estate.now - TRIPS_SINCE)
    return build(estate, figures, history, trail, trips, changes)


_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("scimward.governance", "templates"),
    autoescape=jinja2.select_autoescape(["html", "j2"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f} %"


_ENV.filters["percent"] = _percent


def render_html(report: dict[str, Any]) -> str:
    trend = report["trend"]
    days = [t["day"] for t in trend]
    coverage_bars = [
        (name.replace("_", " "), share["share"] or 0.0, None)
        for name, share in report["coverage"].items()
        if isinstance(share, dict)
    ]
    targets = report["risk"]["per_target"]
    svgs = {
        "coverage_trend": charts.line_chart(
            days, [("coverage (mean of the shares)", [t["coverage"] for t in trend])], percent=True
        ),
        "risk_trend": charts.line_chart(
            days, [("total", [t["risk_total"] for t in trend]), ("ungoverned", [t["risk_ungoverned"] for t in trend])]
        ),
        "coverage_bars": charts.bar_chart(coverage_bars, percent=True),
        "risk_per_target": charts.bar_chart([(t["name"], float(t["total"]), float(t["ungoverned"])) for t in targets]),
        "controls": charts.bar_chart([(c["control"], float(c["live"]), None) for c in report["controls"]]),
    }
    return _ENV.get_template("report.html.j2").render(report=report, svg=svgs)
