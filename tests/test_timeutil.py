"""Times as the store keeps them (naive, UTC), read from SCIM dateTimes and shown again (issue 13)."""

from __future__ import annotations

from datetime import datetime

from scimward.store.timeutil import iso, parse_time


def test_a_scim_datetime_is_read_as_naive_utc() -> None:
    """RFC 7643 2.3.5: an xsd:dateTime; an offset is converted, not dropped."""
    assert parse_time("2027-01-31T00:00:00Z") == datetime(2027, 1, 31)
    assert parse_time("2027-01-31T02:00:00+02:00") == datetime(2027, 1, 31)
    assert parse_time("2027-01-31T00:00:00") == datetime(2027, 1, 31)


def test_anything_else_is_no_time() -> None:
    assert [parse_time(value) for value in (None, 1700000000, "", "next week", "2027-02-30")] == [None] * 5


def test_a_stored_time_is_shown_in_utc() -> None:
    assert iso(datetime(2026, 12, 3, 14, 57, 25, 123000)) == "2026-12-03T14:57:25.123000Z"
    assert iso(None) is None
