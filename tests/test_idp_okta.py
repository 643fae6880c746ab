"""Okta's SCIM 2.0 provisioning client, replayed against a live scimward on SQLite and PostgreSQL.

Every request body here has the shape Okta's "SCIM 2.0 protocol reference" documents for an OIN
integration (developer.okta.com/docs/api/openapi/okta-scim/guides/scim-20): the ``userName eq``
lookup before a create, the create body with ``password`` and ``groups: []``, profile updates by PUT
of the whole user (with ``id``, ``groups`` and ``meta`` in it), (de)activation and password sync by
a path-less PATCH, and Group Push (create, rename by a path-less replace carrying the group ``id``,
membership by ``remove members[value eq ...]`` + ``add members`` in one request, full push by
``replace members``, DELETE). Okta never DELETEs users. Each step is checked by reading state back.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from tests.conftest import LiveServer, issue_token
from tests.scimdata import GROUP, PATCH_OP, USER, assert_error

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


# --- what Okta sends ---------------------------------------------------------------------------------


def okta_user(user_name: str, given: str = "Test", family: str = "User") -> dict[str, Any]:
    """The POST /Users body of Okta's "Create the User" step."""
    return {
        "schemas": [USER],
        "userName": user_name,
        "name": {"givenName": given, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work"}],
        "displayName": f"{given} {family}",
        "locale": "en-US",
        "externalId": "00ujl29u0le5T6Aj10h7",
        "groups": [],
        "password": "1mz050nq",
        "active": True,
    }


def okta_put(user_id: str, user_name: str, given: str, middle: str, family: str, active: bool = True) -> dict[str, Any]:
    """The PUT /Users/{id} body of Okta's "Update a specific User (PUT)": the whole user, id and meta too."""
    return {
        "schemas": [USER],
        "id": user_id,
        "userName": user_name,
        "name": {"givenName": given, "middleName": middle, "familyName": family},
        "emails": [{"primary": True, "value": user_name, "type": "work", "display": user_name}],
        "active": active,
        "groups": [],
        "meta": {"resourceType": "User"},
    }


def pathless_replace(value: dict[str, Any]) -> dict[str, Any]:
    """Okta's (de)activation, password sync and group rename: one replace with no path."""
    return {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "value": value}]}


def operations(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def okta_group(display_name: str) -> dict[str, Any]:
    """The POST /Groups body of Okta's Group Push."""
    return {"schemas": [GROUP], "displayName": display_name, "members": []}


def lookup_params(attribute: str, value: str) -> dict[str, str]:
    """Okta's existence check: a filter plus its constant paging parameters."""
    return {"filter": f'{attribute} eq "{value}"', "startIndex": "1", "count": "100"}


# --- helpers ------------------------------------------------------------------------------------------


def create_user(scim: httpx.Client, user_name: str, **names: str) -> dict[str, Any]:
    response = scim.post("/Users", json=okta_user(user_name, **names))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def create_group(scim: httpx.Client, display_name: str) -> dict[str, Any]:
    response = scim.post("/Groups", json=okta_group(display_name))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def read(scim: httpx.Client, path: str) -> dict[str, Any]:
    response = scim.get(path)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def read_list(scim: httpx.Client, path: str, params: dict[str, str]) -> dict[str, Any]:
    response = scim.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def member_ids(scim: httpx.Client, group_id: str) -> set[str]:
    return {m["value"] for m in read(scim, f"/Groups/{group_id}").get("members", [])}


def found_ids(scim: httpx.Client, path: str, params: dict[str, str]) -> list[str]:
    response = scim.get(path, params=params)
    assert response.status_code == 200, response.text
    return [r["id"] for r in response.json()["Resources"]]


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="scimward.scim")
    return caplog


def rewrites(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("scimward.scim"))


# --- the whole lifecycle, in Okta's order -------------------------------------------------------------------


