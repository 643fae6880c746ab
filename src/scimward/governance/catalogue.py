"""The findings catalogue: every kind of finding the hub opens, with its severity and framework ids.

A finding's *kind* is its identity in code, docs and reports. Each kind here names the controls it
is evidence for, in two frameworks:

- OWASP Non-Human Identities Top 10 (2025), as ``owasp-nhi:NHI1`` .. ``owasp-nhi:NHI10``;
- NIST Cybersecurity Framework 2.0 subcategories, as ``csf:PR.AA-05`` and the like.

The subcategories used:

=========  =====================================================================================
PR.AA-01   identities and credentials of users, services and hardware are managed
PR.AA-05   access permissions are defined, managed, enforced and reviewed (least privilege)
DE.CM-03   personnel activity and technology usage are monitored for adverse events
DE.CM-09   computing hardware, software and their data are monitored for adverse events
DE.AE-02   potentially adverse events are analysed
GV.RR-04   cybersecurity is included in human resources practices (joiners, movers, leavers)
ID.AM-02   inventories of software, services and systems are maintained
=========  =====================================================================================

A kind that is not here cannot be opened by ``observation`` and fails the catalogue's test, so the
catalogue stays complete: add a kind here first, then open it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from scimward.errors import ScimwardError
from scimward.store.governance import Observation

SEVERITIES = ("critical", "high", "medium", "low")
FRAMEWORKS = ("owasp-nhi", "csf")


@dataclass(frozen=True)
class FindingKind:
    kind: str
    title: str
    severity: str
    #: Framework ids, ``owasp-nhi:NHI1`` or ``csf:PR.AA-05``.
    frameworks: tuple[str, ...]
    #: Which part of the hub opens it: reconcile, propagate, gate, groups, reviews, nhi, sources.
    area: str
    description: str

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "title": self.title,
            "severity": self.severity,
            "frameworks": list(self.frameworks),
            "area": self.area,
            "description": self.description,
        }


def _kinds(*kinds: FindingKind) -> Mapping[str, FindingKind]:
    return {k.kind: k for k in kinds}


KINDS: Mapping[str, FindingKind] = _kinds(
    # Reconcile: a target read back differs from what it should hold.
    FindingKind(
        "missing_account",
        "Account missing in the application",
        "medium",
        ("csf:PR.AA-01",),
        "reconcile",
        "An identity in the target's scope has no account there: the person cannot work, or a push was lost.",
    ),
    FindingKind(
        "orphaned_account",
        "Account nobody in the hub owns",
        "high",
        ("csf:PR.AA-01", "csf:DE.CM-03"),
        "reconcile",
        "The application holds an account that no hub identity is linked to: a leaver's account "
        "left behind, or one created outside the lifecycle.",
    ),
    FindingKind(
        "active_should_be_inactive",
        "Active in the application, inactive in the hub",
        "critical",
        ("csf:PR.AA-01", "csf:GV.RR-04"),
        "reconcile",
        "Late deprovisioning: the hub's effective state says inactive or gone, the application "
        "still lets the account in.",
    ),
    FindingKind(
        "attribute_drift",
        "Attribute differs from its desired value",
        "medium",
        ("csf:PR.AA-01", "csf:DE.CM-09"),
        "reconcile",
        "An attribute the target's mapping owns differs from the desired state.",
    ),
    FindingKind(
        "extra_membership",
        "Entitlement the hub did not grant",
        "high",
        ("csf:PR.AA-05",),
        "reconcile",
        "The account is a member of a pushed group that the hub's effective state does not give it.",
    ),
    FindingKind(
        "missing_membership",
        "Entitlement granted but not held",
        "low",
        ("csf:PR.AA-05",),
        "reconcile",
        "The hub grants a pushed group membership the application does not hold.",
    ),
    FindingKind(
        "changed_in_app",
        "Changed in the application since the last push",
        "medium",
        ("csf:DE.CM-09", "csf:PR.AA-05"),
        "reconcile",
        "The application's value differs from what the hub last pushed: someone changed it there.",
    ),
    # Propagation and the gate.
    FindingKind(
        "push_poisoned",
        "Push parked after repeated failures",
        "high",
        ("csf:PR.AA-01", "csf:DE.CM-09"),
        "propagate",
        "The target refused one identity's push too often; it waits while the rest go on.",
    ),
    FindingKind(
        "breaker_open",
        "Mass-change breaker open",
        "critical",
        ("csf:DE.AE-02", "csf:PR.AA-05"),
        "gate",
        "More changes than the policy's window allows: the target receives nothing until a person "
        "releases or discards the held batch.",
    ),
    FindingKind(
        "change_denied",
        "Change denied by policy",
        "medium",
        ("csf:PR.AA-05", "csf:DE.AE-02"),
        "gate",
        "A source asked for a change a policy rule forbids.",
    ),
    FindingKind(
        "change_pending",
        "Change waiting for approval",
        "low",
        ("csf:PR.AA-05",),
        "gate",
        "A held change has not been approved or rejected yet.",
    ),
    # Group hygiene and access reviews (issue 15; governance/hygiene.py).
    FindingKind(
        "group_without_owner",
        "Group without an owner",
        "medium",
        ("csf:PR.AA-05",),
        "groups",
        "Nobody answers for the group's membership: nobody reviews it, and nobody notices when it "
        "grows beyond its purpose.",
    ),
    FindingKind(
        "privileged_group_without_cadence",
        "Privileged group without a review cadence",
        "high",
        ("csf:PR.AA-05",),
        "groups",
        "A group that grants privileged access is never scheduled for an access review.",
    ),
    FindingKind(
        "catch_all_group",
        "Catch-all group",
        "medium",
        ("csf:PR.AA-05",),
        "groups",
        "The group holds nearly every active user: SCIM re-grants whatever it carries in every "
        "application, so it grants broad access to everyone.",
    ),
    FindingKind(
        "privileged_member_inactive",
        "Inactive identity in a privileged group",
        "high",
        ("csf:PR.AA-05",),
        "groups",
        "An identity that is inactive still holds a privileged group's membership.",
    ),
    FindingKind(
        "privileged_nhi_inactive",
        "Inactive non-human identity in a privileged group",
        "high",
        ("csf:PR.AA-05", "owasp-nhi:NHI5"),
        "groups",
        "A non-human identity that is inactive still holds privileged access: overprivileged NHI.",
    ),
    FindingKind(
        "membership_expired",
        "Membership past its expiry",
        "medium",
        ("csf:PR.AA-05",),
        "groups",
        "A time-bound membership is still effective after its expiry (its removal was held or failed).",
    ),
    FindingKind(
        "nhi_membership_expired",
        "Non-human identity's membership past its expiry",
        "medium",
        ("csf:PR.AA-05", "owasp-nhi:NHI5"),
        "groups",
        "A non-human identity keeps a time-bound membership past its expiry.",
    ),
    FindingKind(
        "review_overdue",
        "Access review overdue",
        "medium",
        ("csf:PR.AA-05",),
        "reviews",
        "The group's review cadence has passed since its last campaign (or since it was made).",
    ),
    # Sources: the three-way check of HR, the IdP (the hub) and each target (governance/sources/check.py).
    FindingKind(
        "terminated_but_active",
        "Terminated in HR, active in the hub",
        "critical",
        ("csf:PR.AA-01", "csf:GV.RR-04"),
        "sources",
        "HR terminated the person and the grace has passed, yet the hub's effective state is active: "
        "the termination is held, or was not applied.",
    ),
    FindingKind(
        "terminated_but_active_in_app",
        "Terminated in HR, active in an application",
        "critical",
        ("csf:PR.AA-01", "csf:GV.RR-04"),
        "sources",
        "HR terminated the person and the grace has passed, yet an application still lets the account in.",
    ),
    FindingKind(
        "no_hr_record",
        "Active account with no HR record",
        "high",
        ("csf:PR.AA-01", "csf:GV.RR-04", "owasp-nhi:NHI1"),
        "sources",
        "An application holds an active account whose identity no HR source knows: a contractor "
        "without a sponsor, an orphan, or a non-human identity without an owning record.",
    ),
    FindingKind(
        "hr_mismatch",
        "HR and the hub disagree",
        "medium",
        ("csf:PR.AA-01",),
        "sources",
        "The manager or department HR states differs from the identity's effective state.",
    ),
    FindingKind(
        "termination_approaching",
        "Termination approaching",
        "low",
        ("csf:GV.RR-04",),
        "sources",
        "HR has a termination date within the next two weeks; the accounts go when its grace ends.",
    ),
    FindingKind(
        "hr_record_unmatched",
        "HR record matches no identity",
        "medium",
        ("csf:PR.AA-01", "csf:GV.RR-04"),
        "sources",
        "A current HR record correlates with no hub User by any key: the IdP has not provisioned "
        "the person, or the keys disagree.",
    ),
    FindingKind(
        "hr_record_ambiguous",
        "HR record matches more than one identity",
        "high",
        ("csf:PR.AA-01",),
        "sources",
        "An HR record's correlation key finds two or more hub Users; scimward does not guess which.",
    ),
    # Non-human identities (issue 14; governance/nhi).
    FindingKind(
        "nhi_no_owner",
        "Non-human identity without an owner",
        "high",
        ("owasp-nhi:NHI1", "csf:PR.AA-01", "csf:PR.AA-05"),
        "nhi",
        "Nobody is accountable for the NHI: nobody rotates it, reviews it or retires it when its purpose ends.",
    ),
    FindingKind(
        "nhi_owner_gone",
        "Non-human identity whose owners left",
        "critical",
        ("owasp-nhi:NHI1", "csf:PR.AA-01", "csf:GV.RR-04"),
        "nhi",
        "Every owner of the NHI is inactive or deleted and the NHI is still active: improper "
        "offboarding. The leaver policy (owner_leaves, grace) decides what happens next.",
    ),
    FindingKind(
        "nhi_reassignment_pending",
        "Ownership of a leaver's NHI waiting for acceptance",
        "high",
        ("owasp-nhi:NHI1", "csf:PR.AA-01"),
        "nhi",
        "The owner left; their manager is asked to take the NHI over (scimward nhi transfer). "
        "Unaccepted at the end of the grace period, it is disabled.",
    ),
    FindingKind(
        "nhi_no_expiry",
        "Non-human identity without an expiry",
        "medium",
        ("owasp-nhi:NHI7", "csf:PR.AA-01"),
        "nhi",
        "The NHI or its credential never expires: a long-lived secret.",
    ),
    FindingKind(
        "nhi_beyond_max_lifetime",
        "Non-human identity beyond its maximum lifetime",
        "high",
        ("owasp-nhi:NHI7", "csf:PR.AA-01"),
        "nhi",
        "Its expiry is later than the policy's maximum lifetime for its kind allows.",
    ),
    FindingKind(
        "nhi_rotation_overdue",
        "Credential rotation overdue",
        "high",
        ("owasp-nhi:NHI7", "csf:PR.AA-01"),
        "nhi",
        "A credential of the NHI has not been rotated within the policy's rotation period.",
    ),
    FindingKind(
        "nhi_privileged",
        "Non-human identity in a privileged group",
        "high",
        ("owasp-nhi:NHI5", "csf:PR.AA-05"),
        "nhi",
        "An active NHI holds a privileged group's membership: overprivileged non-human identity.",
    ),
    FindingKind(
        "nhi_environments_mixed",
        "Non-human identity used across environments",
        "high",
        ("owasp-nhi:NHI8", "csf:PR.AA-05"),
        "nhi",
        "The same NHI has accounts in targets of different environments (e.g. prod and staging): "
        "one leaked credential reaches both.",
    ),
    FindingKind(
        "nhi_attestation_due",
        "Non-human identity due for attestation by its new owner",
        "medium",
        ("owasp-nhi:NHI1", "csf:PR.AA-05", "csf:GV.RR-04"),
        "nhi",
        "Its owners changed, or an owner changed department or manager (a mover): the person who now "
        "answers for it has not attested it yet (scimward nhi attest).",
    ),
    FindingKind(
        "nhi_review_overdue",
        "Non-human identity review overdue",
        "medium",
        ("csf:PR.AA-05", "csf:PR.AA-01"),
        "nhi",
        "Its review cadence has passed since it was last attested.",
    ),
    FindingKind(
        "nhi_application_stale",
        "Agentic application not accessed for long",
        "medium",
        ("owasp-nhi:NHI1", "csf:PR.AA-05"),
        "nhi",
        "An active AgenticApplication whose lastAccessed is older than the policy's stale_after: "
        "access nobody uses, to be retired or reviewed.",
    ),
    FindingKind(
        "nhi_too_many_applications",
        "Non-human identity in more applications than its purpose allows",
        "medium",
        ("owasp-nhi:NHI9", "csf:PR.AA-05"),
        "nhi",
        "The NHI has accounts in more targets than its maxApplications: NHI reuse.",
    ),
)


class UnknownKind(ScimwardError, ValueError):
    """A finding kind the catalogue does not describe."""


def kind(name: str) -> FindingKind:
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKind(f"no finding kind {name!r} in the catalogue") from None


def observation(name: str, subject: str, **fields: Any) -> Observation:
    """An observation of a catalogued kind, with the catalogue's severity unless ``severity`` is given."""
    described = kind(name)
    fields.setdefault("severity", described.severity)
    return Observation(kind=described.kind, subject=subject, **fields)


def parse_framework(spec: str) -> str:
    """``owasp-nhi:NHI1``, ``csf:PR.AA-05`` (case-insensitive) in the catalogue's spelling."""
    framework, sep, control = spec.partition(":")
    framework = framework.strip().lower()
    if not sep or framework not in FRAMEWORKS or not control.strip():
        raise UnknownKind(f"framework ids look like owasp-nhi:NHI1 or csf:PR.AA-05, not {spec!r}")
    return f"{framework}:{control.strip().upper()}"


def kinds_for(framework_id: str) -> list[str]:
    """The kinds that are evidence for one control (``csf:PR.AA-05``) or a whole framework (``csf``)."""
    wanted = framework_id if ":" in framework_id else None
    prefix = framework_id.rstrip(":") + ":"
    return [
        k.kind for k in KINDS.values() if any(f == wanted if wanted else f.startswith(prefix) for f in k.frameworks)
    ]


def controls(kinds: Iterable[str] | None = None) -> list[str]:
    """Every framework id the catalogue (or these kinds) maps to, sorted."""
    chosen = KINDS.values() if kinds is None else [kind(k) for k in kinds]
    return sorted({f for k in chosen for f in k.frameworks})
