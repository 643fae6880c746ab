"""How many refusals of unknown tokens become audit events: a spray of random tokens stays a few rows.

A refused token the hub knows (revoked, expired, outside its scopes) is always worth an event: there
are as many of them as tokens. An unknown one costs an attacker nothing to make, so in each window
(``WINDOW_SECONDS``) at most ``PER_ADDRESS`` of them per source address, and ``OVERALL`` in all, are
recorded one by one; the others are counted, and the window's count is recorded as one
``token_refused_summary`` event (how many, from which addresses) when the window ends.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

WINDOW_SECONDS = 60.0
PER_ADDRESS = 10
OVERALL = 100
#: Addresses named one by one in a summary; the others are counted under "other".
SUMMARY_ADDRESSES = 20
#: Addresses counted one by one in a window; beyond, under "other", so a spray from many bounds memory.
TRACKED_ADDRESSES = 1000


@dataclass
class Summary:
    """The unknown-token refusals of one window that were not recorded one by one."""

    started: float  # the window's start, on ``time.time``'s clock
    seconds: float
    suppressed: int
    addresses: dict[str, int] = field(default_factory=dict)


class RefusalLimiter:
    """Decides which refusals of unknown tokens are recorded (see the module's text). Not thread-safe:
    one per process, used from its event loop."""

    def __init__(
        self,
        *,
        window: float = WINDOW_SECONDS,
        per_address: int = PER_ADDRESS,
        overall: int = OVERALL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window
        self.per_address = per_address
        self.overall = overall
        self._clock = clock
        self._start = clock()
        self._wall_start = time.time()
        self._recorded: Counter[str] = Counter()
        self._suppressed: Counter[str] = Counter()
        self._pending: list[Summary] = []

    def admit(self, address: str | None) -> bool:
        """Whether this refusal of an unknown token from ``address`` is recorded as its own event."""
        self._roll()
        who = address or "unknown"
        if sum(self._recorded.values()) < self.overall and self._recorded[who] < self.per_address:
            self._recorded[who] += 1
            return True
        if who not in self._suppressed and len(self._suppressed) >= TRACKED_ADDRESSES:
            who = "other"
        self._suppressed[who] += 1
        return False

    @property
    def suppressing(self) -> bool:
        """Whether the current window has refusals to summarise when it ends."""
        return bool(self._suppressed)

    def remaining(self) -> float:
        """Seconds until the current window ends."""
        return max(0.0, self.window - (self._clock() - self._start))

    def summaries(self) -> list[Summary]:
        """The summaries of the windows that have ended since the last call."""
        self._roll()
        pending, self._pending = self._pending, []
        return pending

    def _roll(self) -> None:
        now = self._clock()
        if now - self._start < self.window:
            return
        if self._suppressed:
            named = self._suppressed.most_common(SUMMARY_ADDRESSES)
            addresses = dict(named)
            rest = sum(self._suppressed.values()) - sum(addresses.values())
            if rest:
                addresses["other"] = addresses.get("other", 0) + rest
            self._pending.append(Summary(self._wall_start, self.window, sum(self._suppressed.values()), addresses))
        self._start, self._wall_start = now, time.time()
        self._recorded.clear()
        self._suppressed.clear()
