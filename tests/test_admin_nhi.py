"""NHIs in the admin API (issue 14, item 2): /admin/v1/nhis does what ``scimward nhi`` does, through the
gate (source ``api``, the admin token's name as actor), with the admin API's errors and OpenAPI."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from scimward.api import admin_nhi
from tests.conftest import LiveServer, issue_token
from tests.hub import change_rows
from tests.scimdata import user

ADMIN = f"nhi-admin-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def admin(live_server: LiveServer) -> Iterator[httpx.Client]:
    token = issue_token(live_server.database_url, ADMIN, scopes="admin")
    with httpx.Client(
        base_url=live_server.base_url.replace("/scim/v2", "/admin/v1"),
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ) as client:
        yield client


def person(scim: httpx.Client, name: str) -> str:
    made = scim.post("/Users", json=user(name))
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json" and "Traceback" not in response.text
    return str(response.json()["detail"])


def test_add_list_show_transfer_attest_rotate_retire(
    admin: httpx.Client, scim: httpx.Client, live_server: LiveServer, unique: str
) -> None:
    alice, bob = f"alice-{unique}", f"bob-{unique}"
    person(scim, alice), person(scim, bob)
    name = f"export-bot-{unique}"
    made = admin.post(
        "/nhis",
        json={
            "name": name,
            "kind": "bot",
            "owners": [alice],
            "purpose": "nightly export",
            "expires": "90d",
            "environment": "prod",
        },
    )
    assert made.status_code == 201, made.text
    nhi = made.json()
    assert (nhi["name"], nhi["kind"], nhi["owners"], nhi["active"]) == (name, "bot", [alice], True)
    assert [v["name"] for v in admin.get("/nhis", params={"owner": alice}).json()["nhis"]] == [name]
    assert admin.get("/nhis", params={"owner": alice, "expiring": "7d"}).json()["nhis"] == []
    assert admin.get(f"/nhis/{name}").json()["environment"] == "prod"
    assert admin.post(f"/nhis/{name}/transfer", json={"to": bob}).json()["owners"] == [bob]
    assert admin.post(f"/nhis/{name}/attest").status_code == 200
    assert scim.get(f"/Agents/{nhi['id']}").json()["urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"][
        "lastReviewed"
    ]
    rotated = admin.post(f"/nhis/{name}/rotate", json={"credential": "key-1"}).json()
    assert [c["identifier"] for c in rotated["credentials"]] == ["key-1"] and "token" not in rotated
    assert admin.post(f"/nhis/{name}/retire").status_code == 200
    error(admin.get(f"/nhis/{name}"), 404)
    assert scim.get(f"/Agents/{nhi['id']}").status_code == 404
    assert change_rows(live_server.database_url, nhi["id"]) == [("create", "api", ADMIN)] + [
        ("update", "api", ADMIN)
    ] * 3 + [("delete", "api", ADMIN)]


def test_rotating_a_hub_token_answers_its_successor_once(
    admin: httpx.Client, scim: httpx.Client, live_server: LiveServer, unique: str
) -> None:
    owner = person(scim, f"carol-{unique}")
    old = issue_token(live_server.database_url, f"svc-{unique}", owner_id=owner)
    rotated = admin.post(f"/nhis/svc-{unique}/rotate", json={"overlap": "1s"})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store", rotated.text
    token = rotated.json()["token"]
    assert token != old and rotated.json()["resource_type"] == "Token"
    assert token not in admin.get(f"/nhis/svc-{unique}").text
    with live_server.client(token) as client:
        assert client.get("/Users", params={"count": 1}).status_code == 200


def test_bad_input_is_named_and_changes_nothing(admin: httpx.Client, scim: httpx.Client, unique: str) -> None:
    owner = f"dave-{unique}"
    person(scim, owner)
    assert "kind" in error(admin.post("/nhis", json={"name": f"x-{unique}", "kind": "robot", "owners": [owner]}), 400)
    assert "owners" in error(admin.post("/nhis", json={"name": f"x-{unique}", "kind": "bot"}), 400)
    assert "expires" in error(
        admin.post("/nhis", json={"name": f"x-{unique}", "kind": "bot", "owners": [owner], "expires": "soon"}), 400
    )
    assert "userName" in error(
        admin.post("/nhis", json={"name": f"x-{unique}", "kind": "bot", "owners": [f"nobody-{unique}"]}), 404
    )
    assert admin.get("/nhis", params={"owner": owner}).json()["nhis"] == []
    error(admin.get("/nhis", params={"orphaned": "maybe"}), 400)
    error(admin.get("/nhis", params={"expiring": "a while"}), 400)
    error(admin.get("/nhis", params={"colour": "red"}), 400)
    error(admin.post(f"/nhis/nothing-{unique}/retire"), 404)
    error(admin.post(f"/nhis/nothing-{unique}/transfer", json={"to": owner, "also": 1}), 400)
    error(admin.post(f"/nhis/nothing-{unique}/attest", content=b"{not json"), 400)


def test_the_openapi_document_describes_every_nhi_endpoint(live_server: LiveServer) -> None:
    document = httpx.get(live_server.base_url.replace("/scim/v2", "/admin/v1") + "/openapi.json").json()
    for path, method, _handler, summary in admin_nhi.ROUTES:
        operation = document["paths"][path][method.lower()]
        assert operation["summary"] == summary and "404" in operation["responses"]
        assert ("requestBody" in operation) is (method == "POST")
