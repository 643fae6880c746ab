"""Governance rows: changes and decisions, the gate's statements, findings and reconcile runs, the audit trail.

``changes`` and ``gate_rows`` are also public as modules: the gate (``scimward.policy``) runs their
statements inside a change's transaction; so are ``review_rows`` (the gate's read of revoked access)
and ``reviews`` (access-review campaigns, items and the reads their context needs, issue 15), and
``audit_records`` (the audit event of each thing recorded, appended in its transaction). ``listings``
holds what the console's pages read a page at a time (the overview, changes, findings, the trail). The audit
trail is read back with ``verify_trail``, ``export_trail`` and ``trail_head``; ``evidence`` holds the
bulk reads and daily snapshots of the evidence figures (``scimward.governance``, issue 16).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
    from scimward.store.governance import (
        audit,
        audit_records,
        changes,
        evidence,
        gate_rows,
        nhi_rows,
        review_rows,
        reviews,
    )
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
    from scimward.store.governance.listings import (
        AUDIT_KINDS,
        SEVERITIES,
        HeldMembership,
        Keyset,
        OpenFinding,
        Overview,
        audit_page,
        changes_page,
        effective_of,
        findings_page,
        membership_holds_of,
        open_findings_of,
        overview,
        pending_count,
    )
    from scimward.store.governance.sources import (
        DEFAULT_PRIORITY,
        SOURCE_KINDS,
        Account,
        Correlated,
        HubUser,
        SourceRepository,
        SourceRow,
        StoredRecord,
        accounts,
        hub_user,
        hub_users,
    )

__all__ = [
    "LIVE",
    "PUSH_KINDS",
    "STATUSES",
    "Change",
    "ChangeRow",
    "Decision",
    "Finding",
    "FindingStateError",
    "FindingStore",
    "Gate",
    "Observation",
    "Observed",
    "PolicyDenied",
    "ReconcileBusy",
    "RuleMatch",
    "Run",
    "RunStore",
    "UnknownFinding",
    "audit",
    "change_row",
    "changes",
    "gate_rows",
    "nhi_rows",
    "observe",
    "reopen_expired",
    "review_rows",
    "reviews",
]
# HR and IdP sources (issue 17)
__all__ += [
    "DEFAULT_PRIORITY",
    "SOURCE_KINDS",
    "Account",
    "Correlated",
    "HubUser",
    "SourceRepository",
    "SourceRow",
    "StoredRecord",
    "accounts",
    "hub_user",
    "hub_users",
]
# The audit trail read back, the evidence figures' rows (issue 16)
__all__ += [
    "FINDING_STATUSES",
    "TrailStatus",
    "audit_records",
    "evidence",
    "export_trail",
    "trail_head",
    "verify_trail",
]
# What the console's pages read, a page at a time (issue 18)
__all__ += [
    "AUDIT_KINDS",
    "SEVERITIES",
    "HeldMembership",
    "Keyset",
    "OpenFinding",
    "Overview",
    "audit_page",
    "changes_page",
    "effective_of",
    "findings_page",
    "membership_holds_of",
    "open_findings_of",
    "overview",
    "pending_count",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
