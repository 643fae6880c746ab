"""Identity ids: UUIDv7 (RFC 9562), ordered by creation.

The time-ordered prefix keeps B-tree inserts at the right edge of the index, and ids made by this
process sort in the order they were made even within one millisecond (a 12-bit counter in
``rand_a``), so lists ordered by (created, id) come back in creation order.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid

_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_id() -> str:
    global _last_ms, _counter
    with _lock:
        now = time.time_ns() // 1_000_000
        if now > _last_ms:
            _last_ms, _counter = now, 0
        else:
            _counter += 1
            if _counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
                _last_ms, _counter = _last_ms + 1, 0
        ms, counter = _last_ms, _counter
    value = (ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | secrets.randbits(62)
    return str(uuid.UUID(int=value))


def created_ms(identity_id: str) -> int:
    """The millisecond an id was made (its first 48 bits)."""
    return uuid.UUID(identity_id).int >> 80