def test_user_lifecycle_replays_in_okta_order(scim: httpx.Client, unique: str) -> None:
    """Assign -> lookup -> create -> lookup -> profile PUT -> deactivate -> reactivate, state read back each time."""
    user_name = f"okta.{unique}@okta.local"

    empty = scim.get("/Users", params=lookup_params("userName", user_name))
    assert empty.status_code == 200
    assert empty.json()["totalResults"] == 0

    created = create_user(scim, user_name)
    user_id = created["id"]
    assert found_ids(scim, "/Users", lookup_params("userName", user_name)) == [user_id]

    put = scim.put(f"/Users/{user_id}", json=okta_put(user_id, user_name, "Another", "Excited", "User"))
    assert put.status_code == 200, put.text
    assert read(scim, f"/Users/{user_id}")["name"] == {
        "givenName": "Another",
        "middleName": "Excited",
        "familyName": "User",
    }

    deactivated = scim.patch(f"/Users/{user_id}", json=pathless_replace({"active": False}))
    assert deactivated.status_code == 200, deactivated.text
    assert read(scim, f"/Users/{user_id}")["active"] is False

    reactivated = scim.patch(f"/Users/{user_id}", json=pathless_replace({"active": True}))
    assert reactivated.status_code == 200, reactivated.text
    after = read(scim, f"/Users/{user_id}")
    assert after["active"] is True
    assert after["userName"] == user_name
    assert after["name"]["middleName"] == "Excited"


def test_group_push_lifecycle_replays_in_okta_order(scim: httpx.Client, unique: str) -> None:
    """Push -> lookup -> rename -> membership update -> full push -> unlink with delete."""
    first, second = (create_user(scim, f"okta.{unique}.{n}@okta.local")["id"] for n in (1, 2))
    name = f"Okta Push {unique}"

    assert found_ids(scim, "/Groups", lookup_params("displayName", name)) == []
    group_id = create_group(scim, name)["id"]
    assert found_ids(scim, "/Groups", lookup_params("displayName", name)) == [group_id]

    renamed = scim.patch(f"/Groups/{group_id}", json=pathless_replace({"id": group_id, "displayName": f"{name} v2"}))
    assert renamed.status_code == 200, renamed.text
    assert read(scim, f"/Groups/{group_id}")["displayName"] == f"{name} v2"

    added = scim.patch(
        f"/Groups/{group_id}",
        json=operations({"op": "add", "path": "members", "value": [{"value": first, "display": "first"}]}),
    )
    assert added.status_code == 200, added.text
    assert member_ids(scim, group_id) == {first}

    swapped = scim.patch(
        f"/Groups/{group_id}",
        json=operations(
            {"op": "remove", "path": f'members[value eq "{first}"]'},
            {"op": "add", "path": "members", "value": [{"value": second, "display": "second"}]},
        ),
    )
    assert swapped.status_code == 200, swapped.text
    assert member_ids(scim, group_id) == {second}

    pushed = scim.patch(
        f"/Groups/{group_id}",
        json=operations({"op": "replace", "path": "members", "value": [{"value": first}, {"value": second}]}),
    )
    assert pushed.status_code == 200, pushed.text
    assert member_ids(scim, group_id) == {first, second}

    deleted = scim.delete(f"/Groups/{group_id}")
    assert deleted.status_code == 204
    assert_error(scim.get(f"/Groups/{group_id}"), 404)
    assert read(scim, f"/Users/{first}")["active"] is True


# --- users, one behaviour each -----------------------------------------------------------------------------


def test_lookup_of_an_unknown_user_is_an_empty_list_with_integer_paging(scim: httpx.Client, unique: str) -> None:
    """Okta reads totalResults, startIndex and itemsPerPage as integers, never strings."""
    body = read_list(scim, "/Users", lookup_params("userName", f"nobody.{unique}@okta.local"))
    assert body == {"schemas": [LIST_RESPONSE], "totalResults": 0, "startIndex": 1, "itemsPerPage": 0, "Resources": []}


def test_create_accepts_okta_body_and_returns_the_user_with_its_id(scim: httpx.Client, unique: str) -> None:
    """Okta links the account on the returned id; an empty 201 body fails in Okta."""
    user_name = f"okta.{unique}@okta.local"
    response = scim.post("/Users", json=okta_user(user_name))
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["Location"] == body["meta"]["location"]
    assert body["userName"] == user_name
    assert body["externalId"] == "00ujl29u0le5T6Aj10h7"
    assert body["active"] is True
    assert body["emails"] == [{"primary": True, "value": user_name, "type": "work"}]
    assert read(scim, f"/Users/{body['id']}")["displayName"] == "Test User"


