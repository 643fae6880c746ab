"""A campaign as evidence: every item, its decision, decider, time and note, and the remediation's
outcome on each target (whether the target still holds a revoked membership, as it last acknowledged)."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from scimward.governance.reviews.campaigns import Reviews
from scimward.store.governance import reviews as rows
from scimward.store.governance.reviews import CampaignRow, ItemRow


def _time(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") + "Z" if value is not None else None


def campaign_json(campaign: CampaignRow) -> dict[str, Any]:
    return {
        "id": campaign.id,
        "name": campaign.name,
        "scope": {campaign.scope_kind: campaign.scope},
        "reviewer": campaign.reviewer,
        "default": campaign.default_decision,
        "status": campaign.status,
        "created": _time(campaign.created),
        "created_by": campaign.created_by,
        "due": _time(campaign.due),
        "closed": _time(campaign.closed),
        "closed_by": campaign.closed_by,
        "item_count": campaign.items,
        "counts": {
            "keep": campaign.counts.get("keep", 0),
            "revoke": campaign.counts.get("revoke", 0),
            "undecided": campaign.counts.get("undecided", 0),
        },
    }


def item_json(item: ItemRow) -> dict[str, Any]:
    return {
        "id": item.number,
        "kind": item.kind,
        "member": item.member_name,
        "member_id": item.member_id,
        "group": item.group_name,
        "group_id": item.group_id,
        "target": item.target_name,
        "reviewers": item.reviewers,
        "granted": _time(item.granted),
        "granted_by": item.granted_by,
        "granted_change": item.granted_change,
        "recommendation": item.recommendation,
        "reasons": item.reasons,
        "decision": item.decision,
        "decided_by": item.decided_by,
        "decided": _time(item.decided),
        "note": item.note,
        "defaulted": item.defaulted,
        "outcome": item.outcome,
        "outcome_detail": item.outcome_detail,
        "outcome_change": item.outcome_change,
        "context": item.context,
    }


async def report(reviews: Reviews, name: str) -> dict[str, Any]:
    campaign, items = await reviews.show(name)
    revoked_groups = sorted({i.group_id for i in items if i.decision == "revoke" and i.group_id})
    async with reviews.db.read() as conn:
        held: dict[tuple[str, str], set[int]] = {}
        for g, m, t in await rows.entitlements(conn, revoked_groups):
            held.setdefault((g, m), set()).add(t)
        names = await rows.target_names(conn)
    out = []
    for item in items:
        entry = item_json(item)
        entry.pop("context")
        if item.decision == "revoke" and item.group_id:
            still = sorted(names.get(t, str(t)) for t in held.get((item.group_id, item.member_id), set()))
            entry["targets"] = {"still_held_on": still}
        out.append(entry)
    return {"campaign": campaign_json(campaign), "items": out}


CSV_FIELDS = (
    "id",
    "kind",
    "member",
    "group",
    "target",
    "recommendation",
    "decision",
    "decided_by",
    "decided",
    "defaulted",
    "note",
    "outcome",
    "outcome_detail",
    "outcome_change",
    "still_held_on",
)


def report_csv(document: dict[str, Any]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for item in document["items"]:
        writer.writerow({**item, "still_held_on": " ".join((item.get("targets") or {}).get("still_held_on", []))})
    return buffer.getvalue()
