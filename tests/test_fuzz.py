"""Property-based fuzzing of the SCIM endpoints on both dialects at once (issue 11, standing check).

Hypothesis builds filters from the grammar (with hostile literals: NUL, lone surrogates, huge
numbers, out-of-range dates), PATCH bodies, Bulk requests, ``.search`` bodies and paging
parameters, and sends each one to a SQLite hub and a PostgreSQL hub. Properties: no 5xx, every
answer within ``BOUND_SECONDS``, and the same status from both dialects. Runs are derandomized so
the suite is repeatable; ``SCIMWARD_FUZZ_EXAMPLES`` (default 30) raises the number of examples for
a release run (docs/security.md).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scimward.api.settings import Settings
from scimward.store.database import upgrade
from tests.conftest import ServerThread, issue_token
from tests.scimdata import ENTERPRISE, PATCH_OP, USER

BOUND_SECONDS = 10.0
EXAMPLES = int(os.environ.get("SCIMWARD_FUZZ_EXAMPLES", "30"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def hubs(postgres_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[httpx.Client]]:
    """One client per dialect, each on a server of its own."""
    sqlite_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'hub.db'}"
    clients: list[httpx.Client] = []
    threads: list[ServerThread] = []
    try:
        for url in (sqlite_url, postgres_database):
            upgrade(url)
            token = issue_token(url, f"fuzz-{uuid.uuid4().hex[:8]}")
            thread = ServerThread(Settings(database_url=url, run_worker=False)).__enter__()
            threads.append(thread)
            clients.append(
                httpx.Client(
                    base_url=f"http://127.0.0.1:{thread.port}/scim/v2",
                    timeout=30,
                    headers={"Authorization": f"Bearer {token}"},
                )
            )
        yield clients
    finally:
        for client in clients:
            client.close()
        for thread in threads:
            thread.__exit__()


def _body(value: Any) -> dict[str, Any]:
    """Request arguments for a JSON body; json.dumps escapes lone surrogates, which httpx cannot encode."""
    return {"content": json.dumps(value).encode(), "headers": {"content-type": "application/scim+json"}}


def _query(params: dict[str, str]) -> dict[str, str]:
    """A URL carries UTF-8 only: a lone surrogate reaches the server as the replacement character."""
    return {k: v.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for k, v in params.items()}


def _same_everywhere(
    hubs: list[httpx.Client], method: str, path: str, body: Any = None, params: dict[str, str] | None = None
) -> int:
    statuses = []
    for client in hubs:
        kwargs: dict[str, Any] = _body(body) if body is not None else {}
        response = client.request(method, path, params=_query(params or {}), **kwargs)
        assert response.status_code < 500, (client.base_url, response.text)
        assert response.elapsed.total_seconds() < BOUND_SECONDS
        statuses.append(response.status_code)
    assert len(set(statuses)) == 1, statuses
    return statuses[0]


_HOSTILE_TEXT = st.sampled_from(["\x00", "\ud800", "a\udfffb", "x" * 300, "%", "_", "\\", '"', "Ünïcödé", ""])
_TEXT = st.one_of(st.text(max_size=20), _HOSTILE_TEXT)
_NUMBERS = st.one_of(
    st.integers(-(10**30), 10**30).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["9" * 400, "9" * 5000, "1e400", "-0", "1.5e-300"]),
)
_DATES = st.sampled_from(
    [
        '"0001-01-01T00:00:00+14:00"',
        '"9999-12-31T23:59:59-14:00"',
        '"2026-01-01T00:00:00Z"',
        '"2026-13-01T00:00:00Z"',
        '"not a date"',
    ]
)
_PATHS = st.sampled_from(
    [
        "userName",
        "displayName",
        "title",
        "active",
        "emails",
        "emails.value",
        "emails.type",
        "name.givenName",
        "meta.created",
        "meta.lastModified",
        "id",
        "externalId",
        "groups",
        f"{ENTERPRISE}:manager.value",
        f"{ENTERPRISE}:employeeNumber",
        "roles.value",
        "x",
        "password",
    ]
)
_OPS = st.sampled_from(["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "pr", "EQ", "zz"])
_VALUES = st.one_of(
    _TEXT.map(lambda t: json.dumps(t)), _NUMBERS, _DATES, st.sampled_from(["true", "false", "null", "bare"])
)


@st.composite
def _expression(draw: st.DrawFn) -> str:
    path, op = draw(_PATHS), draw(_OPS)
    return f"{path} pr" if op == "pr" else f"{path} {op} {draw(_VALUES)}"


@st.composite
def filters(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=60))  # anything at all
    terms = draw(st.lists(_expression(), min_size=1, max_size=4))
    text = terms[0]
    for term in terms[1:]:
        text = f"{text} {draw(st.sampled_from(['and', 'or', 'AND']))} {term}"
    if draw(st.booleans()):
        text = f"not ({text})"
    if draw(st.booleans()):
        text = f"emails[{text.replace('emails.', '')}]"
    return text


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_PAGING = st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=12), _NUMBERS, _JSON)


@FUZZ
@given(expr=filters())
def test_filters(hubs: list[httpx.Client], expr: str) -> None:
    _same_everywhere(hubs, "GET", "/Users", params={"filter": expr})


@FUZZ
@given(expr=filters(), sort_by=st.one_of(st.none(), _PATHS), start=_PAGING, count=_PAGING)
def test_search_bodies(hubs: list[httpx.Client], expr: str, sort_by: str | None, start: Any, count: Any) -> None:
    body: dict[str, Any] = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": expr,
        "startIndex": start,
        "count": count,
    }
    if sort_by is not None:
        body["sortBy"] = sort_by
    _same_everywhere(hubs, "POST", "/Users/.search", body)
    _same_everywhere(hubs, "POST", "/.search", body)


@FUZZ
@given(start=_PAGING.map(str), count=_PAGING.map(str), cursor=st.one_of(st.none(), st.text(max_size=30)))
def test_paging_parameters(hubs: list[httpx.Client], start: str, count: str, cursor: str | None) -> None:
    params = {"startIndex": start, "count": count}
    if cursor is not None:
        params = {"cursor": cursor, "count": count}
    _same_everywhere(hubs, "GET", "/Users", params=params)


_PATCH_PATHS = st.one_of(
    _PATHS,
    filters().map(lambda f: f"emails[{f}]"),
    st.sampled_from(
        ['emails[type eq "work"].value', "name", "members", "emails[value eq 99999999999999999999999]", ""]
    ),
)


@st.composite
def patch_bodies(draw: st.DrawFn) -> Any:
    operations = []
    for _ in range(draw(st.integers(0, 4))):
        operation: dict[str, Any] = {"op": draw(st.sampled_from(["add", "replace", "remove", "Replace", "move"]))}
        if draw(st.integers(0, 4)):
            operation["path"] = draw(_PATCH_PATHS)
        if draw(st.booleans()):
            operation["value"] = draw(_JSON)
        operations.append(operation)
    if draw(st.integers(0, 9)) == 0:
        return draw(_JSON)
    return {"schemas": [PATCH_OP], "Operations": operations}


@FUZZ
@given(body=patch_bodies())
def test_patch_bodies(hubs: list[httpx.Client], body: Any) -> None:
    name = f"fuzz-{uuid.uuid4().hex[:12]}"
    ids = []
    for client in hubs:
        created = client.post(
            "/Users",
            json={"schemas": [USER], "userName": name, "emails": [{"value": f"{name}@example.com", "type": "work"}]},
        )
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
    statuses = []
    for client, identity_id in zip(hubs, ids, strict=True):
        response = client.patch(f"/Users/{identity_id}", **_body(body))
        assert response.status_code < 500, response.text
        assert response.elapsed.total_seconds() < BOUND_SECONDS
        statuses.append(response.status_code)
    assert len(set(statuses)) == 1, statuses


@FUZZ
@given(
    operations=st.lists(
        st.fixed_dictionaries(
            {
                "method": st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET"]),
                "path": st.one_of(
                    st.sampled_from(["/Users", "/Groups", "/Users/nope", "/Users/bulkId:a", "/Nope"]), _TEXT
                ),
                "bulkId": st.one_of(st.sampled_from(["a", "b"]), _TEXT),
                "data": _JSON,
            }
        ),
        max_size=4,
    )
)
def test_bulk(hubs: list[httpx.Client], operations: list[dict[str, Any]]) -> None:
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": operations}
    for client in hubs:
        response = client.post("/Bulk", **_body(body))
        assert response.status_code < 500, response.text
        assert response.elapsed.total_seconds() < BOUND_SECONDS
        if response.status_code == 200:
            assert all(int(op["status"]) < 500 for op in response.json()["Operations"]), response.text
