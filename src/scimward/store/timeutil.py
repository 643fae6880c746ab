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