def test_create_never_returns_the_password_okta_sends(scim: httpx.Client, unique: str) -> None:
    """Okta sends a placeholder password even with password sync off; it is writeOnly (RFC 7643 4.1.1)."""
    created = create_user(scim, f"okta.{unique}@okta.local")
    assert "password" not in created
    assert "password" not in read(scim, f"/Users/{created['id']}")


def test_create_of_an_existing_username_is_409_uniqueness(scim: httpx.Client, unique: str) -> None:
    """Okta stops the provisioning job on a 409 Error body."""
    create_user(scim, f"okta.{unique}@okta.local")
    assert_error(scim.post("/Users", json=okta_user(f"OKTA.{unique}@okta.local")), 409, "uniqueness")


def test_profile_put_ignores_id_groups_and_meta_it_carries(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """Okta's PUT echoes id, groups: [] and meta; readOnly input is ignored and each is logged."""
    user_name = f"okta.{unique}@okta.local"
    user_id = create_user(scim, user_name)["id"]
    response = scim.put(f"/Users/{user_id}", json=okta_put(user_id, user_name, "Another", "Excited", "User"))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user_id
    logged = rewrites(debug_log)
    assert "read-only-ignored: 'id'" in logged
    assert "read-only-ignored: 'groups'" in logged
    assert "read-only-ignored: 'meta'" in logged


def test_profile_put_replaces_what_it_omits(scim: httpx.Client, unique: str) -> None:
    """PUT is a replace (RFC 7644 3.5.1): attributes Okta no longer sends are gone."""
    user_name = f"okta.{unique}@okta.local"
    user_id = create_user(scim, user_name)["id"]
    scim.put(f"/Users/{user_id}", json=okta_put(user_id, user_name, "Another", "Excited", "User"))
    after = read(scim, f"/Users/{user_id}")
    assert "displayName" not in after and "locale" not in after and "externalId" not in after


def test_profile_put_keeps_the_users_group_memberships(scim: httpx.Client, unique: str) -> None:
    """Okta's PUT says groups: [], which is readOnly: it must not drop memberships pushed separately."""
    user_name = f"okta.{unique}@okta.local"
    user_id = create_user(scim, user_name)["id"]
    group_id = create_group(scim, f"Okta {unique}")["id"]
    scim.patch(f"/Groups/{group_id}", json=operations({"op": "add", "path": "members", "value": [{"value": user_id}]}))
    scim.put(f"/Users/{user_id}", json=okta_put(user_id, user_name, "Another", "", "User"))
    assert [g["value"] for g in read(scim, f"/Users/{user_id}")["groups"]] == [group_id]


def test_deactivation_is_a_pathless_replace_and_answers_the_updated_user(scim: httpx.Client, unique: str) -> None:
    """Okta's default answer to PATCH: 200 with the updated resource."""
    user_id = create_user(scim, f"okta.{unique}@okta.local")["id"]
    response = scim.patch(f"/Users/{user_id}", json=pathless_replace({"active": False}))
    assert response.status_code == 200, response.text
    assert response.json()["id"] == user_id
    assert response.json()["active"] is False


def test_deactivated_user_is_still_read_and_found(scim: httpx.Client, unique: str) -> None:
    """Deactivation is not deletion: GET by id and by userName still return the user."""
    user_name = f"okta.{unique}@okta.local"
    user_id = create_user(scim, user_name)["id"]
    scim.patch(f"/Users/{user_id}", json=pathless_replace({"active": False}))
    assert read(scim, f"/Users/{user_id}")["active"] is False
    assert found_ids(scim, "/Users", lookup_params("userName", user_name)) == [user_id]
    inactive = {"filter": f'active eq false and userName eq "{user_name}"'}
    assert found_ids(scim, "/Users", inactive) == [user_id]


def test_reactivation_sets_active_again(scim: httpx.Client, unique: str) -> None:
    user_id = create_user(scim, f"okta.{unique}@okta.local")["id"]
    scim.patch(f"/Users/{user_id}", json=pathless_replace({"active": False}))
    response = scim.patch(f"/Users/{user_id}", json=pathless_replace({"active": True}))
    assert response.status_code == 200, response.text
    assert read(scim, f"/Users/{user_id}")["active"] is True


def test_deactivation_by_put_with_active_false(scim: httpx.Client, unique: str) -> None:
    """App Integration Wizard integrations deactivate with a PUT of the whole user, active false."""
    user_name = f"okta.{unique}@okta.local"
    user_id = create_user(scim, user_name)["id"]
    response = scim.put(f"/Users/{user_id}", json=okta_put(user_id, user_name, "Test", "", "User", active=False))
    assert response.status_code == 200, response.text
    assert read(scim, f"/Users/{user_id}")["active"] is False


def test_password_sync_is_accepted_and_never_returned(scim: httpx.Client, unique: str) -> None:
    """Okta syncs passwords by PATCH replace {"password": ...}; the password is writeOnly."""
    user_id = create_user(scim, f"okta.{unique}@okta.local")["id"]
    response = scim.patch(f"/Users/{user_id}", json=pathless_replace({"password": "t1meMa$heen"}))
    assert response.status_code == 200, response.text
    assert "password" not in response.json()
    assert "password" not in read(scim, f"/Users/{user_id}")
    assert read(scim, f"/Users/{user_id}")["meta"]["version"] == 'W/"2"'


def test_import_pages_are_stable_and_complete(scim: httpx.Client, unique: str) -> None:
    """Okta imports with startIndex/count; pages must neither repeat nor skip a user."""
    ids = {create_user(scim, f"okta.{unique}.{n}@okta.local")["id"] for n in range(5)}
    seen: list[str] = []
    for start in (1, 3, 5):
        params = {"filter": f'userName sw "okta.{unique}."', "startIndex": str(start), "count": "2"}
        page = read_list(scim, "/Users", params)
        assert page["totalResults"] == 5 and page["startIndex"] == start
        seen += [r["id"] for r in page["Resources"]]
    assert sorted(seen) == sorted(ids)


# --- groups, one behaviour each ---------------------------------------------------------------------------


def test_group_push_creates_a_group_without_members(scim: httpx.Client, unique: str) -> None:
    created = create_group(scim, f"Okta {unique}")
    assert created["displayName"] == f"Okta {unique}"
    assert created.get("members", []) == []
    assert read(scim, f"/Groups/{created['id']}")["displayName"] == f"Okta {unique}"


def test_group_lookup_by_display_name_finds_the_pushed_group(scim: httpx.Client, unique: str) -> None:
    group_id = create_group(scim, f"Okta {unique}")["id"]
    assert found_ids(scim, "/Groups", lookup_params("displayName", f"Okta {unique}")) == [group_id]


def test_group_rename_carries_the_read_only_id_which_is_ignored(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """Okta renames with {"op": "replace", "value": {"id": ..., "displayName": ...}}: id is not an error."""
    group_id = create_group(scim, f"Okta {unique}")["id"]
    response = scim.patch(
        f"/Groups/{group_id}", json=pathless_replace({"id": group_id, "displayName": f"Okta {unique} renamed"})
    )
    assert response.status_code == 200, response.text
    assert read(scim, f"/Groups/{group_id}")["displayName"] == f"Okta {unique} renamed"
    assert "server-attribute-ignored: 'id'" in rewrites(debug_log)


def test_group_rename_with_the_same_name_changes_nothing(scim: httpx.Client, unique: str) -> None:
    """Okta repeats the rename with every membership update; an unchanged name is no new version."""
    group_id = create_group(scim, f"Okta {unique}")["id"]
    same_name = pathless_replace({"id": group_id, "displayName": f"Okta {unique}"})
    response = scim.patch(f"/Groups/{group_id}", json=same_name)
    assert response.status_code == 200, response.text
    assert read(scim, f"/Groups/{group_id}")["meta"]["version"] == 'W/"1"'


def test_membership_update_removes_and_adds_in_one_request(scim: httpx.Client, unique: str) -> None:
    """Okta's example: remove members[value eq "old"] then add members [{value, display}]."""
    old, new = (create_user(scim, f"okta.{unique}.{n}@okta.local")["id"] for n in (1, 2))
    group_id = create_group(scim, f"Okta {unique}")["id"]
    scim.patch(f"/Groups/{group_id}", json=operations({"op": "add", "path": "members", "value": [{"value": old}]}))
    response = scim.patch(
        f"/Groups/{group_id}",
        json=operations(
            {"op": "remove", "path": f'members[value eq "{old}"]'},
            {"op": "add", "path": "members", "value": [{"value": new, "display": f"okta.{unique}.2@okta.local"}]},
        ),
    )
    assert response.status_code == 200, response.text
    assert member_ids(scim, group_id) == {new}


def test_member_display_okta_sends_is_not_stored(scim: httpx.Client, unique: str) -> None:
    """members.display is readOnly: the group never shows the client's text as a member's name."""
    user_id = create_user(scim, f"okta.{unique}@okta.local")["id"]
    group_id = create_group(scim, f"Okta {unique}")["id"]
    scim.patch(
        f"/Groups/{group_id}",
        json=operations({"op": "add", "path": "members", "value": [{"value": user_id, "display": "spoofed"}]}),
    )
    [member] = read(scim, f"/Groups/{group_id}")["members"]
    assert member["value"] == user_id
    assert member.get("display") != "spoofed"


def test_full_membership_push_by_replace_sets_exactly_the_members_given(scim: httpx.Client, unique: str) -> None:
    a, b, c = (create_user(scim, f"okta.{unique}.{n}@okta.local")["id"] for n in (1, 2, 3))
    group_id = create_group(scim, f"Okta {unique}")["id"]
    scim.patch(f"/Groups/{group_id}", json=operations({"op": "add", "path": "members", "value": [{"value": a}]}))
    response = scim.patch(
        f"/Groups/{group_id}",
        json=operations(
            {"op": "replace", "path": "members", "value": [{"value": b, "display": "b"}, {"value": c, "display": "c"}]}
        ),
    )
    assert response.status_code == 200, response.text
    assert member_ids(scim, group_id) == {b, c}


def test_membership_push_by_put_replaces_the_members(scim: httpx.Client, unique: str) -> None:
    """App Integration Wizard integrations update groups by PUT with the whole member list."""
    a, b = (create_user(scim, f"okta.{unique}.{n}@okta.local")["id"] for n in (1, 2))
    group_id = create_group(scim, f"Okta {unique}")["id"]
    scim.patch(f"/Groups/{group_id}", json=operations({"op": "add", "path": "members", "value": [{"value": a}]}))
    response = scim.put(
        f"/Groups/{group_id}",
        json={"schemas": [GROUP], "displayName": f"Okta {unique}", "members": [{"value": b, "display": "b"}]},
    )
    assert response.status_code == 200, response.text
    assert member_ids(scim, group_id) == {b}


def test_unlinking_with_delete_removes_the_group_but_not_its_users(scim: httpx.Client, unique: str) -> None:
    user_id = create_user(scim, f"okta.{unique}@okta.local")["id"]
    group_id = create_group(scim, f"Okta {unique}")["id"]
    scim.patch(f"/Groups/{group_id}", json=operations({"op": "add", "path": "members", "value": [{"value": user_id}]}))
    response = scim.delete(f"/Groups/{group_id}")
    assert response.status_code == 204
    assert response.content == b""
    assert_error(scim.get(f"/Groups/{group_id}"), 404)
    assert read(scim, f"/Users/{user_id}").get("groups", []) == []


def test_patch_answers_204_for_a_token_configured_for_no_content(live_server: LiveServer, unique: str) -> None:
    """Okta accepts either answer; a token issued with --patch-response no_content gets 204."""
    token = issue_token(live_server.database_url, f"okta-{unique}", patch_response="no_content")
    with live_server.client(token) as okta:
        user_id = create_user(okta, f"okta.{unique}@okta.local")["id"]
        response = okta.patch(f"/Users/{user_id}", json=pathless_replace({"active": False}))
        assert response.status_code == 204
        assert response.content == b""
        assert read(okta, f"/Users/{user_id}")["active"] is False
