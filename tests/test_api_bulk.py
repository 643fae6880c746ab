"""POST /Bulk (RFC 7644 3.7) over HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scimward.api.settings import MIB, Settings
from tests.conftest import ServerThread, issue_token
from tests.scimdata import ERROR, GROUP, USER, assert_error, group, patch, user

BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


def bulk(scim: httpx.Client, *operations: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    """Send a BulkRequest; check the BulkResponse envelope and return its Operations."""
    response = scim.post("/Bulk", json={"schemas": [BULK_REQUEST], "Operations": list(operations), **extra})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["schemas"] == [BULK_RESPONSE]
    return body["Operations"]  # type: ignore[no-any-return]


def post(path: str, bulk_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"method": "POST", "path": path, "bulkId": bulk_id, "data": data}


def assert_failed(result: dict[str, Any], status: int, scim_type: str | None = None) -> str:
    """RFC 7644 3.7.3: a failed operation has its status and an Error body in ``response``."""
    assert result["status"] == str(status), result
    error = result["response"]
    assert error["schemas"] == [ERROR]
    assert error["status"] == str(status)
    assert error.get("scimType") == scim_type
    assert error["detail"]
    return str(error["detail"])


def created_id(result: dict[str, Any]) -> str:
    assert result["status"] == "201", result
    return str(result["location"].rsplit("/", 1)[1])


def new_user(scim: httpx.Client, name: str) -> dict[str, Any]:
    response = scim.post("/Users", json=user(name))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def count_users(scim: httpx.Client, prefix: str) -> int:
    found = scim.get("/Users", params={"filter": f'userName sw "{prefix}"', "startIndex": 1}).json()
    return int(found["totalResults"])


def test_rfc_example_group_before_the_users_it_references(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.2: "bulkId:qwerty" in a member value becomes the id of the user created with
    bulkId qwerty, even when the group comes first in the request."""
    results = bulk(
        scim,
        post(
            "/Groups",
            "ytrewq",
            {
                "schemas": [GROUP],
                "displayName": f"Tour Guides {unique}",
                "members": [{"type": "User", "value": "bulkId:qwerty"}, {"type": "User", "value": "bulkId:asdfgh"}],
            },
        ),
        post("/Users", "qwerty", user(f"{unique}-alice")),
        post("/Users", "asdfgh", user(f"{unique}-bob")),
    )
    assert [r["bulkId"] for r in results] == ["ytrewq", "qwerty", "asdfgh"]  # request order
    assert all(r["method"] == "POST" and r["status"] == "201" and r["version"].startswith('W/"') for r in results)
    group_id, alice, bob = (created_id(r) for r in results)
    assert results[0]["location"].endswith(f"/Groups/{group_id}")
    members = scim.get(f"/Groups/{group_id}").json()["members"]
    assert {m["value"] for m in members} == {alice, bob}
    assert scim.get(f"/Users/{alice}").json()["userName"] == f"{unique}-alice"


