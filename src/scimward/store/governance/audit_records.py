"""What each audit event records: one builder per thing recorded, so every writer says it the same way.

The events are appended with ``store.governance.audit`` in the transaction of what they record (a change by the
write pipeline, a decision by the approvals, a push batch by its commit, ...); docs/evidence.md lists
the kinds and their payloads. Payloads name things by id and never hold a credential or a document:
the rows they record (a change's before and after, a push log row) hold the detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.store._direct import Tx
from scimward.store.governance import audit
from scimward.store.governance.changes import Change, Decision

UNKNOWN_ACTOR = "unknown"


@dataclass(frozen=True)
class Event:
    kind: str
    actor: str
    subject: str
    data: Mapping[str, Any] = field(default_factory=dict)
    at: datetime | None = None

    async def append(self, tx: Tx | AsyncConnection) -> audit.Appended:
        return await audit.append(
            tx, kind=self.kind, actor=self.actor, subject=self.subject, data=self.data, at=self.at
        )

    def fused_params(self) -> dict[str, Any]:
        """The values of ``store.governance.audit.fused_append`` for this event (its time is required there)."""
        assert self.at is not None
        return audit.fused_params(kind=self.kind, actor=self.actor, subject=self.subject, data=self.data, at=self.at)


def change(change: Change, decision: Decision, status: str) -> Event:
    """A change and the gate's decision on it: applied, pending (held) or denied."""
    data: dict[str, Any] = {
        "change": change.id,
        "op": change.op,
        "status": status,
        "decision": decision.action,
        "source": change.source,
        "changed": change.changed,
    }
    if change.members_added:
        data["members_added"] = len(change.members_added)
    if change.members_removed:
        data["members_removed"] = len(change.members_removed)
    if decision.matched:
        data["rules"] = [m.name for m in decision.matched if m.action == decision.action]
    if decision.held_by_breaker:
        data["held_by_breaker"] = decision.held_by_breaker
    return Event(
        "change",
        change.actor or change.source or UNKNOWN_ACTOR,
        f"{change.resource_type}:{change.identity_id or ''}",
        data,
        change.created,
    )


def approval(
    change_id: str, resource_type: str, identity_id: str | None, status: str, by: str, decision: str, note: str | None
) -> Event:
    """A person's decision on a held change: approve, reject, release or discard, and the status it left."""
    return Event(
        "approval",
        by,
        f"{resource_type}:{identity_id or ''}",
        {"change": change_id, "decision": decision, "status": status, "note": note},
    )


def expired(change_ids: Sequence[str]) -> Event:
    """Pending changes that passed their expiry (the hub decides: its actor is the hub)."""
    return Event(
        "approval", "scimward", "changes", {"decision": "expire", "status": "expired", "changes": list(change_ids)}
    )


def breaker(target_id: int, action: str, by: str, changes: int) -> Event:
    """A target's mass-change breaker closed, releasing or discarding what it held."""
    return Event("breaker", by, f"target:{target_id}", {"action": action, "changes": changes})


def config(subject: str, actor: str, data: Mapping[str, Any]) -> Event:
    """A configuration change: a policy applied, a target added, changed or removed."""
    return Event("config", actor, subject, data)


def token(kind: str, name: str, actor: str, data: Mapping[str, Any] | None = None) -> Event:
    """A token issued, revoked, or refused (``kind``: token_issued, token_revoked, token_refused,
    token_refused_summary)."""
    return Event(kind, actor, f"token:{name}", data or {})


def pushes(log: Sequence[Mapping[str, Any]]) -> Event:
    """A propagate batch's outcomes, one entry per push: [target, identity, action, outcome]."""
    return Event(
        "push",
        "propagate",
        "pushes",
        {"pushes": [[row["target_id"], row["identity_id"], row["action"], row["outcome"]] for row in log]},
    )


def reconcile_run(run_id: int, target_id: int, status: str, data: Mapping[str, Any]) -> Event:
    return Event("reconcile_run", "reconcile", f"target:{target_id}", {"run": run_id, "status": status, **data})


def finding_status(finding_id: int, status: str, by: str, data: Mapping[str, Any]) -> Event:
    return Event("finding_status", by, f"finding:{finding_id}", {"status": status, **data})
