"""Governance rows: changes and decisions, the gate's statements, findings and reconcile runs, the audit trail.

``changes``, ``gate_rows`` and ``audit_records`` are also public as modules: the gate
(``scimward.policy``) runs their statements, and appends their audit events, inside a change's
transaction. The audit trail is read back with ``verify_trail``, ``export_trail`` and ``trail_head``;
``evidence`` holds the bulk reads and daily snapshots of the evidence figures (``scimward.governance``).
"""

from scimward.store.governance import audit, audit_records, changes, evidence, gate_rows
from scimward.store.governance.audit_trail import TrailStatus, export_trail, trail_head, verify_trail
from scimward.store.governance.changes import (
    STATUSES,
    Change,
    ChangeRow,
    Decision,
    Gate,
    PolicyDenied,
    RuleMatch,
    change_row,
)
from scimward.store.governance.findings import (
    LIVE,
    PUSH_KINDS,
    Finding,
    FindingStateError,
    FindingStore,
    NewFinding,
    Observation,
    Observed,
    ReconcileBusy,
    Run,
    RunStore,
    UnknownFinding,
    observe,
    reopen_expired,
)
from scimward.store.governance.findings import (
    STATUSES as FINDING_STATUSES,
)

__all__ = ["FINDING_STATUSES", "LIVE", "PUSH_KINDS", "STATUSES", "Change", "ChangeRow", "Decision", "Finding",
           "FindingStateError", "FindingStore", "Gate", "NewFinding", "Observation", "Observed", "PolicyDenied",
           "ReconcileBusy", "RuleMatch", "Run", "RunStore", "TrailStatus", "UnknownFinding", "audit",
           "audit_records", "change_row", "changes", "evidence", "export_trail", "gate_rows", "observe",
           "reopen_expired", "trail_head", "verify_trail"]
