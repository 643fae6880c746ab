"""Identity ids: UUIDv7 (RFC 9562), ordered by creation.

The time-ordered prefix keeps B-tree inserts at the right edge of the index, and ids made by this
process sort in the order they were made even within one millisecond (a 12-bit counter in
``rand_a``), so lists ordered by (created, id) come back in creation order.
"""

from __future__ import annotations

import os
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0
#: Random bytes from the operating system, drawn 4 KiB at a time: one ``getrandom`` call per id cost
#: more than the rest of making it (an HR backfill makes 100,000 change ids).
_random = b""
_taken = 0
_RANDOM_BITS = (1 << 62) - 1


def _forget_random() -> None:
    """A forked process draws bytes of its own: the parent's would give both the same ids."""
    global _random, _taken
    _random, _taken = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def new_id() -> str:
    global _last_ms, _counter, _random, _taken
    with _lock:
        if _taken + 8 > len(_random):
            _random, _taken = os.urandom(4096), 0
        rand = int.from_bytes(_random[_taken : _taken + 8], "big") & _RANDOM_BITS
        _taken += 8
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _counter = now, 0
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    text = f"{(ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def created_ms(identity_id: str) -> int:
    """The millisecond an id was made (its first 48 bits)."""
    return uuid.UUID(identity_id).int >> 80
