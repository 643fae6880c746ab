"""Targets as the hub configures them: scope, group push, attribute mapping, deprovisioning.

``TargetConfig`` is stored as JSON in ``targets.config``; it is validated when a target is added
or changed, so a worker never meets a scope filter that does not parse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any

from scimward import durations
from scimward.scim.errors import InvalidValue, ScimError
from scimward.scim.filter import parse_filter
from scimward.scim.resource_types import AGENT_TYPE, GROUP_TYPE, USER_TYPE
from scimward.store.filter_sql import FilterCompiler
from scimward.store.provisioning import TargetRow

#: Transient failures in a row after which a target is quarantined; a target may set ``quarantine_after``.
QUARANTINE_AFTER = 20


class DeprovisionMode(StrEnum):
    DEACTIVATE = "deactivate"  # PATCH active=false (the default, as Entra and Okta do)
    DELETE = "delete"  # DELETE the account
    TOMBSTONE = "tombstone"  # deactivate now, delete after ``tombstone_days``


@dataclass(frozen=True)
class AttributeRule:
    """One attribute a target receives: ``target`` path, from a hub ``source`` path or a ``constant``."""

    target: str
    source: str | None = None
    constant: Any = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"target": self.target}
        if self.source is not None:
            out["source"] = self.source
        else:
            out["constant"] = self.constant
        return out


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclass(frozen=True)
class TargetConfig:
    #: SCIM filter over Users choosing who the target receives; None: every user.
    scope: str | None = None
    push_groups: bool = True
    #: SCIM filter over Groups; None: every group (when ``push_groups``).
    group_scope: str | None = None
    #: User attribute mapping; None: the default mapping (``sync.mapping.DEFAULT_USER_RULES``).
    mapping: tuple[AttributeRule, ...] | None = None
    deprovision: DeprovisionMode = DeprovisionMode.DEACTIVATE
    tombstone_days: int = 30
    #: Where the target runs (prod, staging...): an NHI with accounts in targets of different
    #: environments is a finding (OWASP NHI8).
    environment: str | None = None
    #: Whether the target receives non-human identities (Agents), within ``nhi_scope``.
    push_nhis: bool = False
    #: SCIM filter over Agents choosing the NHIs the target receives; None: every one.
    nhi_scope: str | None = None
    #: The ``userType`` an NHI has on a target that does not serve /Agents (it receives a User).
    nhi_user_type: str = "ServiceAccount"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        """Refuse now what would make every propagate round of this target fail later (issue 11, item 4):
        a scope is compiled to SQL for its resource type on both dialects, as propagate will."""
        for name, text, rt in (
            ("scope", self.scope, USER_TYPE),
            ("group scope", self.group_scope, GROUP_TYPE),
            ("NHI scope", self.nhi_scope, AGENT_TYPE),
        ):
            if text:
                try:
                    expr = parse_filter(text)
                    for dialect in ("sqlite", "postgresql"):
                        FilterCompiler(rt, dialect).compile(expr)
                except ScimError as exc:
                    raise InvalidValue(f"the {name} is not a valid SCIM filter: {exc.detail}") from exc
        if self.tombstone_days < 0:
            raise InvalidValue("tombstone days must be 0 or more")
        given = self.extra.get("quarantine_after", QUARANTINE_AFTER)
        if not _positive_int(given):
            raise InvalidValue(f"quarantine_after must be a whole number of failures, 1 or more, not {given!r}")
        for rule in self.mapping or ():
            if not rule.target:
                raise InvalidValue("every mapping rule needs a target attribute")

    @property
    def quarantine_after(self) -> int:
        """Transient failures in a row that quarantine the target (a setting stored before ``validate``
        checked it, and unusable, counts as the default)."""
        given = self.extra.get("quarantine_after", QUARANTINE_AFTER)
        return given if _positive_int(given) else QUARANTINE_AFTER

    def to_json(self) -> dict[str, Any]:
        # The NHI settings only when set: configurations stored before them read back unchanged.
        nhi = {
            name: value
            for name, value, default in (
                ("environment", self.environment, None),
                ("push_nhis", self.push_nhis, False),
                ("nhi_scope", self.nhi_scope, None),
                ("nhi_user_type", self.nhi_user_type, "ServiceAccount"),
            )
            if value != default
        }
        return {
            "scope": self.scope,
            "push_groups": self.push_groups,
            "group_scope": self.group_scope,
            "mapping": None if self.mapping is None else [rule.to_json() for rule in self.mapping],
            "deprovision": self.deprovision.value,
            "tombstone_days": self.tombstone_days,
            **nhi,
            **self.extra,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TargetConfig:
        known = {
            "scope",
            "push_groups",
            "group_scope",
            "mapping",
            "deprovision",
            "tombstone_days",
            "environment",
            "push_nhis",
            "nhi_scope",
            "nhi_user_type",
        }
        mapping = data.get("mapping")
        return cls(
            scope=data.get("scope") or None,
            push_groups=bool(data.get("push_groups", True)),
            group_scope=data.get("group_scope") or None,
            mapping=None
            if mapping is None
            else tuple(AttributeRule(r["target"], r.get("source"), r.get("constant")) for r in mapping),
            deprovision=DeprovisionMode(data.get("deprovision", "deactivate")),
            tombstone_days=int(data.get("tombstone_days", 30)),
            environment=data.get("environment") or None,
            push_nhis=bool(data.get("push_nhis", False)),
            nhi_scope=data.get("nhi_scope") or None,
            nhi_user_type=str(data.get("nhi_user_type") or "ServiceAccount"),
            extra={k: v for k, v in data.items() if k not in known},
        )


@dataclass(frozen=True)
class Target:
    """A target with its configuration parsed (the credential stays encrypted in ``row``)."""

    row: TargetRow
    config: TargetConfig

    @property
    def id(self) -> int:
        return self.row.id

    @property
    def name(self) -> str:
        return self.row.name

    @classmethod
    def from_row(cls, row: TargetRow) -> Target:
        return cls(row, TargetConfig.from_json(row.config))


def parse_every(value: Any) -> timedelta | None:
    """A reconcile interval: ``"24h"``, ``"30m"``, ``"7d"``, ``"90s"`` or seconds; ``0``, ``"off"``, false: never."""
    try:
        return durations.parse_every(value, "reconcile_every", timedelta(days=1))
    except durations.DurationError as exc:
        raise InvalidValue(str(exc)) from None


@dataclass(frozen=True)
class ReconcilePolicy:
    """A target's reconcile settings, from ``TargetConfig.extra``."""

    #: Repair on every run, not only when asked (``reconcile_repair``).
    repair: bool = False
    #: "report" (the default) or "deactivate" orphaned accounts; they are never deleted.
    orphans: str = "report"
    #: How often the schedule reconciles the target; None: never (``reconcile_every``).
    every: timedelta | None = timedelta(days=1)

    @classmethod
    def from_config(cls, extra: dict[str, Any]) -> ReconcilePolicy:
        repair = extra.get("reconcile_repair", False)
        if not isinstance(repair, bool):
            raise InvalidValue("reconcile_repair must be true or false")
        orphans = extra.get("orphans", "report")
        if orphans not in ("report", "deactivate"):
            raise InvalidValue(
                f"orphans must be 'report' or 'deactivate' (orphaned accounts are never deleted), not {orphans!r}"
            )
        return cls(repair, orphans, parse_every(extra.get("reconcile_every")))
