"""Time as the store keeps it: naive datetimes in UTC, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, to the millisecond: what ``meta`` shows is exactly what filters compare."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def iso(moment: datetime | None) -> str | None:
    """A stored time as ISO 8601 in UTC (``2026-12-03T14:57:25.123000Z``), None as None."""
    return None if moment is None else moment.isoformat() + "Z"


def parse_time(value: object) -> datetime | None:
    """A SCIM dateTime (RFC 7643 2.3.5: ``2027-01-31T00:00:00Z``) as the store keeps times (naive, UTC);
    None for anything that is not one."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo is not None else moment
