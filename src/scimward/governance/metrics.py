"""Prometheus gauges of the evidence figures (served at /metrics with the others).

They show the latest snapshot (``governance.snapshots``): a scrape reads one row, never the estate.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Gauge

COVERAGE = Gauge("scimward_automation_coverage_ratio", "Automation coverage, by share (docs/evidence.md).", ["share"])
RISK = Gauge(
    "scimward_propagation_risk", "Propagation risk: the weighted blast radius, total and ungoverned.", ["part"]
)
FINDINGS = Gauge(
    "scimward_findings_live", "Live findings mapped to a framework control, by status.", ["control", "status"]
)


def publish(figures: dict[str, Any]) -> None:
    """Set the gauges from a snapshot's figures (``Figures.snapshot()``)."""
    for name, share in figures.get("coverage", {}).items():
        value = share.get("share") if isinstance(share, dict) else share
        if value is not None:
            COVERAGE.labels(name).set(float(value))
    risk = figures.get("risk", {})
    for part in ("total", "ungoverned", "orphaned_accounts"):
        if part in risk:
            RISK.labels(part).set(float(risk[part]))
    FINDINGS.clear()
    for control, statuses in figures.get("findings", {}).items():
        for status, count in statuses.items():
            FINDINGS.labels(control, status).set(float(count))
