"""Time as the store keeps it: naive datetimes in UTC, on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
