"""The gate in the admin API: the policy, held changes and their four-eyes approval, breakers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from scimward.api.settings import Settings
from tests.conftest import ServerThread, issue_token

POLICY = """
rules:
  - name: admins-need-approval
    when: change.type == "Group" && change.after.displayName.startsWith("admins") && size(change.members_added) > 0
    action: hold
    reason: administrative access
"""


@pytest.fixture
def hub(hub_url: str) -> Iterator[tuple[httpx.Client, httpx.Client, httpx.Client]]:
    """An admin client, an IdP's SCIM client, and an admin client that also acts as an IdP."""
    with ServerThread(Settings(database_url=hub_url, run_worker=False)) as server:
        base = f"http://127.0.0.1:{server.port}"

        def client(token: str, path: str) -> httpx.Client:
            return httpx.Client(base_url=base + path, headers={"Authorization": f"Bearer {token}"}, timeout=30)

        admin = issue_token(hub_url, f"carol-{uuid.uuid4().hex[:6]}", scopes="admin")
        idp = issue_token(hub_url, f"okta-{uuid.uuid4().hex[:6]}")
        both = issue_token(hub_url, f"dave-{uuid.uuid4().hex[:6]}", scopes="admin")
        with client(admin, "/admin/v1") as a, client(idp, "/scim/v2") as s, client(both, "") as d:
            yield a, s, d


def test_an_invalid_policy_is_refused_and_nothing_changes(hub: tuple[httpx.Client, ...]) -> None:
    admin = hub[0]
    bad = "rules:\n  - name: broken\n    when: change.op ==\n    action: deny\n"
    response = admin.put("/policy", content=bad, headers={"Content-Type": "application/yaml"})
    assert response.status_code == 400
    assert "rule 'broken': invalid expression at line 1, column 14" in response.json()["detail"]
    assert admin.get("/policy").json()["version"] == 0


def test_a_held_change_is_approved_over_the_api_by_someone_else(hub: tuple[httpx.Client, ...]) -> None:
    admin, scim, both = hub
    preview = admin.put("/policy", params={"dry_run": "true"}, content=POLICY).json()
    assert preview["dry_run"] and preview["added"] == ["admins-need-approval"]
    assert admin.get("/policy").json()["version"] == 0
    assert admin.put("/policy", content=POLICY).json()["added"] == ["admins-need-approval"]
    user = scim.post(
        "/Users",
        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": f"u-{uuid.uuid4().hex[:6]}"},
    ).json()
    group = both.post(
        "/scim/v2/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": f"admins-{uuid.uuid4().hex[:6]}",
            "members": [{"value": user["id"]}],
        },
    )
    assert group.status_code == 201  # the source sees its change accepted, members and all
    assert [m["value"] for m in group.json()["members"]] == [user["id"]]
    pending = admin.get("/changes", params={"status": "pending"}).json()["changes"]
    assert len(pending) == 1 and pending[0]["reasons"] == ["admins-need-approval: administrative access"]
    # The change's JSON is the command line's (ChangeRow.to_json): named as a person knows it, times in UTC.
    assert pending[0]["name"] == group.json()["displayName"] and pending[0]["created"].endswith("Z")
    change = pending[0]["id"]
    diverged = admin.get("/diverged").json()["identities"]
    assert [(d["type"], d["change"], d["change_status"]) for d in diverged] == [("Group", change, "pending")]
    refused = both.post(f"/admin/v1/changes/{change}/approve")
    assert refused.status_code == 409 and "cannot approve" in refused.json()["detail"]
    approved = admin.post(f"/changes/{change}/approve", json={"note": "checked"})
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    assert admin.get(f"/changes/{change}").json()["approvals"][0]["note"] == "checked"
    assert admin.get(f"/changes/{change[:8]}x").status_code == 404
    assert admin.get("/diverged").json()["identities"] == []
    assert admin.get("/breakers").json() == {"targets": []}
    assert "/changes/{id}/approve" in admin.get("/openapi.json").json()["paths"]
