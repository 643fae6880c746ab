"""Intervals written as people write them: ``90s``, ``30m``, ``24h``, ``7d``, ``2w``.

One grammar for every layer (a target's ``reconcile_every``, ``findings accept --until 30d``): this
module imports nothing of ours, so any layer may use it.
"""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"\s*(\d+)\s*([wdhms])\s*")
_UNITS = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(text: str) -> timedelta:
    """``text`` as an interval (``0d`` is zero); ``ValueError`` names what it expects otherwise."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not an interval like 30d, 24h, 30m, 90s or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
