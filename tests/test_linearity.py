"""A request 10x larger costs at most about 10x more (issue 11, item 1 and its standing check).

Work is counted, not timed: the number of Python function calls (``sys.setprofile``) is the same
on every run and every machine, so the ratios below cannot flake. Before the fix, a PATCH of 1,000
``add`` operations on ``emails`` made about 100 times the calls of one of 100 (the engine re-tidied
the whole list after every operation and searched it for duplicates), and a 200-term filter chain
was a left-deep tree that every recursive walk descended 200 levels deep.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from scimward.scim.filter import parse_filter
from scimward.scim.patch import apply_patch
from scimward.scim.resource_types import USER_TYPE
from scimward.store.filter_sql import FilterCompiler
from tests.scimdata import PATCH_OP, USER

#: 10x the input may cost 10x the work, plus this much for what does not scale down (caches, set-up).
SLACK = 1.5


def calls(work: Callable[[], object]) -> int:
    """The Python and C function calls ``work`` makes."""
    count = 0

    def profile(_frame: FrameType, event: str, _arg: Any) -> None:
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(profile)
    try:
        work()
    finally:
        sys.setprofile(None)
    return count


def _add_emails(n: int) -> dict[str, Any]:
    return {
        "schemas": [PATCH_OP],
        "Operations": [
            {"op": "add", "path": "emails", "value": [{"value": f"u{i}@example.com", "type": "work"}]} for i in range(n)
        ],
    }


def _ratio(small: Callable[[], object], large: Callable[[], object]) -> float:
    small()  # warm caches (path parsing, resource tables) so they count for neither
    large()
    return calls(large) / calls(small)


def test_patch_of_ten_times_the_operations_costs_ten_times_the_work() -> None:
    doc = {"schemas": [USER], "userName": "linear"}
    assert (
        _ratio(
            lambda: apply_patch(doc, _add_emails(100), USER_TYPE),
            lambda: apply_patch(doc, _add_emails(1000), USER_TYPE),
        )
        < 10 * SLACK
    )


def test_patch_with_primary_values_stays_linear() -> None:
    """A value added as primary takes primary from the last one without a walk of the whole list."""

    def body(n: int) -> dict[str, Any]:
        return {
            "schemas": [PATCH_OP],
            "Operations": [
                {"op": "add", "path": "emails", "value": [{"value": f"p{i}@example.com", "primary": True}]}
                for i in range(n)
            ],
        }

    doc = {"schemas": [USER], "userName": "linear"}
    result = apply_patch(doc, body(50), USER_TYPE)
    assert [e["value"] for e in result.doc["emails"] if e.get("primary")] == ["p49@example.com"]
    assert (
        _ratio(lambda: apply_patch(doc, body(100), USER_TYPE), lambda: apply_patch(doc, body(1000), USER_TYPE))
        < 10 * SLACK
    )


def test_patch_on_a_large_document_costs_what_the_document_costs() -> None:
    """A few operations on a document 10x larger: the work follows the document, once, not per operation."""

    def doc(n: int) -> dict[str, Any]:
        return {
            "schemas": [USER],
            "userName": "big",
            "emails": [{"value": f"e{i}@example.com"} for i in range(n)],
            "roles": [{"value": f"r{i}"} for i in range(n)],
        }

    small_doc, large_doc = doc(90), doc(900)
    body = {
        "schemas": [PATCH_OP],
        "Operations": [{"op": "add", "path": "emails", "value": [{"value": f"new{i}@example.com"}]} for i in range(10)],
    }
    assert (
        _ratio(lambda: apply_patch(small_doc, body, USER_TYPE), lambda: apply_patch(large_doc, body, USER_TYPE))
        < 10 * SLACK
    )


def _chain(n: int, salt: str) -> str:
    return " or ".join(f'userName eq "{salt}{i}"' for i in range(n))


def test_filter_of_ten_times_the_terms_costs_ten_times_the_work() -> None:
    """Parse, compile to SQL and render the SQL text: the whole path a filter takes before the database."""
    compiler = FilterCompiler(USER_TYPE, "postgresql")
    salts = iter(range(10))  # a new text each time: parse_filter caches by text

    def run(n: int) -> Callable[[], object]:
        def work() -> object:
            expr = compiler.compile(parse_filter(_chain(n, f"s{next(salts)}-")))
            return str(sa.select(sa.literal(1)).where(expr).compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]

        return work

    assert _ratio(run(20), run(200)) < 10 * SLACK


def test_a_long_chain_is_a_shallow_tree() -> None:
    """Depth grows with the logarithm of the chain: recursion never gets near Python's limit."""

    def depth(expr: Any) -> int:
        children = [getattr(expr, name) for name in ("left", "right", "expr", "filter") if hasattr(expr, name)]
        return 1 + max((depth(c) for c in children if not isinstance(c, str)), default=0)

    assert depth(parse_filter(_chain(200, "d"))) <= 9
    compiled = FilterCompiler(USER_TYPE, "sqlite").compile(parse_filter(_chain(200, "q")))
    sql = str(sa.select(sa.literal(1)).where(compiled).compile(dialect=sqlite.dialect()))
    assert sql.count("user_name_lower = ") == 200
