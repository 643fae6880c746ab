"""Agents and AgenticApplications over HTTP (draft-abbey-scim-agent-extension), on SQLite and PostgreSQL:
create, read, uniqueness, PUT, PATCH, delete, filters, sorting, index and cursor paging, ETags,
attribute selection and discovery, as for Users."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from scimward.settings import Settings
from tests.conftest import LiveServer, ServerThread, issue_token
from tests.scimdata import ENTERPRISE, assert_error, patch, user

AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
APP = "urn:ietf:params:scim:schemas:core:2.0:AgenticApplication"
NHI = "urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"


def agent(name: str, **extra: Any) -> dict[str, Any]:
    return {"schemas": [AGENT], "name": name, **extra}


def create(scim: httpx.Client, body: dict[str, Any], path: str = "/Agents") -> dict[str, Any]:
    response = scim.post(path, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


def test_create_returns_201_with_location_etag_and_meta(scim: httpx.Client, unique: str) -> None:
    response = scim.post("/Agents", json=agent(unique, displayName="Helper", agentType="Assistant", active=True))
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == body["meta"]["location"]
    assert body["meta"]["location"].endswith(f"/Agents/{body['id']}")
    assert response.headers["etag"] == body["meta"]["version"]
    assert body["meta"]["resourceType"] == "Agent"
    assert body["schemas"] == [AGENT]
    assert body["name"] == unique and body["agentType"] == "Assistant"


def test_get_returns_owners_extension_and_credential_metadata(scim: httpx.Client, unique: str) -> None:
    owner = scim.post("/Users", json=user(f"owner-{unique}")).json()
    created = create(
        scim,
        agent(
            unique,
            owners=[{"value": owner["id"], "type": "User"}],
            **{
                "schemas": [AGENT, NHI],
                NHI: {
                    "kind": "ai_agent",
                    "purpose": "triage",
                    "environment": "prod",
                    "expires": "2099-01-01T00:00:00Z",
                    "credentials": [
                        {"identifier": "key-1", "fingerprint": "sha256:ab", "created": "2026-01-01T00:00:00Z"}
                    ],
                },
            },
        ),
    )
    fetched = scim.get(f"/Agents/{created['id']}").json()
    assert fetched["owners"] == [{"value": owner["id"], "type": "User"}]
    assert fetched[NHI]["kind"] == "ai_agent" and fetched[NHI]["environment"] == "prod"
    assert fetched[NHI]["credentials"][0]["identifier"] == "key-1"
    assert fetched["schemas"] == [AGENT, NHI]


def test_unknown_id_is_404_and_a_user_id_is_not_an_agent(scim: httpx.Client, unique: str) -> None:
    assert_error(scim.get("/Agents/does-not-exist"), 404)
    person = scim.post("/Users", json=user(unique)).json()
    assert_error(scim.get(f"/Agents/{person['id']}"), 404)
    made = create(scim, agent(unique))
    assert_error(scim.get(f"/Users/{made['id']}"), 404)


def test_name_is_required_and_unique_case_insensitively(scim: httpx.Client, unique: str) -> None:
    assert_error(scim.post("/Agents", json={"schemas": [AGENT], "displayName": "x"}), 400, "invalidValue")
    create(scim, agent(f"Dup-{unique}"))
    assert_error(scim.post("/Agents", json=agent(f"dup-{unique.upper()}")), 409, "uniqueness")
    # A user of the same name is another resource type: no clash.
    assert scim.post("/Users", json=user(f"dup-{unique}")).status_code == 201


def test_groups_is_read_only(scim: httpx.Client, unique: str) -> None:
    made = create(scim, agent(unique, groups=[{"value": "g1"}]))
    assert "groups" not in scim.get(f"/Agents/{made['id']}").json()


def test_an_agent_is_a_group_member_by_patch_and_put_and_an_application_is_not(scim: httpx.Client, unique: str) -> None:
    """draft-abbey-scim-agent-extension: an Agent's read-only ``groups`` has the form of a User's, so a
    Group may hold Agents; the draft gives AgenticApplications no ``groups``."""
    bot = create(scim, agent(unique))
    person = scim.post("/Users", json=user(f"member-{unique}")).json()
    group = scim.post(
        "/Groups", json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": f"bots-{unique}"}
    ).json()
    added = scim.patch(
        f"/Groups/{group['id']}",
        json=patch({"op": "add", "path": "members", "value": [{"value": bot["id"], "type": "Agent"}]}),
    )
    assert added.status_code in (200, 204), added.text
    [member] = scim.get(f"/Groups/{group['id']}").json()["members"]
    assert (member["value"], member["type"]) == (bot["id"], "Agent")
    [joined] = scim.get(f"/Agents/{bot['id']}").json()["groups"]
    assert (joined["value"], joined["display"]) == (group["id"], f"bots-{unique}")
    replaced = scim.put(
        f"/Groups/{group['id']}",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": f"bots-{unique}",
            "members": [{"value": person["id"]}],
        },
    )
    assert replaced.status_code == 200, replaced.text
    assert "groups" not in scim.get(f"/Agents/{bot['id']}").json()
    assert_error(
        scim.patch(
            f"/Groups/{group['id']}",
            json=patch({"op": "add", "path": "members", "value": [{"value": bot["id"], "type": "User"}]}),
        ),
        400,
        "invalidValue",
    )
    application = create(scim, {"schemas": [APP], "name": f"app-{unique}"}, "/AgenticApplications")
    refused = assert_error(
        scim.patch(
            f"/Groups/{group['id']}",
            json=patch({"op": "add", "path": "members", "value": [{"value": application["id"]}]}),
        ),
        400,
        "invalidValue",
    )
    assert "AgenticApplication" in refused["detail"]
    assert [m["value"] for m in scim.get(f"/Groups/{group['id']}").json()["members"]] == [person["id"]]


def test_put_replaces_and_bumps_the_version(scim: httpx.Client, unique: str) -> None:
    made = create(scim, agent(unique, description="old", agentType="Assistant"))
    response = scim.put(f"/Agents/{made['id']}", json=agent(unique, description="new"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["description"] == "new" and "agentType" not in body
    assert body["meta"]["version"] != made["meta"]["version"]


def test_patch_replace_add_and_remove(scim: httpx.Client, unique: str) -> None:
    made = create(scim, agent(unique, active=True, roles=[{"value": "reader"}]))
    response = scim.patch(
        f"/Agents/{made['id']}",
        json=patch(
            {"op": "replace", "path": "active", "value": False},
            {"op": "add", "path": "roles", "value": [{"value": "writer"}]},
            {"op": "add", "path": f"{NHI}:purpose", "value": "nightly export"},
            {"op": "remove", "path": 'roles[value eq "reader"]'},
        ),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["active"] is False
    assert body["roles"] == [{"value": "writer"}]
    assert body[NHI]["purpose"] == "nightly export"


def test_patch_of_the_name_to_a_taken_one_is_409(scim: httpx.Client, unique: str) -> None:
    create(scim, agent(f"a-{unique}"))
    other = create(scim, agent(f"b-{unique}"))
    assert_error(
        scim.patch(f"/Agents/{other['id']}", json=patch({"op": "replace", "path": "name", "value": f"A-{unique}"})),
        409,
        "uniqueness",
    )


def test_delete_then_404(scim: httpx.Client, unique: str) -> None:
    made = create(scim, agent(unique))
    assert scim.delete(f"/Agents/{made['id']}").status_code == 204
    assert_error(scim.get(f"/Agents/{made['id']}"), 404)
    assert_error(scim.delete(f"/Agents/{made['id']}"), 404)


def test_etags_guard_writes_and_save_reads(scim: httpx.Client, unique: str) -> None:
    made = create(scim, agent(unique))
    version = made["meta"]["version"]
    unchanged = scim.get(f"/Agents/{made['id']}", headers={"If-None-Match": version})
    assert unchanged.status_code == 304 and unchanged.content == b""
    first = scim.patch(
        f"/Agents/{made['id']}",
        headers={"If-Match": version},
        json=patch({"op": "replace", "path": "description", "value": "first"}),
    )
    assert first.status_code == 200
    second = scim.patch(
        f"/Agents/{made['id']}",
        headers={"If-Match": version},
        json=patch({"op": "replace", "path": "description", "value": "second"}),
    )
    assert_error(second, 412)
    assert_error(scim.delete(f"/Agents/{made['id']}", headers={"If-Match": version}), 412)
    assert scim.get(f"/Agents/{made['id']}").json()["description"] == "first"


def test_attributes_and_excluded_attributes(scim: httpx.Client, unique: str) -> None:
    made = create(scim, agent(unique, description="d", agentType="Bot"))
    only = scim.get(f"/Agents/{made['id']}", params={"attributes": "agentType"}).json()
    assert set(only) - {"meta"} == {"schemas", "id", "agentType"}
    without = scim.get(f"/Agents/{made['id']}", params={"excludedAttributes": "description"}).json()
    assert "description" not in without and without["agentType"] == "Bot"


def test_agentic_application_with_agents_and_last_accessed(scim: httpx.Client, unique: str) -> None:
    helper = create(scim, agent(unique))
    app = create(
        scim,
        {
            "schemas": [APP],
            "name": f"app-{unique}",
            "lastAccessed": "2026-03-01T10:00:00Z",
            "applicationUrls": [{"value": "https://app.example/", "type": "home"}],
            "agents": [{"value": helper["id"], "type": "owned"}],
        },
        "/AgenticApplications",
    )
    assert app["meta"]["resourceType"] == "AgenticApplication"
    assert app["meta"]["location"].endswith(f"/AgenticApplications/{app['id']}")
    found = scim.get(
        "/AgenticApplications",
        params={"filter": f'name eq "app-{unique}" and agents[type eq "owned" and value eq "{helper["id"]}"]'},
    ).json()
    assert [r["id"] for r in found["Resources"]] == [app["id"]]
    stale = scim.get(
        "/AgenticApplications", params={"filter": f'name eq "app-{unique}" and lastAccessed lt "2026-06-01T00:00:00Z"'}
    ).json()
    assert stale["totalResults"] == 1
    assert_error(scim.post("/AgenticApplications", json={"schemas": [APP], "name": f"APP-{unique}"}), 409, "uniqueness")


# -- filters, sorting and paging over one population ------------------------------------------


@dataclass
class Fleet:
    prefix: str
    ids: dict[str, str] = field(default_factory=dict)
    owner: str = ""


#: Expiry dates are in the future: the live server's NHI worker disables expired NHIs.
@pytest.fixture(scope="module")
def fleet(live_server: LiveServer) -> Iterator[Fleet]:
    fleet = Fleet(f"a{uuid.uuid4().hex[:10]}")
    p = fleet.prefix
    with live_server.client() as client:
        fleet.owner = create(client, user(f"{p}-owner"), "/Users")["id"]

        def add(short: str, **attributes: Any) -> None:
            fleet.ids[short] = create(client, {"schemas": [AGENT, NHI], "name": f"{p}.{short}", **attributes})["id"]
            time.sleep(0.01)

        add(
            "alpha",
            displayName="Zed",
            agentType="Assistant",
            active=True,
            owners=[{"value": fleet.owner, "type": "User"}],
            protocols=[{"type": "MCP-Server"}],
            **{NHI: {"kind": "ai_agent", "environment": "prod", "expires": "2097-06-01T00:00:00Z"}},
        )
        add(
            "beta",
            displayName="Yan",
            agentType="Researcher",
            active=False,
            **{NHI: {"kind": "service_account", "environment": "staging"}},
        )
        add(
            "gamma",
            displayName="Xu",
            agentType="assistant",
            active=True,
            owners=[{"value": fleet.owner, "type": "User"}, {"value": "someone-else", "type": "User"}],
            **{NHI: {"kind": "api_key", "environment": "prod", "expires": "2099-01-01T00:00:00Z"}},
        )
        add("delta", displayName="Wei", active=True, entitlements=[{"value": "billing"}])
    yield fleet


def _names(client: httpx.Client, fleet: Fleet, filter_text: str, **params: Any) -> list[str]:
    response = client.get("/Agents", params={"filter": f'name sw "{fleet.prefix}." and ({filter_text})', **params})
    assert response.status_code == 200, response.text
    return [r["name"].removeprefix(f"{fleet.prefix}.") for r in response.json()["Resources"]]


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ('agentType eq "assistant"', {"alpha", "gamma"}),
        ("active eq true", {"alpha", "gamma", "delta"}),
        ("not (active eq true)", {"beta"}),
        ('displayName co "e"', {"alpha", "delta"}),
        ('protocols[type eq "MCP-Server"]', {"alpha"}),
        ('entitlements.value eq "billing"', {"delta"}),
        (f'{NHI}:kind eq "api_key" or {NHI}:environment eq "staging"', {"beta", "gamma"}),
        (f'{NHI}:expires lt "2098-01-01T00:00:00Z"', {"alpha"}),
        (f"{NHI}:expires pr", {"alpha", "gamma"}),
        ('meta.resourceType eq "Agent"', {"alpha", "beta", "gamma", "delta"}),
    ],
)
def test_filters(scim: httpx.Client, fleet: Fleet, filter_text: str, expected: set[str]) -> None:
    assert set(_names(scim, fleet, filter_text)) == expected


def test_filter_by_owner(scim: httpx.Client, fleet: Fleet) -> None:
    assert set(_names(scim, fleet, f'owners[value eq "{fleet.owner}"]')) == {"alpha", "gamma"}
    assert set(_names(scim, fleet, f'owners.value eq "{fleet.owner}" and owners.value eq "someone-else"')) == {"gamma"}


def test_name_eq_is_case_insensitive(scim: httpx.Client, fleet: Fleet) -> None:
    body = scim.get("/Agents", params={"filter": f'NAME eq "{fleet.prefix.upper()}.ALPHA"'}).json()
    assert [r["id"] for r in body["Resources"]] == [fleet.ids["alpha"]]


def test_user_attributes_are_no_agent_attributes(scim: httpx.Client) -> None:
    assert_error(scim.get("/Agents", params={"filter": 'userName eq "x"'}), 400, "invalidFilter")


def test_sort_by_name_and_display_name(scim: httpx.Client, fleet: Fleet) -> None:
    assert _names(scim, fleet, "id pr", sortBy="name") == ["alpha", "beta", "delta", "gamma"]
    assert _names(scim, fleet, "id pr", sortBy="displayName", sortOrder="descending") == [
        "alpha",
        "beta",
        "gamma",
        "delta",
    ]


def test_index_paging(scim: httpx.Client, fleet: Fleet) -> None:
    pages = [
        scim.get(
            "/Agents",
            params={"filter": f'name sw "{fleet.prefix}."', "sortBy": "name", "startIndex": start, "count": 2},
        ).json()
        for start in (1, 3)
    ]
    assert [p["totalResults"] for p in pages] == [4, 4]
    assert [p["startIndex"] for p in pages] == [1, 3]
    names = [r["name"].removeprefix(f"{fleet.prefix}.") for p in pages for r in p["Resources"]]
    assert names == ["alpha", "beta", "delta", "gamma"]


def test_cursor_paging_walks_every_agent_once(scim: httpx.Client, fleet: Fleet) -> None:
    seen: list[str] = []
    params: dict[str, Any] = {"filter": f'name sw "{fleet.prefix}."', "cursor": "", "count": 3}
    while True:
        body = scim.get("/Agents", params=params).json()
        seen += [r["id"] for r in body["Resources"]]
        if "nextCursor" not in body:
            break
        params["cursor"] = body["nextCursor"]
    assert sorted(seen) == sorted(fleet.ids.values())


def test_search_by_post(scim: httpx.Client, fleet: Fleet) -> None:
    response = scim.post(
        "/Agents/.search",
        json={
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
            "filter": f'name sw "{fleet.prefix}." and agentType eq "Researcher"',
            "attributes": ["name"],
        },
    )
    assert response.status_code == 200, response.text
    assert [r["name"] for r in response.json()["Resources"]] == [f"{fleet.prefix}.beta"]


# -- discovery --------------------------------------------------------------------------------


def test_discovery_announces_agents(scim: httpx.Client) -> None:
    types = {r["name"]: r for r in scim.get("/ResourceTypes").json()["Resources"]}
    assert types["Agent"]["endpoint"] == "/Agents" and types["Agent"]["schema"] == AGENT
    assert types["AgenticApplication"]["endpoint"] == "/AgenticApplications"
    assert {"schema": NHI, "required": False} in types["Agent"]["schemaExtensions"]
    # Users keep exactly the extensions of RFC 7643: clients with fixed User models refuse others.
    assert types["User"]["schemaExtensions"] == [{"schema": ENTERPRISE, "required": False}]
    schemas = {s["id"]: s for s in scim.get("/Schemas").json()["Resources"]}
    assert {AGENT, APP, NHI} <= set(schemas)
    agent_attributes = {a["name"]: a for a in schemas[AGENT]["attributes"]}
    assert agent_attributes["name"]["required"] is True and agent_attributes["name"]["uniqueness"] == "server"
    assert agent_attributes["groups"]["mutability"] == "readOnly"
    credentials = next(a for a in schemas[NHI]["attributes"] if a["name"] == "credentials")
    assert "secret" not in {s["name"] for s in credentials["subAttributes"]}
    assert scim.get("/ResourceTypes/Agent").json()["endpoint"] == "/Agents"


def test_service_provider_config_announces_the_agent_extension_when_set(hub_url: str) -> None:
    """Off by default (strict RFC 7643 validators refuse unknown members, see test_conformance.py)."""
    token = issue_token(hub_url, "spc")
    for setting, expected in ((False, None), (True, {"supported": True})):
        with (
            ServerThread(Settings(database_url=hub_url, run_worker=False, agent_extension_in_config=setting)) as server,
            httpx.Client(
                base_url=f"http://127.0.0.1:{server.port}/scim/v2", headers={"Authorization": f"Bearer {token}"}
            ) as client,
        ):
            assert client.get("/ServiceProviderConfig").json().get("agentExtension") == expected
