"""Intervals written as people write them: ``90s``, ``30m``, ``24h``, ``7d``, ``2w``.

The one grammar of every interval scimward reads: a policy's ``pending_expiry``, ``breaker.window``
and graces, a target's ``reconcile_every``, ``token create --expires-in``, ``group set
--review-every``, ``review start --due``, ``findings accept --until``. A number and a unit (``s``,
``m``, ``h``, ``d``, ``w``), spaces and case aside.

A bare number has no unit, and two parsers once read it differently (days in one, seconds in the
other). It is read as seconds only where a setting documents it (``reconcile_every: 3600``, via
``bare_seconds``); ``0`` is zero wherever zero is allowed; anywhere else a bare number is refused
with an error that asks for the unit, rather than guessed.

This module imports only the error root, so any layer may use it.
"""

from __future__ import annotations

import re
from datetime import timedelta

from scimward.errors import ConfigurationError

_INTERVAL = re.compile(r"\s*(\d+)\s*([wdhms]?)\s*", re.IGNORECASE)
_UNITS = {
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
EXAMPLES = "90d, 24h, 30m, 45s or 2w"


class DurationError(ConfigurationError):
    """An interval that does not parse, is zero where zero means nothing, or lacks its unit."""


def parse_duration(
    text: object, what: str = "an interval", *, zero: bool = False, bare_seconds: bool = False
) -> timedelta:
    """``text`` as an interval; ``DurationError`` names ``what`` and what it expects otherwise.

    ``zero``: ``0`` (with or without a unit) is allowed and means zero. ``bare_seconds``: a number
    without a unit is seconds (only for the settings that document it).
    """
    given = str(text)
    match = _INTERVAL.fullmatch(given)
    if match is None:
        raise DurationError(f"{what}: {given!r} is not an interval like {EXAMPLES}")
    amount, unit = int(match.group(1)), match.group(2).lower()
    if amount == 0:
        if not zero:
            raise DurationError(f"{what}: {given!r} is zero; give an interval like {EXAMPLES}")
        return timedelta(0)
    if not unit:
        if not bare_seconds:
            raise DurationError(
                f"{what}: {given!r} has no unit; write {amount}d (days), {amount}h (hours), "
                f"{amount}m (minutes), {amount}s (seconds) or {amount}w (weeks)"
            )
        unit = "s"
    return amount * _UNITS[unit]


def parse_days(text: object, what: str) -> int:
    """An interval in whole days (review cadences and membership lifetimes are counted in days)."""
    interval = parse_duration(text, what)
    if interval % timedelta(days=1):
        raise DurationError(f"{what}: {str(text)!r} is not a whole number of days; write it like 90d or 2w")
    return interval.days


def format_duration(value: timedelta) -> str:
    """The shortest of ``parse_duration``'s forms for ``value`` (``7d``, ``12h``, ``10m``, ``45s``; ``0s``)."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_every(value: object, what: str, default: timedelta) -> timedelta | None:
    """How often something runs, as a setting holds it (``reconcile_every``); None: never.

    Unset: ``default``. ``0``, ``"0"``, ``"off"``, ``"never"``, ``""`` or false: never. A number, or
    a bare number in text: seconds (documented: ``reconcile_every: 3600``). Otherwise an interval.
    """
    if value is None:
        return default
    if value is False or value in (0, "0", "off", "never", ""):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0:
            raise DurationError(f"{what}: {value!r} is negative; give an interval like {EXAMPLES}, or 0 (off)")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise DurationError(f"{what}: {value!r} is not an interval like {EXAMPLES}, or 0 (off)")
    return parse_duration(value, what, zero=True, bare_seconds=True) or None
