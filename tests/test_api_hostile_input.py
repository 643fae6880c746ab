"""Malformed and hostile input answers a 4xx SCIM Error on both dialects, never a 500 (issue 11, item 2).

Every case here answered 500 on SQLite, on PostgreSQL or on both before the fix. The server is the
suite's real one (``live_server``), once per dialect, so each test also pins that the two dialects
accept and refuse the same input.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.scimdata import ENTERPRISE, assert_error, patch, user

SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
HUGE_INT = "1" + "0" * 399
HUGE_DIGITS = "9" * 5000


def _chain(joiner: str, terms: int) -> str:
    return f" {joiner} ".join(f'userName eq "chain{i}"' for i in range(terms))


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param('userName eq "\\ud800"', id="lone-surrogate-escape"),
        pytest.param('displayName eq "a\\u0000b"', id="nul-escape"),
        pytest.param(f"title eq {HUGE_INT}", id="400-digit-number"),
        pytest.param(f"title eq {HUGE_DIGITS}", id="5000-digit-number"),
        pytest.param(f"title eq -{HUGE_INT}.5", id="400-digit-decimal"),
        pytest.param('meta.created gt "0001-01-01T00:00:00+14:00"', id="date-below-range"),
        pytest.param('meta.lastModified lt "9999-12-31T23:59:59-14:00"', id="date-above-range"),
        pytest.param(f"{ENTERPRISE}:manager.value eq {HUGE_INT}", id="huge-number-on-json-attribute"),
        pytest.param(_chain("or", 500), id="500-term-or-chain"),
        pytest.param(_chain("and", 500), id="500-term-and-chain"),
    ],
)
def test_a_hostile_filter_is_invalid_filter(scim: httpx.Client, expr: str) -> None:
    """RFC 7644 3.4.2.2: a filter the server cannot evaluate is 400 invalidFilter."""
    assert_error(scim.get("/Users", params={"filter": expr}), 400, "invalidFilter")


def test_a_filter_in_a_search_body_is_bounded_too(scim: httpx.Client) -> None:
    """A 60,000-character ``co`` (SQLite's LIKE pattern limit is 50,000 bytes) is refused by length."""
    body = {"schemas": [SEARCH], "filter": f'userName co "{"x" * 60_000}"'}
    detail = assert_error(scim.post("/Users/.search", json=body), 400, "invalidFilter")["detail"]
    assert "characters" in detail


def test_the_longest_filter_allowed_still_runs(scim: httpx.Client) -> None:
    """The bound refuses only what is over it: a long but legal filter is answered."""
    body = {"schemas": [SEARCH], "filter": f'userName co "{"x" * 9_000}"'}
    response = scim.post("/Users/.search", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["totalResults"] == 0


def test_a_long_chain_within_the_bound_works(scim: httpx.Client, unique: str) -> None:
    assert scim.post("/Users", json=user(f"chain-{unique}")).status_code == 201
    expr = " or ".join([*(f'userName eq "nobody{i}-{unique}"' for i in range(99)), f'userName eq "chain-{unique}"'])
    response = scim.get("/Users", params={"filter": expr})
    assert response.status_code == 200, response.text
    assert response.json()["totalResults"] == 1


@pytest.mark.parametrize("start_index", ["18446744073709551616", "9" * 5000])
def test_a_huge_start_index_is_invalid_value(scim: httpx.Client, start_index: str) -> None:
    assert_error(scim.get("/Users", params={"startIndex": start_index}), 400, "invalidValue")


def test_a_huge_negative_start_index_reads_as_one(scim: httpx.Client) -> None:
    """RFC 7644 3.4.2.4: a startIndex below 1 is interpreted as 1."""
    response = scim.get("/Users", params={"startIndex": "-18446744073709551616", "count": "1"})
    assert response.status_code == 200, response.text
    assert response.json()["startIndex"] == 1


@pytest.mark.parametrize("value", ["abc", [1], 1e30, True, {"a": 1}, 18446744073709551616])
def test_root_search_with_a_bad_start_index_is_invalid_value(scim: httpx.Client, value: Any) -> None:
    body = {"schemas": [SEARCH], "filter": 'userName eq "nobody"', "startIndex": value}
    assert_error(scim.post("/.search", json=body), 400, "invalidValue")


@pytest.mark.parametrize("value", ["abc", [1], 1e30])
def test_root_search_with_a_bad_count_is_invalid_value(scim: httpx.Client, value: Any) -> None:
    body = {"schemas": [SEARCH], "filter": 'userName eq "nobody"', "count": value}
    assert_error(scim.post("/.search", json=body), 400, "invalidValue")


@pytest.mark.parametrize("field", ["userName", "displayName", "title", "nickName"])
def test_a_nul_byte_in_a_document_is_invalid_value(scim: httpx.Client, unique: str, field: str) -> None:
    body = user(f"nul-{unique}", **{field: f"a\u0000{unique}"}) if field != "userName" else user(f"a\u0000{unique}")
    assert_error(scim.post("/Users", json=body), 400, "invalidValue")


def test_a_nul_byte_in_a_patch_value_is_invalid_value(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(f"nul-patch-{unique}")).json()
    body = patch({"op": "replace", "path": "title", "value": "a\u0000b"})
    assert_error(scim.patch(f"/Users/{created['id']}", json=body), 400, "invalidValue")
    assert "title" not in scim.get(f"/Users/{created['id']}").json()


def test_a_nul_byte_in_a_member_id_is_a_client_error(scim: httpx.Client, unique: str) -> None:
    created = scim.post(
        "/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": f"nul-{unique}"}
    ).json()
    body = patch({"op": "add", "path": "members", "value": [{"value": "a\u0000b"}]})
    assert_error(scim.patch(f"/Groups/{created['id']}", json=body), 400, "invalidValue")


@pytest.mark.parametrize("path", ["/Users/%00", "/Users/a%00b", "/Groups/%00", "/Users/" + "x" * 5000])
def test_an_id_that_cannot_exist_is_not_found(scim: httpx.Client, path: str) -> None:
    assert_error(scim.get(path), 404)
    assert_error(scim.delete(path), 404)


def test_user_name_limit_is_the_same_on_both_dialects(scim: httpx.Client, unique: str) -> None:
    """userName is stored in a 256-character column: 256 fit everywhere, 257 are refused everywhere."""
    longest = (unique + "x" * 256)[:256]
    assert scim.post("/Users", json=user(longest)).status_code == 201
    detail = assert_error(scim.post("/Users", json=user(unique + "y" * 247)), 400, "invalidValue")["detail"]
    assert "userName" in detail and "256" in detail


def test_an_email_over_its_column_is_refused(scim: httpx.Client, unique: str) -> None:
    body = user(f"mail-{unique}", emails=[{"value": "m" * 513 + "@example.com"}])
    assert_error(scim.post("/Users", json=body), 400, "invalidValue")


def test_a_nul_byte_in_a_bulk_path_is_a_client_error(scim: httpx.Client) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "DELETE", "path": "/Users/a\u0000b"}],
    }
    response = scim.post("/Bulk", json=body)
    assert 400 <= response.status_code < 500, response.text


