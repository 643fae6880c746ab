"""Microsoft Entra ID's provisioning service, replayed against a live scimward on SQLite and PostgreSQL.

The request bodies follow Microsoft's "Tutorial: Develop and plan provisioning for a SCIM endpoint"
(the Create User / Get User by query / Update User [multi-valued] and [single-valued] / Disable User /
Delete User / Create Group / Get Group with ``excludedAttributes=members`` / Update Group [add and
remove members] examples) and "Known issues and resolutions with SCIM 2.0 protocol compliance of the
Microsoft Entra user provisioning service", which shows both what the default job sends (``Replace``
with capitals, ``"value": "False"``, ``Remove`` of members with a value list) and what it sends with
``?aadOptscim062020`` on the Tenant URL (lower-case ops, real booleans, path-less replace with dotted
and URN-qualified keys, ``members[value eq "..."]``). Both dialects must work; each step is checked
by reading state back, and each rewrite must be logged on ``scimward.scim`` so an admin can see it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests import forkserver
from tests.conftest import LiveServer, issue_token
from tests.scimdata import ENTERPRISE, GROUP, PATCH_OP, USER, assert_error

ADSCIM_GROUP = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"


# --- what Entra sends ----------------------------------------------------------------------------------


def entra_user(user_name: str, manager: str | None = None) -> dict[str, Any]:
    """Entra's Create User body, with the enterprise extension of its default attribute mappings."""
    body: dict[str, Any] = {
        "schemas": [USER, ENTERPRISE],
        "externalId": str(uuid.uuid4()),
        "userName": user_name,
        "active": True,
        "emails": [{"primary": True, "type": "work", "value": user_name}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"},
        "roles": [],
        ENTERPRISE: {"employeeNumber": "1815", "department": "Analytical Engines"},
    }
    if manager is not None:
        body[ENTERPRISE]["manager"] = manager
    return body


def entra_group(display_name: str) -> dict[str, Any]:
    """Entra's Create Group body: its own ADSCIM schema URN, an externalId, meta.resourceType, no members."""
    return {
        "schemas": [GROUP, ADSCIM_GROUP],
        "externalId": str(uuid.uuid4()),
        "displayName": display_name,
        "meta": {"resourceType": "Group"},
    }


def operations(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(ops)}


def query(attribute: str, value: str) -> dict[str, str]:
    return {"filter": f'{attribute} eq "{value}"'}


def group_query(display_name: str) -> dict[str, str]:
    """Entra never wants members back when it looks a group up."""
    return {"excludedAttributes": "members", "filter": f'displayName eq "{display_name}"'}


# --- helpers -----------------------------------------------------------------------------------------------


def create_user(scim: httpx.Client, user_name: str, manager: str | None = None) -> str:
    response = scim.post("/Users", json=entra_user(user_name, manager))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def create_group(scim: httpx.Client, display_name: str) -> str:
    response = scim.post("/Groups", json=entra_group(display_name))
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def read(scim: httpx.Client, path: str, **params: str) -> dict[str, Any]:
    response = scim.get(path, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def patched(scim: httpx.Client, path: str, *ops: dict[str, Any]) -> httpx.Response:
    response = scim.patch(path, json=operations(*ops))
    assert response.status_code == 200, response.text  # this token asks for the resource (204: the entra fixture)
    return response


def member_ids(scim: httpx.Client, group_id: str) -> set[str]:
    return {m["value"] for m in read(scim, f"/Groups/{group_id}").get("members", [])}


def found_ids(scim: httpx.Client, path: str, params: dict[str, str]) -> list[str]:
    return [r["id"] for r in read(scim, path, **params)["Resources"]]


def manager_of(scim: httpx.Client, user_id: str) -> Any:
    return read(scim, f"/Users/{user_id}").get(ENTERPRISE, {}).get("manager")


@pytest.fixture
def entra(live_server: LiveServer, unique: str) -> Iterator[httpx.Client]:
    """A client with a token issued as the docs recommend for Entra: PATCH answers 204."""
    token = issue_token(live_server.database_url, f"entra-{unique}", patch_response="no_content")
    with live_server.client(token) as client:
        yield client


@pytest.fixture
def debug_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="scimward.scim")
    return caplog


def rewrites(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("scimward.scim"))


@contextmanager
def memberships_unreadable(database_url: str) -> Iterator[None]:
    """The membership table renamed away meanwhile: any statement that reads it fails.

    Checked in the database itself, so it holds whatever path a read takes to the driver.
    """
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("ALTER TABLE memberships RENAME TO memberships_hidden"))
        try:
            yield
        finally:
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE memberships_hidden RENAME TO memberships"))
    finally:
        engine.dispose()


