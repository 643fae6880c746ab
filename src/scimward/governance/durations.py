"""Durations as people type them: ``90d``, ``2w``, ``12h``, ``30m`` (and a bare number of days)."""

from __future__ import annotations

import re
from datetime import timedelta

from scimward.scim.errors import InvalidValue

_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_FORM = re.compile(r"^\s*(\d+)\s*([mhdw]?)\s*$", re.IGNORECASE)


def parse_duration(text: str, what: str = "a duration") -> timedelta:
    match = _FORM.match(text)
    if match is None or int(match.group(1)) <= 0:
        raise InvalidValue(f"{what} must be a positive number with a unit, like 90d, 2w or 12h (not {text!r})")
    return int(match.group(1)) * _UNITS[(match.group(2) or "d").lower()]


def parse_days(text: str, what: str) -> int:
    """A duration in whole days (cadences and membership lifetimes are counted in days)."""
    duration = parse_duration(text, what)
    if duration % timedelta(days=1):
        raise InvalidValue(f"{what} is counted in whole days, like 90d or 2w (not {text!r})")
    return duration.days