@pytest.mark.parametrize("number", [HUGE_INT, HUGE_DIGITS])
def test_a_huge_number_in_a_patch_path_filter_is_invalid_path(scim: httpx.Client, unique: str, number: str) -> None:
    created = scim.post("/Users", json=user(f"path-{unique}", emails=[{"value": f"{unique}@example.com"}])).json()
    body = patch({"op": "remove", "path": f"emails[value eq {number}]"})
    assert_error(scim.patch(f"/Users/{created['id']}", json=body), 400, "invalidPath")


def _add_emails(n: int, tag: str) -> dict[str, Any]:
    return patch(*({"op": "add", "path": "emails", "value": [{"value": f"{tag}{i}@x.io"}]} for i in range(n)))


def test_a_patch_of_the_most_operations_allowed_is_applied(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(f"ops-{unique}")).json()
    response = scim.patch(f"/Users/{created['id']}", json=_add_emails(1000, "e"))
    assert response.status_code == 200, response.text
    assert len(response.json()["emails"]) == 1000


def test_a_patch_over_the_operation_limit_is_too_many(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.12 tooMany: the hub bounds the work one PATCH can ask for (docs/security.md)."""
    created = scim.post("/Users", json=user(f"ops-{unique}")).json()
    assert_error(scim.patch(f"/Users/{created['id']}", json=_add_emails(1001, "e")), 400, "tooMany")
    assert "emails" not in scim.get(f"/Users/{created['id']}").json()


def test_a_bulk_patch_over_the_operation_limit_is_too_many(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(f"bulk-ops-{unique}")).json()
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "PATCH", "path": f"/Users/{created['id']}", "data": _add_emails(1001, "b")}],
    }
    response = scim.post("/Bulk", json=body)
    assert response.status_code == 200, response.text
    result = response.json()["Operations"][0]
    assert result["status"] == "400" and result["response"]["scimType"] == "tooMany"


def test_a_document_with_too_many_values_is_refused(scim: httpx.Client, unique: str) -> None:
    body = user(f"values-{unique}", roles=[{"value": f"r{i}"} for i in range(1001)])
    assert_error(scim.post("/Users", json=body), 400, "invalidValue")
