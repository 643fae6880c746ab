"""Cursor pagination (RFC 9865) beside index paging, on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest

from tests.scimdata import assert_error, user


def seed(scim: httpx.Client, unique: str, n: int) -> list[str]:
    return [scim.post("/Users", json=user(f"{unique}-{i:02d}", title=f"t{i % 3}")).json()["userName"] for i in range(n)]


def walk(scim: httpx.Client, params: dict[str, str | int], count: int) -> list[str]:
    names: list[str] = []
    cursor = ""
    for _ in range(50):
        page = scim.get("/Users", params={**params, "cursor": cursor, "count": count}).json()
        names += [r["userName"] for r in page["Resources"]]
        if "nextCursor" not in page:
            return names
        cursor = page["nextCursor"]
    raise AssertionError("the walk did not end")


def test_cursor_walk_returns_every_resource_once(scim: httpx.Client, unique: str) -> None:
    """RFC 9865 2: nextCursor until the last page, which has none."""
    names = seed(scim, unique, 7)
    assert walk(scim, {"filter": f'userName sw "{unique}"'}, 3) == names


def test_cursor_walk_honours_sort(scim: httpx.Client, unique: str) -> None:
    names = seed(scim, unique, 6)
    walked = walk(scim, {"filter": f'userName sw "{unique}"', "sortBy": "userName", "sortOrder": "descending"}, 4)
    assert walked == sorted(names, reverse=True)


def test_cursor_walk_on_an_attribute_some_lack(scim: httpx.Client, unique: str) -> None:
    seed(scim, unique, 4)
    scim.post("/Users", json=user(f"{unique}-untitled"))
    walked = walk(scim, {"filter": f'userName sw "{unique}"', "sortBy": "title"}, 2)
    assert len(walked) == 5 and walked[-1] == f"{unique}-untitled"  # RFC 7644 3.4.2.3: missing sorts last


def test_walk_is_stable_while_resources_are_added_and_removed(scim: httpx.Client, unique: str) -> None:
    """RFC 9865 1: unlike offsets, nothing is skipped or repeated when the set changes mid-walk."""
    names = seed(scim, unique, 6)
    first = scim.get("/Users", params={"filter": f'userName sw "{unique}"', "cursor": "", "count": 3}).json()
    seen = [r["userName"] for r in first["Resources"]]
    gone = scim.get("/Users", params={"filter": f'userName eq "{seen[0]}"'}).json()["Resources"][0]["id"]
    scim.delete(f"/Users/{gone}")
    scim.post("/Users", json=user(f"{unique}-zz"))
    rest = walk_from(scim, f'userName sw "{unique}"', first["nextCursor"], 3)
    assert seen + rest == [*names, f"{unique}-zz"]


def walk_from(scim: httpx.Client, filter_text: str, cursor: str, count: int) -> list[str]:
    names: list[str] = []
    while cursor:
        page = scim.get("/Users", params={"filter": filter_text, "cursor": cursor, "count": count}).json()
        names += [r["userName"] for r in page["Resources"]]
        cursor = page.get("nextCursor", "")
    return names


def test_previous_cursor_goes_back_one_page(scim: httpx.Client, unique: str) -> None:
    names = seed(scim, unique, 6)
    params: dict[str, str | int] = {"filter": f'userName sw "{unique}"', "count": 2}
    first = scim.get("/Users", params={**params, "cursor": ""}).json()
    assert "previousCursor" not in first
    second = scim.get("/Users", params={**params, "cursor": first["nextCursor"]}).json()
    back = scim.get("/Users", params={**params, "cursor": second["previousCursor"]}).json()
    assert [r["userName"] for r in back["Resources"]] == names[:2]
    assert [r["userName"] for r in second["Resources"]] == names[2:4]


def test_forged_cursor_is_invalid_cursor(scim: httpx.Client) -> None:
    """RFC 9865 2.3: a cursor the server did not issue is 400 invalidCursor."""
    assert_error(scim.get("/Users", params={"cursor": "bm90LWEtY3Vyc29y", "count": 2}), 400, "invalidCursor")


def test_tampered_cursor_is_invalid(scim: httpx.Client, unique: str) -> None:
    seed(scim, unique, 3)
    page = scim.get("/Users", params={"filter": f'userName sw "{unique}"', "cursor": "", "count": 1}).json()
    cursor = page["nextCursor"]
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    response = scim.get("/Users", params={"filter": f'userName sw "{unique}"', "cursor": tampered, "count": 1})
    assert_error(response, 400, "invalidCursor")


def test_cursor_cannot_be_replayed_against_another_query(scim: httpx.Client, unique: str) -> None:
    seed(scim, unique, 3)
    page = scim.get("/Users", params={"filter": f'userName sw "{unique}"', "cursor": "", "count": 1}).json()
    other = scim.get("/Users", params={"filter": 'userName sw "someone-else"', "cursor": page["nextCursor"]})
    assert_error(other, 400, "invalidCursor")


def test_cursor_and_start_index_together_are_refused(scim: httpx.Client) -> None:
    assert_error(scim.get("/Users", params={"cursor": "", "startIndex": 1}), 400, "invalidValue")


def test_index_paging_keeps_working(scim: httpx.Client, unique: str) -> None:
    names = seed(scim, unique, 5)
    page = scim.get("/Users", params={"filter": f'userName sw "{unique}"', "startIndex": 4, "count": 10}).json()
    assert page["startIndex"] == 4 and [r["userName"] for r in page["Resources"]] == names[3:]
    assert "nextCursor" not in page


@pytest.mark.parametrize("endpoint", ["/Users/.search"])
def test_cursor_through_search(scim: httpx.Client, unique: str, endpoint: str) -> None:
    names = seed(scim, unique, 3)
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": f'userName sw "{unique}"',
        "cursor": "",
        "count": 2,
    }
    first = scim.post(endpoint, json=body).json()
    second = scim.post(endpoint, json={**body, "cursor": first["nextCursor"]}).json()
    assert [r["userName"] for r in first["Resources"] + second["Resources"]] == names


def test_service_provider_config_advertises_both_methods(scim: httpx.Client) -> None:
    pagination = scim.get("/ServiceProviderConfig").json()["pagination"]
    assert pagination["cursor"] is True and pagination["index"] is True
    assert pagination["defaultPaginationMethod"] == "cursor"
    assert pagination["cursorTimeout"] > 0
