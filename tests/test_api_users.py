"""Users over HTTP (RFC 7644 3.3-3.6), on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from scimward.store.identity import _positions as positions
from scimward.store.identity.passwords import verify_password
from tests.conftest import LiveServer
from tests.scimdata import ENTERPRISE, USER, assert_error, group, patch, user


def create(scim: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    response = scim.post("/Users", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_create_returns_201_with_location_etag_and_meta(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.3: 201, Location header, the resource with id and meta."""
    response = scim.post("/Users", json=user(f"{unique}@corp.example", active=True))
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/scim+json"
    body = response.json()
    assert response.headers["location"] == body["meta"]["location"]
    assert body["meta"]["location"].endswith(f"/Users/{body['id']}")
    assert response.headers["etag"] == body["meta"]["version"]
    assert body["meta"]["version"].startswith('W/"')
    assert body["meta"]["resourceType"] == "User"
    assert body["meta"]["created"].endswith("Z")
    assert body["schemas"] == [USER]


def test_requests_in_plain_application_json_are_accepted(scim: httpx.Client, unique: str) -> None:
    response = scim.post(
        "/Users",
        content=httpx.Request("POST", "/", json=user(unique)).content,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201


def test_get_by_id_returns_what_was_created(scim: httpx.Client, unique: str) -> None:
    created = create(scim, user(unique, name={"givenName": "Ada"}, **{ENTERPRISE: {"department": "R&D"}}))
    fetched = scim.get(f"/Users/{created['id']}").json()
    assert fetched["name"] == {"givenName": "Ada"}
    assert fetched[ENTERPRISE] == {"department": "R&D"}
    assert fetched["schemas"] == [USER, ENTERPRISE]


def test_unknown_id_is_404(scim: httpx.Client) -> None:
    assert_error(scim.get("/Users/does-not-exist"), 404)


def test_username_is_unique_case_insensitively(scim: httpx.Client, unique: str) -> None:
    """RFC 7643 4.1.1: userName is unique and case-insensitive: 409 uniqueness."""
    create(scim, user(f"Dup-{unique}"))
    assert_error(scim.post("/Users", json=user(f"dup-{unique.upper()}")), 409, "uniqueness")


def test_missing_username_is_400_invalid_value(scim: httpx.Client) -> None:
    """RFC 7643 2.2: required attributes."""
    assert_error(scim.post("/Users", json={"schemas": [USER], "displayName": "x"}), 400, "invalidValue")


def test_password_is_never_returned(scim: httpx.Client, unique: str) -> None:
    """RFC 7643 4.1.1: password has returned "never"."""
    created = create(scim, user(unique, password="s3cret!"))
    assert "password" not in created
    assert "password" not in scim.get(f"/Users/{created['id']}").json()
    assert "password" not in scim.get(f"/Users/{created['id']}?attributes=password").json()


def test_read_only_input_is_ignored(scim: httpx.Client, unique: str) -> None:
    """RFC 7643 2.2: readOnly values sent by a client are ignored."""
    created = create(scim, user(unique, id="chosen-by-client", meta={"resourceType": "User"}, groups=[{"value": "x"}]))
    assert created["id"] != "chosen-by-client"
    assert "groups" not in created


def test_attributes_parameter_limits_the_response(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.9: attributes= returns those plus the always-returned ones."""
    created = create(scim, user(unique, displayName="Ada", title="Countess"))
    body = scim.get(f"/Users/{created['id']}", params={"attributes": "displayName"}).json()
    assert set(body) == {"schemas", "id", "displayName", "meta"}


def test_excluded_attributes_drops_them(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.9: excludedAttributes= removes default attributes."""
    created = create(scim, user(unique, displayName="Ada", title="Countess"))
    body = scim.get(f"/Users/{created['id']}", params={"excludedAttributes": "title,displayName"}).json()
    assert "title" not in body and "displayName" not in body and body["userName"] == unique


def test_attributes_apply_to_lists_too(scim: httpx.Client, unique: str) -> None:
    create(scim, user(unique, title="x"))
    listed = scim.get("/Users", params={"filter": f'userName eq "{unique}"', "attributes": "userName"}).json()
    assert set(listed["Resources"][0]) == {"schemas", "id", "userName", "meta"}


def test_put_replaces_the_resource_and_bumps_the_version(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.5.1: PUT replaces; attributes not sent are cleared."""
    created = create(scim, user(unique, title="Engineer", displayName="A"))
    response = scim.put(f"/Users/{created['id']}", json=user(unique, displayName="B"))
    assert response.status_code == 200
    body = response.json()
    assert body["displayName"] == "B" and "title" not in body
    assert body["meta"]["version"] != created["meta"]["version"]  # type: ignore[index]
    assert body["meta"]["created"] == created["meta"]["created"]  # type: ignore[index]


def test_put_to_a_taken_username_is_409(scim: httpx.Client, unique: str) -> None:
    create(scim, user(f"{unique}-a"))
    other = create(scim, user(f"{unique}-b"))
    assert_error(scim.put(f"/Users/{other['id']}", json=user(f"{unique}-A")), 409, "uniqueness")


def test_patch_replace_active(scim: httpx.Client, unique: str) -> None:
    created = create(scim, user(unique, active=True))
    response = scim.patch(f"/Users/{created['id']}", json=patch({"op": "replace", "path": "active", "value": False}))
    assert response.status_code == 200
    assert response.json()["active"] is False


def test_delete_then_404(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.6: 204, then the resource is gone."""
    created = create(scim, user(unique))
    assert scim.delete(f"/Users/{created['id']}").status_code == 204
    assert_error(scim.get(f"/Users/{created['id']}"), 404)
    assert_error(scim.delete(f"/Users/{created['id']}"), 404)


def test_deleting_a_user_removes_its_memberships(scim: httpx.Client, unique: str) -> None:
    member = create(scim, user(unique))
    created = scim.post("/Groups", json=group(f"g-{unique}", [str(member["id"])])).json()
    scim.delete(f"/Users/{member['id']}")
    assert "members" not in scim.get(f"/Groups/{created['id']}").json()


def test_user_lists_its_groups(scim: httpx.Client, unique: str) -> None:
    """RFC 7643 4.1.2: groups is readOnly and derived from group membership."""
    member = create(scim, user(unique))
    created = scim.post("/Groups", json=group(f"g-{unique}", [str(member["id"])])).json()
    groups = scim.get(f"/Users/{member['id']}").json()["groups"]
    assert groups == [{"value": created["id"], "display": f"g-{unique}", "type": "direct", "$ref": groups[0]["$ref"]}]
    assert groups[0]["$ref"].endswith(f"/Groups/{created['id']}")


def test_list_pages_with_start_index_and_count(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.4.2.4: 1-based startIndex, count, totalResults."""
    for n in range(5):
        create(scim, user(f"{unique}-{n}"))
    page = scim.get(
        "/Users", params={"filter": f'userName sw "{unique}"', "startIndex": 2, "count": 2, "sortBy": "userName"}
    ).json()
    assert page["totalResults"] == 5
    assert page["startIndex"] == 2 and page["itemsPerPage"] == 2
    assert [r["userName"] for r in page["Resources"]] == [f"{unique}-1", f"{unique}-2"]


def test_count_zero_returns_only_the_total(scim: httpx.Client, unique: str) -> None:
    create(scim, user(unique))
    page = scim.get("/Users", params={"filter": f'userName eq "{unique}"', "count": 0}).json()
    assert page["totalResults"] == 1 and page["Resources"] == []


def test_sort_descending(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.4.2.3: sortBy and sortOrder."""
    for n in (2, 0, 1):
        create(scim, user(f"{unique}-{n}"))
    page = scim.get(
        "/Users", params={"filter": f'userName sw "{unique}"', "sortBy": "userName", "sortOrder": "descending"}
    ).json()
    assert [r["userName"] for r in page["Resources"]] == [f"{unique}-2", f"{unique}-1", f"{unique}-0"]


def test_bad_paging_parameters_are_400(scim: httpx.Client) -> None:
    assert_error(scim.get("/Users", params={"count": "ten"}), 400, "invalidValue")
    assert_error(scim.get("/Users", params={"sortOrder": "sideways"}), 400, "invalidValue")


def test_inactive_users_are_returned_and_filterable(scim: httpx.Client, unique: str) -> None:
    created = create(scim, user(unique, active=False))
    assert scim.get(f"/Users/{created['id']}").json()["active"] is False
    found = scim.get("/Users", params={"filter": f'userName eq "{unique}" and active eq false'}).json()
    assert found["totalResults"] == 1


def test_password_is_stored_only_as_an_argon2_hash(live_server: LiveServer, unique: str) -> None:
    """RFC 7643 7: writeOnly, returned never; and an identity product never keeps it readable."""
    with live_server.client() as scim:
        created = create(scim, user(unique, password="Tr0ub4dor&3"))
        scim.patch(f"/Users/{created['id']}", json=patch({"op": "replace", "path": "password", "value": "n3w-Secret"}))
    engine = sa.create_engine(live_server.database_url)
    with engine.connect() as conn:
        row = conn.execute(
            sa.text("select doc, password_hash from identities where id = :id"), {"id": created["id"]}
        ).one()
    engine.dispose()
    assert "Tr0ub4dor" not in str(row.doc) and "n3w-Secret" not in str(row.doc)
    assert row.password_hash.startswith("$argon2id$")
    assert verify_password(row.password_hash, "n3w-Secret")


def test_unfiltered_total_is_exact_after_creates_and_deletes(scim: httpx.Client, unique: str) -> None:
    """totalResults of an unfiltered list comes from maintained counts; it must equal a real count."""
    ids = [create(scim, user(f"{unique}-{n}"))["id"] for n in range(3)]
    scim.delete(f"/Users/{ids[0]}")
    for resource in ("/Users", "/Groups"):
        unfiltered = scim.get(resource, params={"count": 0}).json()["totalResults"]
        counted = scim.get(resource, params={"count": 0, "filter": "id pr"}).json()["totalResults"]
        assert unfiltered == counted


def test_deep_index_pages_agree_with_a_plain_scan(
    scim: httpx.Client, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deep unfiltered pages start from the position index's anchors; they must be exactly the rows a
    plain walk gives (``id pr`` takes the unindexed path), also after a removal shifts positions."""
    monkeypatch.setattr(positions, "STRIDE", 4)
    ids = [create(scim, user(f"{unique}-{n:02d}"))["id"] for n in range(12)]

    def page(start: int, **extra: str) -> list[str]:
        body = scim.get("/Users", params={"startIndex": start, "count": 7, "attributes": "id", **extra}).json()
        return [r["id"] for r in body["Resources"]]

    total = scim.get("/Users", params={"count": 0}).json()["totalResults"]
    for start in (1, 5, 9, total - 8, total - 2):
        assert page(start) == page(start, filter="id pr")
    scim.delete(f"/Users/{ids[3]}")
    for start in (5, total - 8):
        assert page(start) == page(start, filter="id pr")
