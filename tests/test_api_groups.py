"""Groups and membership over HTTP (RFC 7643 4.2, RFC 7644 3.5.2), on SQLite and PostgreSQL."""

from __future__ import annotations

import httpx

from tests.scimdata import assert_error, group, patch, user


def new_user(scim: httpx.Client, name: str) -> str:
    response = scim.post("/Users", json=user(name))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def new_group(scim: httpx.Client, name: str, members: list[str] | None = None) -> dict[str, object]:
    response = scim.post("/Groups", json=group(name, members))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def member_ids(scim: httpx.Client, group_id: object) -> set[str]:
    body = scim.get(f"/Groups/{group_id}").json()
    return {m["value"] for m in body.get("members", [])}


def test_create_group_with_members(scim: httpx.Client, unique: str) -> None:
    ids = [new_user(scim, f"{unique}-{n}") for n in range(3)]
    created = new_group(scim, f"g-{unique}", ids)
    members: list[dict[str, str]] = created["members"]  # type: ignore[assignment]
    assert {m["value"] for m in members} == set(ids)
    assert all(m["type"] == "User" and m["$ref"].endswith(f"/Users/{m['value']}") for m in members)


def test_unknown_member_is_rejected_and_nothing_is_written(scim: httpx.Client, unique: str) -> None:
    """No dangling members: 400 invalidValue, and the group is not created."""
    real = new_user(scim, unique)
    response = scim.post("/Groups", json=group(f"g-{unique}", [real, "no-such-id"]))
    assert_error(response, 400, "invalidValue")
    found = scim.get("/Groups", params={"filter": f'displayName eq "g-{unique}"'}).json()
    assert found["totalResults"] == 0


def test_created_group_lists_a_repeated_member_once_and_checks_declared_types(scim: httpx.Client, unique: str) -> None:
    member = new_user(scim, unique)
    body = group(f"g-{unique}", [member])
    body["members"] = [{"value": member, "type": "User"}, {"value": member}]
    response = scim.post("/Groups", json=body)
    assert response.status_code == 201, response.text
    assert [m["value"] for m in response.json()["members"]] == [member]
    assert member_ids(scim, response.json()["id"]) == {member}
    body = group(f"h-{unique}", [member])
    body["members"] = [{"value": member, "type": "Group"}]
    assert_error(scim.post("/Groups", json=body), 400, "invalidValue")
    found = scim.get("/Groups", params={"filter": f'displayName eq "h-{unique}"'}).json()
    assert found["totalResults"] == 0


def test_patch_add_one_member(scim: httpx.Client, unique: str) -> None:
    first, second = new_user(scim, f"{unique}-1"), new_user(scim, f"{unique}-2")
    created = new_group(scim, f"g-{unique}", [first])
    response = scim.patch(
        f"/Groups/{created['id']}", json=patch({"op": "add", "path": "members", "value": [{"value": second}]})
    )
    assert response.status_code == 200
    assert member_ids(scim, created["id"]) == {first, second}


def test_patch_add_unknown_member_is_rejected_atomically(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.5.2: all operations apply or none; the rename is not kept."""
    first = new_user(scim, unique)
    created = new_group(scim, f"g-{unique}", [first])
    response = scim.patch(
        f"/Groups/{created['id']}",
        json=patch(
            {"op": "replace", "path": "displayName", "value": f"renamed-{unique}"},
            {"op": "add", "path": "members", "value": [{"value": "ghost"}]},
        ),
    )
    assert_error(response, 400, "invalidValue")
    assert scim.get(f"/Groups/{created['id']}").json()["displayName"] == f"g-{unique}"


def test_patch_remove_member_by_value_filter(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.5.2.2: remove members[value eq "..."]."""
    first, second = new_user(scim, f"{unique}-1"), new_user(scim, f"{unique}-2")
    created = new_group(scim, f"g-{unique}", [first, second])
    response = scim.patch(
        f"/Groups/{created['id']}", json=patch({"op": "remove", "path": f'members[value eq "{first}"]'})
    )
    assert response.status_code == 200
    assert member_ids(scim, created["id"]) == {second}


def test_patch_replace_members(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.5.2.3: replace on members replaces the whole set."""
    first, second = new_user(scim, f"{unique}-1"), new_user(scim, f"{unique}-2")
    created = new_group(scim, f"g-{unique}", [first])
    scim.patch(
        f"/Groups/{created['id']}", json=patch({"op": "replace", "path": "members", "value": [{"value": second}]})
    )
    assert member_ids(scim, created["id"]) == {second}


def test_patch_remove_all_members(scim: httpx.Client, unique: str) -> None:
    first = new_user(scim, unique)
    created = new_group(scim, f"g-{unique}", [first])
    scim.patch(f"/Groups/{created['id']}", json=patch({"op": "remove", "path": "members"}))
    assert member_ids(scim, created["id"]) == set()


def test_nested_groups_are_members_of_type_group(scim: httpx.Client, unique: str) -> None:
    inner = new_group(scim, f"inner-{unique}")
    outer = new_group(scim, f"outer-{unique}", [str(inner["id"])])
    assert outer["members"][0]["type"] == "Group"  # type: ignore[index]


def test_a_group_cannot_contain_itself(scim: httpx.Client, unique: str) -> None:
    created = new_group(scim, f"g-{unique}")
    response = scim.patch(
        f"/Groups/{created['id']}", json=patch({"op": "add", "path": "members", "value": [{"value": created["id"]}]})
    )
    assert_error(response, 400, "invalidValue")


def test_excluded_members(scim: httpx.Client, unique: str) -> None:
    first = new_user(scim, unique)
    created = new_group(scim, f"g-{unique}", [first])
    body = scim.get(f"/Groups/{created['id']}", params={"excludedAttributes": "members"}).json()
    assert "members" not in body and body["displayName"] == f"g-{unique}"


def test_put_replaces_members(scim: httpx.Client, unique: str) -> None:
    first, second = new_user(scim, f"{unique}-1"), new_user(scim, f"{unique}-2")
    created = new_group(scim, f"g-{unique}", [first])
    response = scim.put(f"/Groups/{created['id']}", json=group(f"g-{unique}", [second]))
    assert response.status_code == 200
    assert {m["value"] for m in response.json()["members"]} == {second}


def test_group_display_name_is_required(scim: httpx.Client) -> None:
    assert_error(
        scim.post("/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]}), 400, "invalidValue"
    )


def test_delete_group_keeps_its_members(scim: httpx.Client, unique: str) -> None:
    first = new_user(scim, unique)
    created = new_group(scim, f"g-{unique}", [first])
    assert scim.delete(f"/Groups/{created['id']}").status_code == 204
    assert scim.get(f"/Users/{first}").status_code == 200


def test_large_group_member_patch_touches_only_named_rows(scim: httpx.Client, unique: str) -> None:
    """Adding and removing one member of a 600-member group; the rest stay."""
    ids = [str(r["id"]) for r in (scim.post("/Users", json=user(f"{unique}-{n:04d}")).json() for n in range(601))]
    created = new_group(scim, f"big-{unique}", ids[:600])
    scim.patch(
        f"/Groups/{created['id']}",
        json=patch(
            {"op": "add", "path": "members", "value": [{"value": ids[600]}]},
            {"op": "remove", "path": f'members[value eq "{ids[0]}"]'},
        ),
    )
    assert member_ids(scim, created["id"]) == set(ids[1:])
