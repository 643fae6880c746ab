"""The joiner rules of non-human identities (policy ``nhi.require``): an Agent created, changed or
re-enabled without an owner, a purpose or an expiry within its kind's maximum lifetime is denied or
held (``nhi.missing``). Disabling or deleting one is never stopped by them. Pure: no I/O, so the
gate's quick path applies them too."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from scimward.policy.nhi_settings import NhiSettings
from scimward.scim.agents import NHI_SCHEMA
from scimward.store.governance import Change, Decision, RuleMatch
from scimward.store.timeutil import parse_time

RULE = "nhi-requirements"
_CHECKED_OPS = ("create", "update", "reactivate")


def missing(settings: NhiSettings, doc: dict[str, Any], now: datetime) -> list[str]:
    """What the document lacks of what the policy requires, in words."""
    extension = doc.get(NHI_SCHEMA) if isinstance(doc.get(NHI_SCHEMA), dict) else {}
    assert isinstance(extension, dict)
    problems: list[str] = []
    if "owner" in settings.require and not any(isinstance(o, dict) and o.get("value") for o in doc.get("owners") or ()):
        problems.append("an owner")
    if "purpose" in settings.require and not str(extension.get("purpose") or "").strip():
        problems.append("a purpose")
    if "expiry" in settings.require:
        expires = parse_time(extension.get("expires"))
        kind = str(extension.get("kind") or "")
        limit = settings.max_lifetime.get(kind)
        if expires is None:
            problems.append("an expiry")
        elif limit is not None and expires > now + limit:
            problems.append(f"an expiry within the {kind} maximum lifetime of {limit.days} days")
    return problems


def apply(settings: NhiSettings, change: Change, decision: Decision) -> Decision:
    """The decision with the NHI requirements taken into account."""
    if (
        not settings.require
        or decision.action == "deny"
        or change.resource_type != "Agent"
        or change.op not in _CHECKED_OPS
        or change.after is None
        or change.after.get("active") is False
    ):
        return decision
    problems = missing(settings, change.after, change.created)
    if not problems:
        return decision
    match = RuleMatch(RULE, settings.missing, "a non-human identity needs " + ", ".join(problems))  # type: ignore[arg-type]
    if settings.missing == "deny":
        return Decision("deny", [match], blast_radius=decision.blast_radius)
    if decision.action == "hold":
        decision.matched.append(match)
        return decision
    return Decision("hold", [*decision.matched, match], 1, blast_radius=decision.blast_radius)
