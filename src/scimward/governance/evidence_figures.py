"""The evidence figures of one moment: coverage, propagation risk and live findings per framework id.

``measure`` reads the estate once and computes what both the daily snapshot and the report show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from scimward.governance import catalogue
from scimward.governance.coverage import Coverage, Estate, read_estate
from scimward.governance.risk import Risk
from scimward.governance.risk import compute as compute_risk
from scimward.store.database import Database


@dataclass(frozen=True)
class Figures:
    taken: datetime
    coverage: Coverage
    risk: Risk
    #: framework id -> live findings of the kinds mapped to it (open, acknowledged, risk_accepted).
    findings: dict[str, dict[str, int]]

    def to_json(self, top: int = 10) -> dict[str, Any]:
        return {
            "taken": self.taken.isoformat(timespec="seconds") + "Z",
            "coverage": self.coverage.to_json(),
            "risk": self.risk.to_json(top),
            "findings": self.findings,
        }

    def snapshot(self) -> dict[str, Any]:
        """What a daily snapshot keeps: the figures without the contributors' list."""
        risk = self.risk.to_json(0)
        return {
            "coverage": self.coverage.to_json(),
            "risk": {k: v for k, v in risk.items() if k != "top"},
            "findings": self.findings,
        }


def findings_per_control(estate: Estate) -> dict[str, dict[str, int]]:
    """framework id -> status -> live findings; a kind outside the catalogue counts under ``uncatalogued``."""
    out: dict[str, dict[str, int]] = {control: {} for control in catalogue.controls()}
    for finding in estate.findings:
        described = catalogue.KINDS.get(finding.kind)
        for control in described.frameworks if described is not None else ("uncatalogued",):
            counts = out.setdefault(control, {})
            counts[finding.status] = counts.get(finding.status, 0) + 1
    return out


def figures_of(estate: Estate) -> Figures:
    return Figures(estate.now, estate.coverage(), compute_risk(estate), findings_per_control(estate))


async def measure(database: Database) -> tuple[Estate, Figures]:
    estate = await read_estate(database)
    return estate, figures_of(estate)