# --- the whole cycle, in Entra's order ---------------------------------------------------------------------


def test_provisioning_cycle_replays_in_entra_order(scim: httpx.Client, entra: httpx.Client, unique: str) -> None:
    """Query -> create -> update (both dialects) -> manager -> group -> members in and out -> delete."""
    user_name = f"ada.{unique}@contoso.test"
    boss = create_user(scim, f"boss.{unique}@contoso.test")

    assert read(scim, "/Users", **query("userName", user_name))["totalResults"] == 0
    user_id = create_user(scim, user_name)
    assert found_ids(scim, "/Users", query("userName", user_name)) == [user_id]

    patched(
        scim,
        f"/Users/{user_id}",
        {"op": "Replace", "path": "active", "value": "False"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"lovelace.{unique}@contoso.test"},
        {
            "op": "replace",
            "value": {"displayName": "Countess", "name.familyName": "King", f"{ENTERPRISE}:employeeNumber": "1852"},
        },
    )
    after = read(scim, f"/Users/{user_id}")
    assert after["active"] is False
    assert after["emails"] == [{"primary": True, "type": "work", "value": f"lovelace.{unique}@contoso.test"}]
    assert (after["displayName"], after["name"]["familyName"]) == ("Countess", "King")
    assert after[ENTERPRISE]["employeeNumber"] == "1852"

    patched(scim, f"/Users/{user_id}", {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss})
    assert manager_of(scim, user_id) == {"value": boss}
    patched(scim, f"/Users/{user_id}", {"op": "Remove", "path": f'manager[value eq "{boss}"]'})
    assert manager_of(scim, user_id) is None

    group_name = f"Engines {unique}"
    assert read(scim, "/Groups", **group_query(group_name))["totalResults"] == 0
    group_id = create_group(scim, group_name)
    [found] = read(scim, "/Groups", **group_query(group_name))["Resources"]
    assert found["id"] == group_id and "members" not in found

    added = entra.patch(
        f"/Groups/{group_id}",
        json=operations(
            {"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}, {"$ref": None, "value": boss}]}
        ),
    )
    assert added.status_code == 204
    assert member_ids(scim, group_id) == {user_id, boss}

    removed = entra.patch(
        f"/Groups/{group_id}",
        json=operations({"op": "Remove", "path": "members", "value": [{"$ref": None, "value": boss}]}),
    )
    assert removed.status_code == 204
    assert member_ids(scim, group_id) == {user_id}

    renamed = entra.patch(
        f"/Groups/{group_id}", json=operations({"op": "Replace", "path": "displayName", "value": f"{group_name} v2"})
    )
    assert renamed.status_code == 204 and renamed.content == b""
    assert read(scim, f"/Groups/{group_id}", excludedAttributes="members")["displayName"] == f"{group_name} v2"

    assert scim.delete(f"/Users/{user_id}").status_code == 204
    assert_error(scim.get(f"/Users/{user_id}"), 404)
    assert member_ids(scim, group_id) == set()
    assert scim.delete(f"/Groups/{group_id}").status_code == 204
    assert_error(scim.get(f"/Groups/{group_id}"), 404)


# --- Test Connection and lookups ------------------------------------------------------------------------


def test_test_connection_queries_answer_empty_list_responses(scim: httpx.Client) -> None:
    """Test Connection looks up a random user and group that do not exist: 200 with no Resources, not 404."""
    random = str(uuid.uuid4())
    users = read(scim, "/Users", **query("userName", random))
    groups = read(scim, "/Groups", **group_query(random))
    assert (users["totalResults"], users["Resources"]) == (0, [])
    assert (groups["totalResults"], groups["Resources"]) == (0, [])


def test_user_is_found_by_external_id(scim: httpx.Client, unique: str) -> None:
    """Entra may match on externalId (its objectId or mailNickname) instead of userName."""
    body = entra_user(f"ada.{unique}@contoso.test")
    user_id = scim.post("/Users", json=body).json()["id"]
    assert found_ids(scim, "/Users", query("externalId", body["externalId"])) == [user_id]


def test_user_is_found_by_work_email_value_filter(scim: httpx.Client, unique: str) -> None:
    """The tutorial: when uniqueness is on emails[type eq "work"], Entra queries
    emails[type eq "work"].value eq "..." and the endpoint must answer it."""
    user_name = f"ada.{unique}@contoso.test"
    user_id = create_user(scim, user_name)
    assert found_ids(scim, "/Users", {"filter": f'emails[type eq "work"].value eq "{user_name}"'}) == [user_id]


# --- create ---------------------------------------------------------------------------------------------


def test_create_user_with_enterprise_extension_and_meta_resource_type(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """meta.resourceType is readOnly input: ignored and logged. roles: [] is unassigned."""
    user_name = f"ada.{unique}@contoso.test"
    response = scim.post("/Users", json=entra_user(user_name))
    assert response.status_code == 201, response.text
    stored = read(scim, f"/Users/{response.json()['id']}")
    assert stored["schemas"] == [USER, ENTERPRISE]
    assert stored[ENTERPRISE] == {"employeeNumber": "1815", "department": "Analytical Engines"}
    assert stored["name"]["formatted"] == "Ada Lovelace"
    assert "roles" not in stored
    assert stored["meta"]["resourceType"] == "User"
    assert "read-only-ignored: 'meta'" in rewrites(debug_log)


def test_create_user_with_manager_as_a_plain_id(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """The tutorial's user carries "Manager": "<id>" (capital M, a plain string) in the enterprise extension."""
    boss = create_user(scim, f"boss.{unique}@contoso.test")
    body = entra_user(f"ada.{unique}@contoso.test")
    body[ENTERPRISE]["Manager"] = boss
    response = scim.post("/Users", json=body)
    assert response.status_code == 201, response.text
    assert manager_of(scim, response.json()["id"]) == {"value": boss}
    assert "bare-value" in rewrites(debug_log)


def test_create_group_with_the_adscim_schema_urn(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """Entra lists its own ADSCIM Group schema; it is dropped (and logged), the group is created."""
    response = scim.post("/Groups", json=entra_group(f"Engines {unique}"))
    assert response.status_code == 201, response.text
    stored = read(scim, f"/Groups/{response.json()['id']}")
    assert stored["schemas"] == [GROUP]
    assert stored["displayName"] == f"Engines {unique}"
    logged = rewrites(debug_log)
    assert f"extra-schema-dropped: {ADSCIM_GROUP!r}" in logged
    assert "read-only-ignored: 'meta'" in logged


# --- user updates -----------------------------------------------------------------------------------------


def test_update_multi_valued_properties_with_capitalised_replace(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """The tutorial's Update User [Multi-valued properties]: Replace on emails[type eq "work"].value and
    name.familyName; the other sub-attributes of the work email stay."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(
        scim,
        f"/Users/{user_id}",
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"updated.{unique}@contoso.test"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    after = read(scim, f"/Users/{user_id}")
    assert after["emails"] == [{"primary": True, "type": "work", "value": f"updated.{unique}@contoso.test"}]
    assert after["name"] == {"formatted": "Ada Lovelace", "familyName": "updatedFamilyName", "givenName": "Ada"}
    assert "op-name-case: 'Replace' read as 'replace'" in rewrites(debug_log)


def test_update_single_valued_user_name(scim: httpx.Client, unique: str) -> None:
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": "userName", "value": f"new.{unique}@contoso.test"})
    assert found_ids(scim, "/Users", query("userName", f"new.{unique}@contoso.test")) == [user_id]
    assert found_ids(scim, "/Users", query("userName", f"ada.{unique}@contoso.test")) == []


@pytest.mark.parametrize("op", ["Add", "add"], ids=["default", "aadOptscim062020"])
def test_add_single_valued_string_attribute(scim: httpx.Client, unique: str, op: str) -> None:
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(scim, f"/Users/{user_id}", {"op": op, "path": "nickName", "value": "Babs"})
    assert read(scim, f"/Users/{user_id}")["nickName"] == "Babs"


def test_replace_of_several_attributes_one_path_each(scim: httpx.Client, unique: str) -> None:
    """The default job: one capitalised Replace per attribute, an enterprise one by its URN path."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(
        scim,
        f"/Users/{user_id}",
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": f"pvlo.{unique}@contoso.test"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
    )
    after = read(scim, f"/Users/{user_id}")
    assert (after["displayName"], after["name"]["givenName"], after["name"]["familyName"]) == ("Pvlo", "Gtfd", "Pkqf")
    assert after["emails"][0]["value"] == f"pvlo.{unique}@contoso.test"
    assert after["externalId"] == "Eqpj"
    assert after[ENTERPRISE]["employeeNumber"] == "Eqpj"


def test_replace_of_several_attributes_as_one_pathless_value(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """aadOptscim062020: a path-less replace whose keys are attribute paths, dotted and URN-qualified."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(
        scim,
        f"/Users/{user_id}",
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": f"bjfe.{unique}@contoso.test"},
        {
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                f"{ENTERPRISE}:employeeNumber": "Aklq",
            },
        },
    )
    after = read(scim, f"/Users/{user_id}")
    assert after["displayName"] == "Bjfe"
    assert after["name"] == {"formatted": "Ada Lovelace", "givenName": "Kkom", "familyName": "Unua"}
    assert after[ENTERPRISE] == {"employeeNumber": "Aklq", "department": "Analytical Engines"}
    assert after["emails"][0]["value"] == f"bjfe.{unique}@contoso.test"
    logged = rewrites(debug_log)
    assert "path-keyed-value: 'name.givenName'" in logged
    assert f"path-keyed-value: '{ENTERPRISE}:employeeNumber'" in logged


def test_pathless_value_carrying_the_read_only_id_is_applied(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """An id inside a path-less value is the resource's own: ignored, not a mutability error."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(scim, f"/Users/{user_id}", {"op": "replace", "value": {"id": user_id, "title": "Countess"}})
    after = read(scim, f"/Users/{user_id}")
    assert (after["id"], after["title"]) == (user_id, "Countess")
    assert "server-attribute-ignored: 'id'" in rewrites(debug_log)


def test_add_on_a_filtered_path_that_matches_nothing_creates_the_element(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    """Entra maps physicalDeliveryOfficeName to addresses[type eq "work"].formatted and sends Add before
    the user has any address."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(
        scim,
        f"/Users/{user_id}",
        {"op": "Add", "path": 'addresses[type eq "work"].formatted', "value": "B 42"},
        {"op": "Add", "path": 'phoneNumbers[type eq "mobile"].value', "value": "+1 555 0100"},
    )
    after = read(scim, f"/Users/{user_id}")
    assert after["addresses"] == [{"type": "work", "formatted": "B 42"}]
    assert after["phoneNumbers"] == [{"type": "mobile", "value": "+1 555 0100"}]
    assert "create-from-filter" in rewrites(debug_log)


def test_add_on_a_filtered_path_that_matches_updates_the_element(scim: httpx.Client, unique: str) -> None:
    """The next cycle's Add on the same path changes that address instead of adding a second one."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    path = 'addresses[type eq "work"].formatted'
    patched(scim, f"/Users/{user_id}", {"op": "Add", "path": path, "value": "B 42"})
    patched(scim, f"/Users/{user_id}", {"op": "Add", "path": path, "value": "C 7"})
    assert read(scim, f"/Users/{user_id}")["addresses"] == [{"type": "work", "formatted": "C 7"}]


# --- disable, enable, delete ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sent", ["False", False], ids=["default", "aadOptscim062020"])
def test_disable_sets_active_false(scim: httpx.Client, unique: str, sent: object) -> None:
    """Default job: {"op": "Replace", "path": "active", "value": "False"}; with the flag a real boolean."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    op = "Replace" if sent == "False" else "replace"
    patched(scim, f"/Users/{user_id}", {"op": op, "path": "active", "value": sent})
    assert read(scim, f"/Users/{user_id}")["active"] is False


def test_string_boolean_is_logged(scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture) -> None:
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": "active", "value": "False"})
    assert "string-boolean: 'active' given the string 'False', read as false" in rewrites(debug_log)


def test_enable_with_string_true(scim: httpx.Client, unique: str) -> None:
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": "active", "value": "False"})
    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": "active", "value": "True"})
    assert read(scim, f"/Users/{user_id}")["active"] is True


def test_disabled_user_is_still_returned_and_filterable(scim: httpx.Client, unique: str) -> None:
    """The tutorial: a user must be returned whether active or not; only a hard delete hides it."""
    user_name = f"ada.{unique}@contoso.test"
    user_id = create_user(scim, user_name)
    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": "active", "value": "False"})
    assert read(scim, f"/Users/{user_id}")["active"] is False
    assert found_ids(scim, "/Users", query("userName", user_name)) == [user_id]
    assert found_ids(scim, "/Users", {"filter": f'active eq false and userName eq "{user_name}"'}) == [user_id]
    assert found_ids(scim, "/Users", {"filter": f'active eq true and userName eq "{user_name}"'}) == []


def test_disable_keeps_the_user_and_its_memberships_but_delete_removes_both(scim: httpx.Client, unique: str) -> None:
    """Soft delete (active=false) and hard delete (DELETE, 30 days later in Entra) are different things."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": user_id}]})

    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": "active", "value": "False"})
    assert member_ids(scim, group_id) == {user_id}
    assert [g["value"] for g in read(scim, f"/Users/{user_id}")["groups"]] == [group_id]

    response = scim.delete(f"/Users/{user_id}")
    assert response.status_code == 204 and response.content == b""
    assert_error(scim.get(f"/Users/{user_id}"), 404)
    assert found_ids(scim, "/Users", query("userName", f"ada.{unique}@contoso.test")) == []
    assert member_ids(scim, group_id) == set()


# --- manager ---------------------------------------------------------------------------------------------


def test_manager_set_as_a_plain_id_string(scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture) -> None:
    boss = create_user(scim, f"boss.{unique}@contoso.test")
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(scim, f"/Users/{user_id}", {"op": "Add", "path": f"{ENTERPRISE}:manager", "value": boss})
    assert manager_of(scim, user_id) == {"value": boss}
    assert f"bare-value: '{ENTERPRISE}:manager' given the plain value {boss!r}" in rewrites(debug_log)


def test_manager_set_as_a_value_object_on_the_unqualified_path(
    scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture
) -> None:
    boss = create_user(scim, f"boss.{unique}@contoso.test")
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": "manager", "value": {"value": boss}})
    assert manager_of(scim, user_id) == {"value": boss}
    assert "unqualified-extension-attribute: 'manager'" in rewrites(debug_log)


def test_manager_replaced_by_another(scim: httpx.Client, unique: str) -> None:
    first, second = (create_user(scim, f"boss{n}.{unique}@contoso.test") for n in (1, 2))
    user_id = create_user(scim, f"ada.{unique}@contoso.test", manager=first)
    patched(scim, f"/Users/{user_id}", {"op": "Replace", "path": f"{ENTERPRISE}:manager", "value": second})
    assert manager_of(scim, user_id) == {"value": second}


def test_manager_removed_by_a_value_filter(scim: httpx.Client, unique: str) -> None:
    boss = create_user(scim, f"boss.{unique}@contoso.test")
    user_id = create_user(scim, f"ada.{unique}@contoso.test", manager=boss)
    patched(scim, f"/Users/{user_id}", {"op": "Remove", "path": f'manager[value eq "{boss}"]'})
    after = read(scim, f"/Users/{user_id}")
    assert "manager" not in after[ENTERPRISE]
    assert after[ENTERPRISE]["employeeNumber"] == "1815"


def test_manager_remove_with_a_filter_for_someone_else_keeps_it(scim: httpx.Client, unique: str) -> None:
    boss = create_user(scim, f"boss.{unique}@contoso.test")
    user_id = create_user(scim, f"ada.{unique}@contoso.test", manager=boss)
    patched(scim, f"/Users/{user_id}", {"op": "Remove", "path": 'manager[value eq "someone-else"]'})
    assert manager_of(scim, user_id) == {"value": boss}


def test_manager_removed_by_its_path(scim: httpx.Client, unique: str) -> None:
    boss = create_user(scim, f"boss.{unique}@contoso.test")
    user_id = create_user(scim, f"ada.{unique}@contoso.test", manager=boss)
    patched(scim, f"/Users/{user_id}", {"op": "Remove", "path": f"{ENTERPRISE}:manager"})
    assert manager_of(scim, user_id) is None


# --- groups ------------------------------------------------------------------------------------------------


def test_group_read_excluding_members_omits_them(scim: httpx.Client, unique: str) -> None:
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": user_id}]})
    by_id = read(scim, f"/Groups/{group_id}", excludedAttributes="members")
    [by_filter] = read(scim, "/Groups", **group_query(f"Engines {unique}"))["Resources"]
    assert "members" not in by_id and "members" not in by_filter
    assert by_id["displayName"] == by_filter["displayName"] == f"Engines {unique}"
    assert member_ids(scim, group_id) == {user_id}


def test_group_read_excluding_members_never_loads_them(
    live_server: LiveServer, scim: httpx.Client, unique: str
) -> None:
    """A group of 100,000 members costs Entra's lookups nothing: with the membership rows unreadable,
    reads that exclude members still answer, and a read that wants them does not."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": user_id}]})
    with memberships_unreadable(live_server.database_url):
        by_id = scim.get(f"/Groups/{group_id}", params={"excludedAttributes": "members"})
        by_filter = scim.get("/Groups", params=group_query(f"Engines {unique}"))
        with_members = scim.get(f"/Groups/{group_id}")
    assert by_id.status_code == 200 and by_id.json()["id"] == group_id
    assert by_filter.status_code == 200 and [r["id"] for r in by_filter.json()["Resources"]] == [group_id]
    assert with_members.status_code == 500  # the probe works: reading members needs the table
    assert member_ids(scim, group_id) == {user_id}


def test_add_members_with_null_ref(scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture) -> None:
    """Update Group [Add Members]: Entra sends "$ref": null beside each value; the hub derives $ref itself."""
    a, b = (create_user(scim, f"u{n}.{unique}@contoso.test") for n in (1, 2))
    group_id = create_group(scim, f"Engines {unique}")
    patched(
        scim,
        f"/Groups/{group_id}",
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": a}, {"$ref": None, "value": b}]},
    )
    assert member_ids(scim, group_id) == {a, b}
    assert all(m["$ref"].endswith(f"/Users/{m['value']}") for m in read(scim, f"/Groups/{group_id}")["members"])
    assert f"member-fields-ignored: 'members' member {a!r}: $ref ignored" in rewrites(debug_log)


def test_remove_members_with_a_value_list(scim: httpx.Client, unique: str, debug_log: pytest.LogCaptureFixture) -> None:
    """Update Group [Remove Members] (default job): Remove on "members" with the ids in a value list."""
    a, b, c = (create_user(scim, f"u{n}.{unique}@contoso.test") for n in (1, 2, 3))
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": i} for i in (a, b, c)]})
    patched(
        scim,
        f"/Groups/{group_id}",
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": a}, {"$ref": None, "value": b}]},
    )
    assert member_ids(scim, group_id) == {c}
    assert "remove-with-value" in rewrites(debug_log)


def test_remove_member_with_a_value_filter(scim: httpx.Client, unique: str) -> None:
    """aadOptscim062020: {"op": "remove", "path": "members[value eq \\"<id>\\"]"}."""
    a, b = (create_user(scim, f"u{n}.{unique}@contoso.test") for n in (1, 2))
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": a}, {"value": b}]})
    patched(scim, f"/Groups/{group_id}", {"op": "remove", "path": f'members[value eq "{a}"]'})
    assert member_ids(scim, group_id) == {b}


def test_replace_remove_and_add_members_apply_in_order_in_one_request(scim: httpx.Client, unique: str) -> None:
    a, b, c, d = (create_user(scim, f"u{n}.{unique}@contoso.test") for n in (1, 2, 3, 4))
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": d}]})
    patched(
        scim,
        f"/Groups/{group_id}",
        {"op": "Replace", "path": "members", "value": [{"$ref": None, "value": a}, {"$ref": None, "value": b}]},
        {"op": "Remove", "path": "members", "value": [{"value": a}]},
        {"op": "Add", "path": "members", "value": [{"$ref": None, "value": c}]},
    )
    assert member_ids(scim, group_id) == {b, c}


def test_removing_a_member_that_is_not_in_the_group_changes_nothing(scim: httpx.Client, unique: str) -> None:
    """Entra retries: removing twice must not fail the second time."""
    a = create_user(scim, f"u.{unique}@contoso.test")
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": a}]})
    patched(scim, f"/Groups/{group_id}", {"op": "Remove", "path": "members", "value": [{"value": a}]})
    patched(scim, f"/Groups/{group_id}", {"op": "Remove", "path": "members", "value": [{"value": a}]})
    assert member_ids(scim, group_id) == set()


def test_adding_a_member_twice_keeps_one_membership(scim: httpx.Client, unique: str) -> None:
    a = create_user(scim, f"u.{unique}@contoso.test")
    group_id = create_group(scim, f"Engines {unique}")
    for _ in range(2):
        patched(scim, f"/Groups/{group_id}", {"op": "Add", "path": "members", "value": [{"value": a}]})
    assert [m["value"] for m in read(scim, f"/Groups/{group_id}")["members"]] == [a]


def test_group_rename_with_capitalised_replace(scim: httpx.Client, unique: str) -> None:
    group_id = create_group(scim, f"Engines {unique}")
    patched(scim, f"/Groups/{group_id}", {"op": "Replace", "path": "displayName", "value": f"Mills {unique}"})
    assert read(scim, f"/Groups/{group_id}")["displayName"] == f"Mills {unique}"
    assert found_ids(scim, "/Groups", group_query(f"Mills {unique}")) == [group_id]


def test_group_delete(scim: httpx.Client, unique: str) -> None:
    group_id = create_group(scim, f"Engines {unique}")
    response = scim.delete(f"/Groups/{group_id}")
    assert response.status_code == 204
    assert_error(scim.get(f"/Groups/{group_id}"), 404)
    assert read(scim, "/Groups", **group_query(f"Engines {unique}"))["totalResults"] == 0


# --- PATCH answers and empty PATCHes ----------------------------------------------------------------------


def test_group_patch_answers_204_for_a_no_content_token(entra: httpx.Client, scim: httpx.Client, unique: str) -> None:
    """The tutorial: group PATCH should answer 204 No Content, not the whole member list."""
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    group_id = create_group(scim, f"Engines {unique}")
    response = entra.patch(
        f"/Groups/{group_id}",
        json=operations({"op": "Add", "path": "members", "value": [{"$ref": None, "value": user_id}]}),
    )
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["ETag"] == read(scim, f"/Groups/{group_id}")["meta"]["version"]
    assert member_ids(scim, group_id) == {user_id}


def test_token_from_the_documented_command_gets_204_on_patch(
    live_server: LiveServer, scim: httpx.Client, unique: str
) -> None:
    """docs/identity-providers.md: scimward token create ... --patch-response no_content, as an admin runs it."""
    command = [
        "token",
        "create",
        "--name",
        f"entra-{unique}",
        "--expires-in",
        "365d",
        "--patch-response",
        "no_content",
        "--database-url",
        live_server.database_url,
    ]
    result = forkserver.run(command)
    assert result.returncode == 0, result.stderr
    token = result.stdout.strip().splitlines()[-1]
    group_id = create_group(scim, f"Engines {unique}")
    with live_server.client(token) as entra:
        response = entra.patch(
            f"/Groups/{group_id}", json=operations({"op": "Replace", "path": "displayName", "value": f"Mills {unique}"})
        )
    assert response.status_code == 204 and response.content == b""
    assert read(scim, f"/Groups/{group_id}")["displayName"] == f"Mills {unique}"


def test_user_patch_answers_204_for_a_no_content_token(entra: httpx.Client, scim: httpx.Client, unique: str) -> None:
    user_id = create_user(scim, f"ada.{unique}@contoso.test")
    response = entra.patch(f"/Users/{user_id}", json=operations({"op": "Replace", "path": "active", "value": "False"}))
    assert response.status_code == 204
    assert response.content == b""
    assert read(scim, f"/Users/{user_id}")["active"] is False


def test_patch_answers_200_with_the_resource_by_default(scim: httpx.Client, unique: str) -> None:
    group_id = create_group(scim, f"Engines {unique}")
    response = scim.patch(
        f"/Groups/{group_id}", json=operations({"op": "Replace", "path": "displayName", "value": f"Mills {unique}"})
    )
    assert response.status_code == 200
    assert response.json()["id"] == group_id
    assert response.json()["displayName"] == f"Mills {unique}"


@pytest.mark.parametrize("resource", ["Users", "Groups"])
def test_empty_operations_list_changes_nothing(scim: httpx.Client, unique: str, resource: str) -> None:
    resource_id = (
        create_user(scim, f"ada.{unique}@contoso.test")
        if resource == "Users"
        else create_group(scim, f"Engines {unique}")
    )
    before = read(scim, f"/{resource}/{resource_id}")
    response = scim.patch(f"/{resource}/{resource_id}", json=operations())
    assert response.status_code == 200, response.text
    assert read(scim, f"/{resource}/{resource_id}") == before
