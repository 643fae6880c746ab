"""Reading paging and filter parameters from a page's query string."""

from __future__ import annotations

MAX_PAGE = 100_000


def page_number(given: str | None) -> int:
    try:
        return min(max(int(given or "1"), 1), MAX_PAGE)
    except ValueError:
        return 1
