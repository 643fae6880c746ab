"""What the edges ask of the findings: by framework control, owner and status; a risk accepted until.

The command line (``scimward findings``) and the admin API (``GET /findings``) read their filters
the same way, here; a ``FilterError`` says what is wrong with one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from scimward.durations import DurationError, parse_duration
from scimward.errors import ScimwardError
from scimward.governance import catalogue
from scimward.store.governance import FINDING_STATUSES, Finding


class FilterError(ScimwardError, ValueError):
    """A filter or a date the findings cannot be asked with."""


def framework_kinds(framework: str | None) -> list[str] | None:
    """The kinds that are evidence for a control (``csf:PR.AA-05``) or a framework (``csf``); None: all."""
    if framework is None:
        return None
    spec = framework.strip()
    try:
        wanted = catalogue.parse_framework(spec) if ":" in spec else spec.lower()
    except catalogue.UnknownKind as exc:
        raise FilterError(str(exc)) from exc
    if ":" not in wanted and wanted not in catalogue.FRAMEWORKS:
        raise FilterError(
            f"framework {framework!r}: use owasp-nhi or csf, or a control like owasp-nhi:NHI1 or csf:PR.AA-05"
        )
    return catalogue.kinds_for(wanted)


def statuses(given: Sequence[str] | None) -> list[str] | None:
    if not given:
        return None
    unknown = [s for s in given if s not in FINDING_STATUSES]
    if unknown:
        raise FilterError(f"status {unknown[0]!r}: use one of {', '.join(FINDING_STATUSES)}")
    return list(given)


def accepted_until(text: str, now: datetime | None = None) -> datetime:
    """An acceptance's end: an interval from now (30d, 12h, 2w) or a date or time (naive UTC, as stored)."""
    moment = now or datetime.now(UTC).replace(tzinfo=None)
    try:
        return moment + parse_duration(text, "until")
    except DurationError as exc:
        if text.strip().isdigit():  # a number without its unit is not a date either: say which unit
            raise FilterError(str(exc)) from None
    try:
        given = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise FilterError(f"until {text!r} is neither an interval (30d, 12h, 2w) nor a date (2027-01-31)") from exc
    return given.astimezone(UTC).replace(tzinfo=None) if given.tzinfo is not None else given


def frameworks_of(kind: str) -> tuple[str, ...]:
    described = catalogue.KINDS.get(kind)
    return described.frameworks if described is not None else ()


def finding_json(finding: Finding) -> dict[str, Any]:
    """A finding as the edges show it: with the framework ids of its kind."""
    return {**finding.to_json(), "frameworks": list(frameworks_of(finding.kind))}
