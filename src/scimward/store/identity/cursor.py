"""RFC 9865 cursors: signed, query-bound, expiring keyset positions.

A cursor names a position in one query's ordering (the sort value, ``created`` and ``id`` of the
row it follows or precedes), so a walk stays stable while resources are added or removed: nothing
shifts the way an offset does. It is signed with a hub secret and bound to a digest of the query
(resource type, filter, sort), so it cannot be forged, edited or replayed against another query.
Cursors use only RFC 3986 unreserved characters (base64url without padding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from scimward.scim.errors import InvalidCursor, ScimError

CURSOR_TIMEOUT_SECONDS = 3600
_MAC_BYTES = 16


class ExpiredCursor(ScimError):
    scim_type = "expiredCursor"


@dataclass(frozen=True)
class Position:
    """Where a page starts: after (``forward``) or before (backward) the row with these keys."""

    forward: bool
    sort_value: Any
    created: datetime
    id: str


def query_digest(*parts: object) -> str:
    return hashlib.sha256(orjson.dumps([str(p) for p in parts])).hexdigest()[:24]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CursorCodec:
    def __init__(self, key: bytes, timeout: int = CURSOR_TIMEOUT_SECONDS) -> None:
        self._key = key
        self.timeout = timeout

    def encode(self, digest: str, position: Position) -> str:
        sort_value = position.sort_value
        if isinstance(sort_value, datetime):
            sort_value = sort_value.isoformat()
        elif isinstance(sort_value, bytes):  # SQLite's "missing value" marker (an empty BLOB)
            sort_value = {"blob": sort_value.hex()}
        payload = orjson.dumps(
            [
                digest,
                position.forward,
                sort_value,
                position.created.isoformat(),
                position.id,
                int(time.time()) + self.timeout,
            ]
        )
        return _b64(payload + hmac.digest(self._key, payload, "sha256")[:_MAC_BYTES])

    def decode(self, digest: str, cursor: str) -> Position:
        try:
            raw = _unb64(cursor)
        except ValueError as exc:
            raise InvalidCursor("the cursor is not one this server issued") from exc
        payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        expected = hmac.digest(self._key, payload, "sha256")[:_MAC_BYTES]
        if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, expected):
            raise InvalidCursor("the cursor is not one this server issued")
        bound, forward, sort_value, created, identity_id, expires = orjson.loads(payload)
        if bound != digest:
            raise InvalidCursor("the cursor belongs to another query: keep filter and sortBy unchanged while paging")
        if expires < time.time():
            raise ExpiredCursor(f"the cursor expired; cursors last {self.timeout} seconds")
        if isinstance(sort_value, dict):
            sort_value = bytes.fromhex(str(sort_value.get("blob", "")))
        return Position(bool(forward), sort_value, datetime.fromisoformat(created), str(identity_id))
