"""Identity ids are UUIDv7 (RFC 9562) and sort in the order this process made them."""

from __future__ import annotations

import uuid

from scimward.store.ids import created_ms, new_id


def test_ids_are_version_7_uuids() -> None:
    parsed = uuid.UUID(new_id())
    assert parsed.version == 7 and parsed.variant == uuid.RFC_4122


def test_ids_sort_in_creation_order_within_a_millisecond() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_the_creation_millisecond_is_in_the_id() -> None:
    first, second = new_id(), new_id()
    assert created_ms(first) <= created_ms(second)
