"""The ``nhi:`` section of the policy file: what every non-human identity must have, and what happens
to those whose owners leave (docs/non-human-identities.md).

```yaml
nhi:
  require: [owner, purpose, expiry]   # what an NHI must have (default: nothing)
  missing: deny                       # deny | hold: an NHI without them (default: hold)
  max_lifetime:                       # the latest expiry allowed, from now, per kind
    api_key: 90d
    token: 30d
  owner_leaves: disable               # reassign | disable | hold (default: reassign)
  grace: 7d                           # from the owner's departure to the action (0: at once)
  rotation: 90d                       # credentials not rotated for longer are a finding
  stale_after: 90d                    # an agentic application not accessed for longer is a finding
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from scimward.durations import DurationError, format_duration, parse_duration
from scimward.errors import ConfigurationError

KINDS = ("service_account", "api_key", "token", "certificate", "bot", "workload", "ai_agent")
REQUIREMENTS = ("owner", "purpose", "expiry")
OWNER_LEAVES = ("reassign", "disable", "hold")
_SETTINGS = ("require", "missing", "max_lifetime", "owner_leaves", "grace", "rotation", "stale_after")

#: Sensible maxima (the example policy ships them): short-lived secrets, longer-lived workloads.
DEFAULT_MAX_LIFETIME: dict[str, timedelta] = {
    "api_key": timedelta(days=90),
    "token": timedelta(days=90),
    "certificate": timedelta(days=397),
    "service_account": timedelta(days=365),
    "bot": timedelta(days=365),
    "workload": timedelta(days=365),
    "ai_agent": timedelta(days=180),
}


class NhiSettingsError(ConfigurationError):
    """The ``nhi`` section cannot be used; the message names the setting."""


def duration(text: Any, setting: str, *, zero: bool = False) -> timedelta:
    """``7d``, ``12h``, ``10m``, ``30s`` (``scimward.durations``; and ``0`` where ``zero`` is allowed)."""
    try:
        return parse_duration(text, f"nhi.{setting}", zero=zero)
    except DurationError as exc:
        raise NhiSettingsError(str(exc)) from None


@dataclass(frozen=True)
class NhiSettings:
    #: Nothing is required until a policy says so: a hub without an ``nhi`` section serves Agents as
    #: any SCIM server would. The example policy requires owner, purpose and expiry.
    require: tuple[str, ...] = ()
    missing: str = "hold"
    max_lifetime: dict[str, timedelta] = field(default_factory=lambda: dict(DEFAULT_MAX_LIFETIME))
    #: Reassign by default: the manager of the leaver is asked to take over, nothing breaks at once;
    #: an NHI nobody accepts is disabled at the end of the grace period.
    owner_leaves: str = "reassign"
    grace: timedelta = timedelta(days=7)
    rotation: timedelta = timedelta(days=90)
    #: An AgenticApplication whose ``lastAccessed`` is older is stale access (a finding).
    stale_after: timedelta = timedelta(days=90)

    def to_json(self) -> dict[str, Any]:
        return {
            "require": list(self.require),
            "missing": self.missing,
            "max_lifetime": {k: format_duration(v) for k, v in sorted(self.max_lifetime.items())},
            "owner_leaves": self.owner_leaves,
            "grace": format_duration(self.grace),
            "rotation": format_duration(self.rotation),
            "stale_after": format_duration(self.stale_after),
        }


def nhi_settings(raw: Any) -> NhiSettings:
    if raw is None:
        return NhiSettings()
    if not isinstance(raw, dict):
        raise NhiSettingsError(f"nhi: a mapping with {', '.join(_SETTINGS)}")
    unknown = set(raw) - set(_SETTINGS)
    if unknown:
        raise NhiSettingsError(f"nhi: unknown setting {sorted(unknown)[0]!r} ({', '.join(_SETTINGS)})")
    default = NhiSettings()
    require = raw.get("require", list(default.require))
    if not isinstance(require, list) or any(r not in REQUIREMENTS for r in require):
        raise NhiSettingsError(f"nhi.require: a list of {', '.join(REQUIREMENTS)}, not {require!r}")
    missing = raw.get("missing", default.missing)
    if missing not in ("deny", "hold"):
        raise NhiSettingsError(f"nhi.missing: deny or hold, not {missing!r}")
    leaves = raw.get("owner_leaves", default.owner_leaves)
    if leaves not in OWNER_LEAVES:
        raise NhiSettingsError(f"nhi.owner_leaves: one of {', '.join(OWNER_LEAVES)}, not {leaves!r}")
    lifetimes = dict(default.max_lifetime)
    given = raw.get("max_lifetime") or {}
    if not isinstance(given, dict):
        raise NhiSettingsError("nhi.max_lifetime: a mapping of kind to duration")
    for kind, text in given.items():
        if kind not in KINDS:
            raise NhiSettingsError(f"nhi.max_lifetime: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        lifetimes[kind] = duration(text, f"max_lifetime.{kind}")
    grace = duration(raw["grace"], "grace", zero=True) if "grace" in raw else default.grace
    rotation = duration(raw["rotation"], "rotation") if "rotation" in raw else default.rotation
    stale = duration(raw["stale_after"], "stale_after") if "stale_after" in raw else default.stale_after
    return NhiSettings(tuple(dict.fromkeys(require)), missing, lifetimes, leaves, grace, rotation, stale)
