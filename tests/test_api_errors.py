"""Bad input gets a clear SCIM Error (RFC 7644 3.12) and writes nothing."""

from __future__ import annotations

import httpx

from tests.conftest import LiveServer
from tests.scimdata import USER, assert_error, patch, user


def test_no_token_is_401_with_a_scim_error(live_server: LiveServer) -> None:
    response = httpx.get(f"{live_server.base_url}/Users")
    assert_error(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_token_is_401(live_server: LiveServer) -> None:
    with live_server.client(token="scimward_not-a-real-token") as client:
        assert_error(client.get("/ServiceProviderConfig"), 401)


def test_discovery_needs_a_token_too(live_server: LiveServer) -> None:
    assert_error(httpx.get(f"{live_server.base_url}/Schemas"), 401)


def test_malformed_json_is_invalid_syntax(scim: httpx.Client) -> None:
    response = scim.post("/Users", content=b'{"schemas": [', headers={"content-type": "application/scim+json"})
    assert_error(response, 400, "invalidSyntax")


def test_body_that_is_not_an_object(scim: httpx.Client) -> None:
    assert_error(scim.post("/Users", json=["a"]), 400, "invalidSyntax")


def test_missing_schemas_is_invalid_syntax(scim: httpx.Client, unique: str) -> None:
    assert_error(scim.post("/Users", json={"userName": unique}), 400, "invalidSyntax")


def test_wrong_schema_is_invalid_syntax(scim: httpx.Client, unique: str) -> None:
    body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": unique}
    assert_error(scim.post("/Users", json=body), 400, "invalidSyntax")


def test_unknown_attribute_is_named(scim: httpx.Client, unique: str) -> None:
    body = assert_error(scim.post("/Users", json=user(unique, shoeSize=42)), 400, "invalidSyntax")
    assert "shoeSize" in body["detail"]


def test_wrong_type_is_invalid_value(scim: httpx.Client, unique: str) -> None:
    body = assert_error(scim.post("/Users", json=user(unique, active="maybe")), 400, "invalidValue")
    assert "active" in body["detail"]


def test_body_over_the_limit_is_413(scim: httpx.Client, unique: str) -> None:
    """The test server's limit is 64 KiB."""
    response = scim.post("/Users", json=user(unique, displayName="x" * 70_000))
    assert_error(response, 413)
    assert scim.get("/Users", params={"filter": f'userName eq "{unique}"'}).json()["totalResults"] == 0


def test_unsupported_media_type_is_415(scim: httpx.Client) -> None:
    assert_error(scim.post("/Users", content=b"userName=x", headers={"content-type": "text/plain"}), 415)


def test_wrong_method_is_405(scim: httpx.Client) -> None:
    assert_error(scim.delete("/Users"), 405)
    assert_error(scim.post("/ServiceProviderConfig", json={}), 405)


def test_unknown_endpoint_is_404_with_scim_error(scim: httpx.Client) -> None:
    assert_error(scim.get("/Nothing"), 404)


def test_invalid_filter_is_400_invalid_filter(scim: httpx.Client) -> None:
    assert_error(scim.get("/Users", params={"filter": "userName eq"}), 400, "invalidFilter")
    assert_error(scim.get("/Users", params={"filter": 'shoeSize eq "9"'}), 400, "invalidFilter")


def test_patch_without_patchop_schema(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(unique)).json()
    response = scim.patch(f"/Users/{created['id']}", json={"Operations": []})
    assert_error(response, 400, "invalidSyntax")


def test_patch_with_invalid_path(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(unique)).json()
    response = scim.patch(
        f"/Users/{created['id']}", json=patch({"op": "replace", "path": "emails[type eq", "value": "x"})
    )
    assert_error(response, 400, "invalidPath")


def test_patch_of_read_only_attribute_is_mutability(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(unique)).json()
    response = scim.patch(f"/Users/{created['id']}", json=patch({"op": "replace", "path": "id", "value": "x"}))
    assert_error(response, 400, "mutability")


def test_failed_patch_writes_nothing(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.5.2: the first operation is not kept when the second fails."""
    created = scim.post("/Users", json=user(unique, title="before")).json()
    response = scim.patch(
        f"/Users/{created['id']}",
        json=patch(
            {"op": "replace", "path": "title", "value": "after"},
            {"op": "replace", "path": "active", "value": "perhaps"},
        ),
    )
    assert_error(response, 400, "invalidValue")
    after = scim.get(f"/Users/{created['id']}").json()
    assert after["title"] == "before" and after["meta"]["version"] == created["meta"]["version"]


def test_if_match_mismatch_is_412(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(unique)).json()
    response = scim.put(f"/Users/{created['id']}", json=user(unique, title="x"), headers={"If-Match": 'W/"999"'})
    assert_error(response, 412)


def test_removing_required_username_is_rejected(scim: httpx.Client, unique: str) -> None:
    created = scim.post("/Users", json=user(unique)).json()
    response = scim.patch(f"/Users/{created['id']}", json=patch({"op": "remove", "path": "userName"}))
    assert response.status_code == 400
    assert scim.get(f"/Users/{created['id']}").json()["userName"] == unique


def test_schemas_list_for_users_is_exact(scim: httpx.Client) -> None:
    # User, EnterpriseUser, Group, GroupGovernance; Agent, AgenticApplication and the NHI extension;
    # the limits extension of ServiceProviderConfig.
    assert scim.get("/Schemas").json()["totalResults"] == 8
    assert scim.get(f"/Schemas/{USER}").json()["id"] == USER
    assert_error(scim.get("/Schemas/urn:nothing"), 404)