def test_put_patch_and_delete_in_one_request(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7: each operation stands for a single PUT, PATCH or DELETE; 3.7.3 reports
    status, location and the new version of each."""
    kept, gone = new_user(scim, f"{unique}-kept"), new_user(scim, f"{unique}-gone")
    results = bulk(
        scim,
        {"method": "PUT", "path": f"/Users/{kept['id']}", "data": user(f"{unique}-kept", displayName="Put")},
        {
            "method": "patch",
            "path": f"/Users/{kept['id']}",
            "data": patch({"op": "replace", "path": "nickName", "value": "Patched"}),
        },
        {"method": "DELETE", "path": f"/Users/{gone['id']}"},
    )
    assert [(r["method"], r["status"]) for r in results] == [("PUT", "200"), ("PATCH", "200"), ("DELETE", "204")]
    assert results[0]["location"].endswith(f"/Users/{kept['id']}")
    assert results[2]["location"].endswith(f"/Users/{gone['id']}")
    current = scim.get(f"/Users/{kept['id']}")
    assert current.json()["displayName"] == "Put" and current.json()["nickName"] == "Patched"
    assert results[1]["version"] == current.headers["etag"]
    assert scim.get(f"/Users/{gone['id']}").status_code == 404


def test_bulk_id_in_operation_path_and_patch_filter(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.2: a bulkId also stands for the new id in a path ("/Groups/bulkId:g") and in a
    PATCH filter, whatever the order of the operations."""
    results = bulk(
        scim,
        {
            "method": "PATCH",
            "path": "/Groups/bulkId:g",
            "data": patch({"op": "remove", "path": 'members[value eq "bulkId:u1"]'}),
        },
        post(
            "/Groups",
            "g",
            {
                "schemas": [GROUP],
                "displayName": f"g-{unique}",
                "members": [{"value": "bulkId:u1"}, {"value": "bulkId:u2"}],
            },
        ),
        post("/Users", "u1", user(f"{unique}-1")),
        post("/Users", "u2", user(f"{unique}-2")),
    )
    assert [r["status"] for r in results] == ["200", "201", "201", "201"]
    group_id = created_id(results[1])
    assert results[0]["location"].endswith(f"/Groups/{group_id}")
    members = scim.get(f"/Groups/{group_id}").json()["members"]
    assert [m["value"] for m in members] == [created_id(results[3])]


def test_version_is_applied_as_if_match(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7 "version" and 3.14: a stale version fails that operation with 412, writing nothing."""
    created = new_user(scim, unique)
    stale = created["meta"]["version"]
    assert (
        scim.patch(
            f"/Users/{created['id']}", json=patch({"op": "replace", "path": "nickName", "value": "first"})
        ).status_code
        == 200
    )
    [result] = bulk(
        scim,
        {"method": "PUT", "path": f"/Users/{created['id']}", "version": stale, "data": user(unique, nickName="second")},
    )
    assert_failed(result, 412)
    assert result["location"].endswith(f"/Users/{created['id']}")
    assert scim.get(f"/Users/{created['id']}").json()["nickName"] == "first"


def test_fail_on_errors_stops_the_request(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.3: after failOnErrors errors the rest is not run and not in the response."""
    results = bulk(
        scim,
        post("/Users", "a", user(f"{unique}-a")),
        {"method": "DELETE", "path": "/Users/no-such-id"},
        post("/Users", "b", user(f"{unique}-b")),
        failOnErrors=1,
    )
    assert [r["status"] for r in results] == ["201", "404"]
    assert_failed(results[1], 404)
    assert count_users(scim, f"{unique}-b") == 0
    assert count_users(scim, f"{unique}-a") == 1


def test_without_fail_on_errors_every_operation_runs(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7: the service provider goes on after a failure unless failOnErrors says otherwise."""
    results = bulk(
        scim,
        {"method": "DELETE", "path": "/Users/no-such-id"},
        {"method": "DELETE", "path": "/Groups/no-such-id"},
        post("/Users", "a", user(unique)),
    )
    assert [r["status"] for r in results] == ["404", "404", "201"]


def test_unknown_bulk_id_fails_only_that_operation(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.2: a reference no POST of the request declares cannot be resolved: 409 for
    that operation, and the others still run."""
    results = bulk(
        scim,
        post(
            "/Groups", "g", {"schemas": [GROUP], "displayName": f"g-{unique}", "members": [{"value": "bulkId:nobody"}]}
        ),
        post("/Users", "u", user(unique)),
    )
    assert "nobody" in assert_failed(results[0], 409)
    assert "location" not in results[0]
    assert results[1]["status"] == "201"
    found = scim.get("/Groups", params={"filter": f'displayName eq "g-{unique}"', "startIndex": 1}).json()
    assert found["totalResults"] == 0


def test_reference_to_a_failed_post_fails(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.2: when the POST a bulkId names fails, operations referencing it fail with 409."""
    results = bulk(
        scim,
        post("/Users", "broken", {"schemas": [USER], "displayName": "no userName"}),
        {
            "method": "PATCH",
            "path": "/Users/bulkId:broken",
            "data": patch({"op": "replace", "path": "nickName", "value": unique}),
        },
    )
    assert results[0]["status"] == "400"
    assert "broken" in assert_failed(results[1], 409)


def test_circular_references_fail_with_409(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.1: two groups listing each other by bulkId form a cycle; the service provider
    MAY answer 409 instead of resolving it, and creates neither."""
    results = bulk(
        scim,
        post(
            "/Groups",
            "a",
            {"schemas": [GROUP], "displayName": f"a-{unique}", "members": [{"type": "Group", "value": "bulkId:b"}]},
        ),
        post(
            "/Groups",
            "b",
            {"schemas": [GROUP], "displayName": f"b-{unique}", "members": [{"type": "Group", "value": "bulkId:a"}]},
        ),
        post(
            "/Groups",
            "self",
            {
                "schemas": [GROUP],
                "displayName": f"self-{unique}",
                "members": [{"type": "Group", "value": "bulkId:self"}],
            },
        ),
    )
    assert [r["bulkId"] for r in results] == ["a", "b", "self"]
    for result in results:
        assert_failed(result, 409)
    assert "circular" in results[2]["response"]["detail"]
    found = scim.get("/Groups", params={"filter": f'displayName co "{unique}"', "startIndex": 1}).json()
    assert found["totalResults"] == 0


def test_failed_operation_writes_nothing(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7: each operation is applied whole or not at all; the failed PATCH keeps neither
    its rename nor its member, the failed POST creates no group, and the next operation runs."""
    member = new_user(scim, f"{unique}-m")
    existing = scim.post("/Groups", json=group(f"g-{unique}", [member["id"]])).json()
    results = bulk(
        scim,
        {
            "method": "PATCH",
            "path": f"/Groups/{existing['id']}",
            "data": patch(
                {"op": "replace", "path": "displayName", "value": f"renamed-{unique}"},
                {"op": "add", "path": "members", "value": [{"value": "ghost"}]},
            ),
        },
        post("/Groups", "new", group(f"new-{unique}", [member["id"], "no-such-id"])),
        post("/Users", "ok", user(f"{unique}-ok")),
    )
    assert_failed(results[0], 400, "invalidValue")
    assert_failed(results[1], 400, "invalidValue")
    assert results[2]["status"] == "201"
    current = scim.get(f"/Groups/{existing['id']}").json()
    assert current["displayName"] == f"g-{unique}"
    assert [m["value"] for m in current["members"]] == [member["id"]]
    found = scim.get("/Groups", params={"filter": f'displayName eq "new-{unique}"', "startIndex": 1}).json()
    assert found["totalResults"] == 0


def test_malformed_operations_fail_alone(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7: a malformed operation is that operation's 400, not the whole request's."""
    results = bulk(
        scim,
        {"method": "GET", "path": "/Users"},
        post("/Widgets", "w", {"schemas": [USER]}),
        {"method": "POST", "path": "/Users", "data": user(f"{unique}-no-bulk-id")},
        {"method": "PUT", "path": "/Users/some-id"},
        {"method": "DELETE", "path": "/Users"},
        "not an object",  # type: ignore[arg-type]
        post("/Users", "ok", user(unique)),
    )
    for result in results[:-1]:
        assert_failed(result, 400, "invalidSyntax")
    assert results[-1]["status"] == "201"
    assert count_users(scim, f"{unique}-no-bulk-id") == 0


def test_too_many_operations_is_413(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.4: more operations than maxOperations is a 413 naming the limit; none runs."""
    operations = [post("/Users", str(n), user(f"{unique}-{n}")) for n in range(1001)]
    response = scim.post("/Bulk", json={"schemas": [BULK_REQUEST], "Operations": operations})
    detail = assert_error(response, 413)["detail"]
    assert "maxOperations" in detail and "1000" in detail
    assert count_users(scim, unique) == 0


def test_payload_over_max_payload_size_is_413(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.4: a body larger than maxPayloadSize is a 413 naming the limit; none runs."""
    operations = [post("/Users", "big", user(unique, nickName="x" * (4 * MIB)))]
    response = scim.post("/Bulk", json={"schemas": [BULK_REQUEST], "Operations": operations})
    detail = assert_error(response, 413)["detail"]
    assert "maxPayloadSize" in detail and str(4 * MIB) in detail
    assert count_users(scim, unique) == 0


def test_payload_without_content_length_is_counted(scim: httpx.Client) -> None:
    """RFC 7644 3.7.4: the limit holds for a chunked body that declares no length."""

    def chunks() -> Iterator[bytes]:
        yield b'{"schemas": ["' + BULK_REQUEST.encode() + b'"], "Operations": [], "pad": "'
        for _ in range(5):
            yield b"x" * MIB
        yield b'"}'

    response = scim.post("/Bulk", content=chunks(), headers={"content-type": "application/scim+json"})
    assert "maxPayloadSize" in assert_error(response, 413)["detail"]


def test_bulk_body_may_exceed_the_single_request_limit(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.4: a bulk body is bound by maxPayloadSize, not by the (smaller) limit of a
    single request, which the test server sets to 64 KiB."""
    operations = [post("/Users", str(n), user(f"{unique}-{n}", nickName="x" * 1000)) for n in range(80)]
    results = bulk(scim, *operations)
    assert {r["status"] for r in results} == {"201"}
    assert count_users(scim, unique) == 80


def test_wrong_schemas_is_400(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7: a BulkRequest is identified by its schema URI; anything else is invalidSyntax."""
    response = scim.post(
        "/Bulk",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "Operations": [post("/Users", "a", user(unique))],
        },
    )
    assert_error(response, 400, "invalidSyntax")
    assert count_users(scim, unique) == 0


def test_duplicate_bulk_ids_is_400(scim: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7: a bulkId is unique within a request; a repeated one refuses the request whole."""
    response = scim.post(
        "/Bulk",
        json={
            "schemas": [BULK_REQUEST],
            "Operations": [post("/Users", "same", user(f"{unique}-1")), post("/Users", "same", user(f"{unique}-2"))],
        },
    )
    assert_error(response, 400, "invalidValue")
    assert count_users(scim, unique) == 0


def test_service_provider_config_advertises_bulk(scim: httpx.Client) -> None:
    """RFC 7643 5 and RFC 7644 3.7.4: bulk is supported, with its maxOperations and maxPayloadSize."""
    config = scim.get("/ServiceProviderConfig").json()
    assert config["bulk"] == {"supported": True, "maxOperations": 1000, "maxPayloadSize": 4 * MIB}


@pytest.fixture
def small_limits(database_url: str) -> Iterator[httpx.Client]:
    """A server of its own with bulk limits of 2 operations and 2 KiB."""
    token = issue_token(database_url, f"bulk-limits-{uuid.uuid4().hex[:8]}")
    settings = Settings(database_url=database_url, bulk_max_operations=2, bulk_max_payload_bytes=2048)
    with (
        ServerThread(settings) as thread,
        httpx.Client(
            base_url=f"http://127.0.0.1:{thread.port}/scim/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as client,
    ):
        yield client


def test_limits_come_from_settings(small_limits: httpx.Client, unique: str) -> None:
    """RFC 7644 3.7.4: the limits advertised are the limits enforced, as configured."""
    config = small_limits.get("/ServiceProviderConfig").json()
    assert config["bulk"] == {"supported": True, "maxOperations": 2, "maxPayloadSize": 2048}
    three = [post("/Users", str(n), user(f"{unique}-{n}")) for n in range(3)]
    response = small_limits.post("/Bulk", json={"schemas": [BULK_REQUEST], "Operations": three})
    assert "maxOperations (2)" in assert_error(response, 413)["detail"]
    big = [post("/Users", "a", user(unique, nickName="x" * 2048))]
    response = small_limits.post("/Bulk", json={"schemas": [BULK_REQUEST], "Operations": big})
    assert "maxPayloadSize (2048" in assert_error(response, 413)["detail"]


def test_settings_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bulk limits are configured by SCIMWARD_BULK_MAX_OPERATIONS and SCIMWARD_BULK_MAX_PAYLOAD_BYTES."""
    monkeypatch.delenv("SCIMWARD_BULK_MAX_OPERATIONS", raising=False)
    monkeypatch.delenv("SCIMWARD_BULK_MAX_PAYLOAD_BYTES", raising=False)
    assert (Settings.from_env().bulk_max_operations, Settings.from_env().bulk_max_payload_bytes) == (1000, 4 * MIB)
    monkeypatch.setenv("SCIMWARD_BULK_MAX_OPERATIONS", "50")
    monkeypatch.setenv("SCIMWARD_BULK_MAX_PAYLOAD_BYTES", "65536")
    settings = Settings.from_env()
    assert (settings.bulk_max_operations, settings.bulk_max_payload_bytes) == (50, 65536)
