"""The one interval grammar (``scimward.durations``): every documented form parses, a bare number is
seconds only where a setting documents it, and refused with the unit asked for elsewhere."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scimward.durations import DurationError, format_duration, parse_days, parse_duration, parse_every
from scimward.policy.document import PolicyError, parse_policy
from scimward.policy.nhi_settings import NhiSettingsError, nhi_settings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        (" 12 H ", timedelta(hours=12)),
    ],
)
def test_every_documented_unit_parses(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_a_bare_number_is_refused_with_the_unit_asked_for() -> None:
    with pytest.raises(DurationError, match=r"--review-every: '90' has no unit; write 90d \(days\)"):
        parse_days("90", "--review-every")


def test_a_bare_number_is_seconds_where_the_setting_documents_it() -> None:
    assert parse_every(3600, "reconcile_every", timedelta(days=1)) == timedelta(hours=1)
    assert parse_every("3600", "reconcile_every", timedelta(days=1)) == timedelta(hours=1)
    assert parse_every("6h", "reconcile_every", timedelta(days=1)) == timedelta(hours=6)
    assert parse_every(None, "reconcile_every", timedelta(days=1)) == timedelta(days=1)
    assert [parse_every(v, "reconcile_every", timedelta(days=1)) for v in (0, "0", "off", False, "0d")] == [None] * 5


@pytest.mark.parametrize("text", ["0", "0d", "-3d", "3x", "d", "1.5h", ""])
def test_zero_and_malformed_intervals_are_refused_where_zero_means_nothing(text: str) -> None:
    with pytest.raises(DurationError, match="--due: "):
        parse_duration(text, "--due")


def test_days_must_be_whole() -> None:
    assert parse_days("2w", "--membership-expires") == 14
    with pytest.raises(DurationError, match="whole number of days"):
        parse_days("36h", "--membership-expires")


def test_the_policy_reads_its_intervals_with_the_same_grammar() -> None:
    policy = parse_policy("pending_expiry: 2w\nbreaker:\n  window: 10m\nnhi:\n  grace: 0\n  rotation: 90d\n")
    assert policy.pending_expiry == timedelta(weeks=2) and policy.breaker.window == timedelta(minutes=10)
    assert policy.nhi.grace == timedelta(0)
    with pytest.raises(PolicyError, match="pending_expiry: '7' has no unit"):
        parse_policy("pending_expiry: 7\n")
    with pytest.raises(NhiSettingsError, match=r"nhi\.grace: '30' has no unit"):
        nhi_settings({"grace": 30})


def test_formatting_round_trips() -> None:
    for value in (timedelta(days=7), timedelta(hours=12), timedelta(minutes=10), timedelta(seconds=45)):
        assert parse_duration(format_duration(value)) == value
