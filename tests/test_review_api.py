"""Group governance over SCIM, and access reviews in the admin API (issue 15)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from scimward.api.settings import Settings
from scimward.governance.reviews import Reviews
from scimward.scim.resource_types import GOVERNANCE_GROUP_SCHEMA, GROUP_SCHEMA, USER_SCHEMA
from scimward.store.database import Database
from tests.conftest import ServerThread, issue_token


@pytest.fixture
def hub(hub_url: str) -> Iterator[tuple[str, httpx.Client, httpx.Client, str]]:
    """The database URL, an admin client, an IdP's SCIM client, and a member's userName (also an admin token's)."""
    member = f"mia-{uuid.uuid4().hex[:6]}"
    with ServerThread(Settings(database_url=hub_url, run_worker=False)) as server:
        base = f"http://127.0.0.1:{server.port}"
        admin = issue_token(hub_url, f"carol-{uuid.uuid4().hex[:6]}", scopes="admin")
        idp = issue_token(hub_url, f"okta-{uuid.uuid4().hex[:6]}")
        with (
            httpx.Client(base_url=base + "/admin/v1", headers={"Authorization": f"Bearer {admin}"}) as a,
            httpx.Client(base_url=base + "/scim/v2", headers={"Authorization": f"Bearer {idp}"}) as s,
        ):
            yield hub_url, a, s, member


def _start(url: str, name: str, filter_text: str) -> None:
    async def run() -> None:
        database = Database(url)
        try:
            await Reviews(database).start(name, groups=filter_text, actor="tests")
        finally:
            await database.dispose()

    asyncio.run(run())


def test_the_idp_sets_governance_and_a_reviewer_decides_over_the_api(
    hub: tuple[str, httpx.Client, httpx.Client, str],
) -> None:
    url, admin, scim, member = hub
    users = [
        scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": name}).json()
        for name in (member, f"max-{uuid.uuid4().hex[:6]}", f"olga-{uuid.uuid4().hex[:6]}")
    ]
    group_name = f"prod-{uuid.uuid4().hex[:6]}"
    created = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP_SCHEMA, GOVERNANCE_GROUP_SCHEMA],
            "displayName": group_name,
            "members": [{"value": u["id"]} for u in users[:2]],
            GOVERNANCE_GROUP_SCHEMA: {
                "owners": [{"value": users[2]["id"], "display": users[2]["userName"]}],
                "privileged": True,
                "reviewCadence": 30,
                "purpose": "production",
            },
        },
    )
    assert created.status_code == 201, created.text
    shown = scim.get(f"/Groups/{created.json()['id']}").json()
    assert shown[GOVERNANCE_GROUP_SCHEMA]["privileged"] is True
    schema = scim.get(f"/Schemas/{GOVERNANCE_GROUP_SCHEMA}").json()
    assert {a["name"] for a in schema["attributes"]} >= {"owners", "privileged", "reviewCadence", "membershipExpires"}
    groups = admin.get("/groups", params={"privileged": "true"}).json()["groups"]
    assert [(g["name"], g["owners"], g["reviewCadence"]) for g in groups] == [(group_name, [users[2]["userName"]], 30)]

    campaign = f"q-{uuid.uuid4().hex[:6]}"
    _start(url, campaign, f'displayName eq "{group_name}"')
    items = admin.get(f"/reviews/{campaign}").json()["items"]
    mine = next(i["id"] for i in items if i["member"] == member)
    other = next(i["id"] for i in items if i["member"] != member)

    member_admin = issue_token(url, member, scopes="admin")  # a token named as the member acts for them
    base = str(admin.base_url).rstrip("/")
    refused = httpx.post(
        f"{base}/reviews/{campaign}/decide",
        json={"items": [mine], "decision": "keep"},
        headers={"Authorization": f"Bearer {member_admin}"},
    )
    assert refused.status_code == 409 and "cannot review their own access" in refused.json()["detail"]
    bad = admin.post(f"/reviews/{campaign}/decide", json={"items": ["x"], "decision": "keep"})
    assert bad.status_code == 400
    unknown = admin.post("/reviews/nope/decide", json={"items": [1], "decision": "keep"})
    assert unknown.status_code == 404

    decided = admin.post(
        f"/reviews/{campaign}/decide", json={"items": [mine], "decision": "revoke", "note": "left the team"}
    )
    assert decided.status_code == 200 and decided.json()["decided"][0]["outcome"] == "applied"
    assert [m["value"] for m in scim.get(f"/Groups/{created.json()['id']}").json()["members"]] == [users[1]["id"]]
    assert admin.post(f"/reviews/{campaign}/close").json()["defaulted"] == [
        {"id": other, "decision": "keep", "outcome": None}
    ]
    listed = admin.get("/reviews").json()["campaigns"]
    assert listed[0]["name"] == campaign and listed[0]["counts"] == {"keep": 1, "revoke": 1, "undecided": 0}
    csv_report = admin.get(f"/reviews/{campaign}/report", params={"format": "csv"})
    assert csv_report.headers["content-type"].startswith("text/csv") and "left the team" in csv_report.text
    assert "/reviews/{name}/decide" in admin.get("/openapi.json").json()["paths"]


def test_adding_an_owner_over_scim_appends_it(hub: tuple[str, httpx.Client, httpx.Client, str]) -> None:
    """RFC 7644 3.5.2.1: an add to a multi-valued attribute adds a value; the owners there stay."""
    _url, _admin, scim, _member = hub
    first, second = (
        scim.post("/Users", json={"schemas": [USER_SCHEMA], "userName": f"o-{uuid.uuid4().hex[:6]}"}).json()
        for _ in range(2)
    )
    group = scim.post(
        "/Groups",
        json={
            "schemas": [GROUP_SCHEMA, GOVERNANCE_GROUP_SCHEMA],
            "displayName": f"g-{uuid.uuid4().hex[:6]}",
            GOVERNANCE_GROUP_SCHEMA: {"owners": [{"value": first["id"]}]},
        },
    ).json()
    patched = scim.patch(
        f"/Groups/{group['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": f"{GOVERNANCE_GROUP_SCHEMA}:owners", "value": [{"value": second["id"]}]}
            ],
        },
    )
    assert patched.status_code == 200, patched.text
    assert [o["value"] for o in patched.json()[GOVERNANCE_GROUP_SCHEMA]["owners"]] == [first["id"], second["id"]]
