"""The admin API at /admin/v1: targets over JSON, for tokens with the admin scope, never echoing a credential."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from scimward.api import admin_evidence, admin_nhi, admin_operations, admin_policy, admin_reviews, admin_sources
from scimward.scim.errors import InvalidValue
from scimward.store.auth.tokens import TokenStore
from scimward.store.database import Database, upgrade
from scimward.store.provisioning.targets import TargetRepository
from tests.conftest import LiveServer, Peer, free_port, issue_token


def admin_url(live_server: LiveServer) -> str:
    return live_server.base_url.replace("/scim/v2", "/admin/v1")


@pytest.fixture(scope="module")
def admin_token(live_server: LiveServer) -> str:
    return issue_token(live_server.database_url, f"admin-{uuid.uuid4().hex[:8]}", scopes="admin")


@pytest.fixture
def admin(live_server: LiveServer, admin_token: str, unique: str) -> Iterator[httpx.Client]:
    """A client with an admin token; the targets a test adds (named with its ``unique``) are removed after it.

    The hub's propagate worker runs beside the API, so a target left behind would receive every
    later test's identities.
    """
    with httpx.Client(
        base_url=admin_url(live_server), headers={"Authorization": f"Bearer {admin_token}"}, timeout=30
    ) as client:
        yield client
        for target in client.get("/targets").json()["targets"]:
            if unique in target["name"]:
                client.delete(f"/targets/{target['name']}")


def add(admin: httpx.Client, name: str, peer: Peer, **extra: Any) -> httpx.Response:
    response = admin.post("/targets", json={"name": name, "url": peer.base_url, "token": peer.token, **extra})
    assert response.status_code == 201, response.text
    return response


def assert_error(response: httpx.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error and body["detail"]
    assert "Traceback" not in response.text
    return str(body["detail"])


def test_add_answers_the_target_without_its_token(admin: httpx.Client, application: Peer, unique: str) -> None:
    response = add(admin, f"crm-{unique}", application, config={"scope": 'userType eq "Employee"'})
    assert response.headers["location"] == f"/admin/v1/targets/crm-{unique}"
    body = response.json()
    assert body["name"] == f"crm-{unique}" and body["url"] == application.base_url
    assert body["status"] == "active" and body["config"]["scope"] == 'userType eq "Employee"'
    assert body["outbox"] == {"pending": 0, "failing": 0} and body["links"] == {}
    assert "token" not in body and application.token not in response.text


def test_the_token_appears_in_no_answer_and_not_in_the_database(
    admin: httpx.Client, application: Peer, unique: str, live_server: LiveServer
) -> None:
    name = f"crm-{unique}"
    answers = [
        add(admin, name, application),
        admin.get("/targets"),
        admin.get(f"/targets/{name}"),
        admin.patch(f"/targets/{name}", json={"token": application.token}),
        admin.post(f"/targets/{name}/test"),
        admin.post(f"/targets/{name}/resume"),
    ]
    for answer in answers:
        assert answer.status_code < 300 and application.token not in answer.text
    engine = sa.create_engine(live_server.database_url)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select token_encrypted from targets where name = :n"), {"n": name}).scalar_one()
    engine.dispose()
    assert application.token not in stored


def test_list_names_every_target(admin: httpx.Client, application: Peer, unique: str) -> None:
    add(admin, f"a-{unique}", application)
    add(admin, f"b-{unique}", application)
    names = [t["name"] for t in admin.get("/targets").json()["targets"]]
    assert {f"a-{unique}", f"b-{unique}"} <= set(names)


def test_test_reports_what_the_target_supports(admin: httpx.Client, application: Peer, unique: str) -> None:
    add(admin, f"crm-{unique}", application)
    report = admin.post(f"/targets/crm-{unique}/test").json()
    assert report["ok"] and report["credential"] == "accepted"
    assert report["supports"]["patch"] and report["supports"]["pagination"] == {"cursor": True, "index": True}
    assert [check["check"] for check in report["checks"]] == ["service_provider_config", "credential", "filters"]
    assert "probed" in report["capabilities"]  # the probe's time, kept in the target's profile


def test_a_rejected_token_is_a_report_not_an_error(admin: httpx.Client, application: Peer, unique: str) -> None:
    add(admin, f"crm-{unique}", Peer(application.base_url, "scimward_not-the-token"))
    response = admin.post(f"/targets/crm-{unique}/test")
    assert response.status_code == 200
    report = response.json()
    assert not report["ok"] and report["credential"] == "rejected"
    assert report["checks"][-1] == {
        "check": "credential",
        "ok": False,
        "error": "AuthError",
        "status": 401,
        "detail": report["checks"][-1]["detail"],
    }
    assert "scimward_not-the-token" not in response.text


def test_patch_merges_configuration_keys(admin: httpx.Client, application: Peer, unique: str) -> None:
    name = f"crm-{unique}"
    add(admin, name, application, config={"deprovision": "tombstone", "tombstone_days": 7, "push_groups": False})
    changed = admin.patch(f"/targets/{name}", json={"config": {"scope": "active eq true", "quarantine_after": 5}})
    assert changed.status_code == 200, changed.text
    config = changed.json()["config"]
    assert config["scope"] == "active eq true" and config["quarantine_after"] == 5
    assert config["deprovision"] == "tombstone" and config["tombstone_days"] == 7 and config["push_groups"] is False
    reset = admin.patch(f"/targets/{name}", json={"config": {"scope": None, "push_groups": None}}).json()["config"]
    assert reset["scope"] is None and reset["push_groups"] is True and reset["deprovision"] == "tombstone"


def test_patch_changes_the_url_and_the_token(admin: httpx.Client, application: Peer, unique: str) -> None:
    name = f"crm-{unique}"
    add(admin, name, Peer(f"http://127.0.0.1:{free_port()}/scim/v2", "wrong"))
    assert not admin.post(f"/targets/{name}/test").json()["ok"]
    changed = admin.patch(f"/targets/{name}", json={"url": application.base_url + "/", "token": application.token})
    assert changed.json()["url"] == application.base_url
    assert admin.post(f"/targets/{name}/test").json()["ok"]


def test_a_mapping_is_checked_and_stored(admin: httpx.Client, application: Peer, unique: str) -> None:
    mapping = [{"target": "userName", "source": "userName"}, {"target": "userType", "constant": "Contractor"}]
    body = add(admin, f"crm-{unique}", application, config={"mapping": mapping}).json()
    assert body["config"]["mapping"] == mapping


def test_delete_removes_the_target(admin: httpx.Client, application: Peer, unique: str) -> None:
    add(admin, f"crm-{unique}", application)
    assert admin.delete(f"/targets/crm-{unique}").status_code == 204
    assert_error(admin.get(f"/targets/crm-{unique}"), 404, "not_found")


def test_resume_lifts_a_quarantine(
    admin: httpx.Client, application: Peer, unique: str, live_server: LiveServer
) -> None:
    name = f"crm-{unique}"
    add(admin, name, application)
    asyncio.run(_quarantine(live_server.database_url, name))
    assert admin.get(f"/targets/{name}").json()["status"] == "quarantined"
    resumed = admin.post(f"/targets/{name}/resume")
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    assert resumed.json()["quarantine"] is None


async def _quarantine(url: str, name: str) -> None:
    database = Database(url)
    try:
        repository = TargetRepository(database)
        await repository.quarantine((await repository.by_name(name)).id, "20 failures in a row")
    finally:
        await database.dispose()


def test_a_credential_the_target_echoed_is_redacted(
    admin: httpx.Client, application: Peer, unique: str, live_server: LiveServer
) -> None:
    name = f"crm-{unique}"
    add(admin, name, application)

    async def record() -> None:
        database = Database(live_server.database_url)
        try:
            repository = TargetRepository(database)
            row = await repository.by_name(name)
            await repository.record_error(row.id, f"401: bad header 'Authorization: Bearer {application.token}'")
        finally:
            await database.dispose()

    asyncio.run(record())
    response = admin.get(f"/targets/{name}")
    assert application.token not in response.text
    assert response.json()["last_error"]["message"] == "401: bad header 'Authorization: Bearer [redacted]'"


def test_adding_a_name_twice_is_a_conflict(admin: httpx.Client, application: Peer, unique: str) -> None:
    add(admin, f"crm-{unique}", application)
    body = {"name": f"crm-{unique}", "url": application.base_url, "token": "x"}
    assert "already exists" in assert_error(admin.post("/targets", json=body), 409, "conflict")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"config": {"scope": "userType eq"}}, "scope is not a valid SCIM filter"),
        # Issue 11, item 4: settings that would make every propagate round fail are refused when given.
        ({"config": {"scope": 'meta.created gt "0001-01-01T00:00:00+14:00"'}}, "scope is not a valid SCIM filter"),
        ({"config": {"quarantine_after": "abc"}}, "quarantine_after"),
        ({"config": {"push_groups": "yes"}}, "push_groups must be true or false"),
        ({"config": {"deprovision": "archive"}}, "deprovision must be one of"),
        ({"config": {"deprovision": ["delete"]}}, "deprovision must be one of"),
        ({"config": {"mapping": {"title": "title"}}}, "mapping must be a list"),
        ({"config": {"tombstone_days": -1}}, "tombstone_days"),
        ({"config": {"mapping": [{"target": "title"}]}}, "exactly one of source and constant"),
        ({"config": "scope"}, "must be a JSON object"),
        ({"url": "ftp://crm.example"}, "https://"),
        ({"url": "https://u:secret@crm.example"}, "must not hold credentials"),
        ({"token": ""}, "token is empty"),
        ({"token": 42}, "token must be a string"),
        ({"name": "has space"}, "target name"),
        ({"colour": "blue"}, "unknown fields colour"),
    ],
)
def test_invalid_targets_are_refused_with_the_reason(
    admin: httpx.Client, application: Peer, unique: str, change: dict[str, Any], message: str
) -> None:
    body = {"name": f"crm-{unique}", "url": application.base_url, "token": application.token, **change}
    response = admin.post("/targets", json=body)
    assert message in assert_error(response, 400, "invalid_request")
    assert "secret" not in response.text
    assert_error(admin.get(f"/targets/crm-{unique}"), 404, "not_found")


def test_a_missing_field_is_named(admin: httpx.Client, application: Peer, unique: str) -> None:
    response = admin.post("/targets", json={"name": f"crm-{unique}", "url": application.base_url})
    assert "token is required" in assert_error(response, 400, "invalid_request")


def test_bodies_must_be_json(admin: httpx.Client) -> None:
    assert_error(
        admin.post("/targets", content=b"{", headers={"content-type": "application/json"}), 400, "invalid_request"
    )
    assert_error(
        admin.post("/targets", content=b"name=x", headers={"content-type": "text/plain"}), 415, "unsupported_media_type"
    )


def test_an_unknown_target_is_404(admin: httpx.Client) -> None:
    for response in (
        admin.get("/targets/nowhere"),
        admin.patch("/targets/nowhere", json={"url": "https://x.example"}),
        admin.delete("/targets/nowhere"),
        admin.post("/targets/nowhere/test"),
        admin.post("/targets/nowhere/resume"),
    ):
        assert "nowhere" in assert_error(response, 404, "not_found")


def test_unknown_paths_and_methods_answer_in_json(admin: httpx.Client) -> None:
    assert_error(admin.get("/nothing-here"), 404, "not_found")
    response = admin.put("/targets", json={})
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}


def test_no_token_is_401(live_server: LiveServer) -> None:
    response = httpx.get(f"{admin_url(live_server)}/targets")
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_scim_token_is_forbidden(live_server: LiveServer) -> None:
    response = httpx.get(f"{admin_url(live_server)}/targets", headers={"Authorization": f"Bearer {live_server.token}"})
    assert "admin scope" in assert_error(response, 403, "forbidden")


def test_an_admin_token_may_use_scim_too(live_server: LiveServer, admin_token: str) -> None:
    with live_server.client(token=admin_token) as client:
        assert client.get("/Users", params={"count": 1}).status_code == 200


def test_the_openapi_document_describes_the_endpoints(live_server: LiveServer) -> None:
    document = httpx.get(f"{admin_url(live_server)}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert set(document["paths"]) == {
        "/targets",
        "/targets/{name}",
        "/targets/{name}/test",
        "/targets/{name}/resume",
        "/targets/{name}/reconcile",
        *(path for path, *_ in admin_policy.ROUTES),
        *(path for path, *_ in admin_reviews.ROUTES),
        *(path for path, *_ in admin_evidence.ROUTES),
        *(path for path, *_ in admin_operations.ROUTES),
        *(path for path, *_ in admin_nhi.ROUTES),
        *(path for path, *_ in admin_sources.ROUTES),
    }
    assert document["components"]["schemas"]["NewTarget"]["properties"]["token"]["writeOnly"] is True


def test_token_scopes_are_checked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tokens.db'}"
    upgrade(url)

    async def run() -> tuple[set[str], set[str]]:
        database = Database(url)
        store = TokenStore(database)
        try:
            with pytest.raises(InvalidValue, match="unknown token scope root"):
                await store.create("bad", created_by="tests", scopes="root")
            scim = await store.verify(await store.create("client", created_by="tests"))
            admin = await store.verify(await store.create("admin", created_by="tests", scopes="admin"))
            assert scim is not None and admin is not None
            assert not scim.allows("admin") and admin.allows("admin") and admin.allows("scim")
            return set(scim.scopes), set(admin.scopes)
        finally:
            await database.dispose()

    assert asyncio.run(run()) == ({"scim"}, {"admin"})


def test_an_operator_sees_status_pushes_runs_and_tokens(
    admin: httpx.Client, application: Peer, unique: str, live_server: LiveServer, admin_token: str
) -> None:
    """Issue 12, item 17: what ``target status``, the push log, ``reconcile`` and ``token list`` show."""
    name = f"ops-{unique}"
    assert add(admin, name, application, config={"scope": f'userName sw "ops-{unique}"'}).status_code == 201
    with live_server.client(token=admin_token) as scim:
        created = scim.post(
            "/Users",
            json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"ops-{unique}@example.com"},
        )
    assert created.status_code == 201
    user_id = created.json()["id"]
    deadline = time.monotonic() + 30
    pushes: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not pushes:
        pushes = [p for p in admin.get(f"/targets/{name}/push-log").json()["pushes"] if p["identity"] == user_id]
        time.sleep(0.05)
    assert pushes and pushes[0]["outcome"] == "ok" and pushes[0]["action"] == "create"
    status = admin.get(f"/targets/{name}/status").json()
    assert status["target"] == name and status["linked_users"] == 1 and status["pending"] == 0
    assert status["latency_samples"] >= 1 and application.token not in json.dumps(status)
    assert admin.get(f"/targets/{name}/push-log", params={"outcome": "failed"}).json()["pushes"] == []
    assert admin.get(f"/targets/{name}/push-log", params={"outcome": "maybe"}).status_code == 400
    assert admin.get(f"/targets/{name}/push-log", params={"limit": "0"}).status_code == 400
    paged = admin.get(f"/targets/{name}/push-log", params={"limit": "1"}).json()
    assert len(paged["pushes"]) == 1 and paged["next"].startswith("?limit=1&before=")
    assert admin.post(f"/targets/{name}/reconcile", json={}).status_code == 200
    [run] = admin.get(f"/targets/{name}/reconcile-runs").json()["runs"]
    assert run["trigger"] == "api" and run["status"] == "ok" and run["users_read"] >= 1
    assert admin.get("/targets/nosuch/status").status_code == 404
    assert admin.get("/targets/nosuch/reconcile-runs").status_code == 404
    listed = admin.get("/tokens")
    assert listed.status_code == 200 and admin_token not in listed.text and "hash" not in listed.text
    mine = [t for t in listed.json()["tokens"] if "admin" in t["scopes"]]
    assert mine and all(t["status"] == "active" for t in mine)
