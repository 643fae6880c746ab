"""Long lists of keys in chunks that one statement can bind (drivers and SQLite limit parameters)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TypeVar

T = TypeVar("T")

#: Keys per ``IN (...)`` or ``executemany``: far below every limit, large enough that the round trips vanish.
CHUNK = 500


def chunks(items: Collection[T], size: int = CHUNK) -> Iterator[list[T]]:
    """``items`` in order, ``size`` at a time."""
    ordered = list(items)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]
