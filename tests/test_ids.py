"""Identity ids are UUIDv7 (RFC 9562) and sort in the order this process made them."""

from __future__ import annotations

import os
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


def test_a_forked_process_does_not_reuse_the_random_bits_of_its_parent() -> None:
    new_id()  # the parent has random bytes left over, which the child must not reuse
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's side
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    theirs = os.read(read, 64).decode()
    os.close(read)
    ours = new_id()
    mask = (1 << 62) - 1
    assert uuid.UUID(theirs).int & mask != uuid.UUID(ours).int & mask


def test_ids_are_written_as_uuids_are() -> None:
    identity_id = new_id()
    assert identity_id == str(uuid.UUID(identity_id))
