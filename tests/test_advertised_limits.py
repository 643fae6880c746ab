"""The request limits are advertised in ServiceProviderConfig when asked, and the hub holds requests to
exactly what it advertises (issue 11, item 1: "bound the operations per request, advertised")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scimward.scim.limits import LIMITS_SCHEMA
from scimward.settings import Settings
from tests.conftest import ServerThread, issue_token
from tests.scimdata import assert_error, patch, user

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


def _client(hub_url: str, **settings: Any) -> Iterator[httpx.Client]:
    token = issue_token(hub_url, "limits")
    with (
        ServerThread(Settings(database_url=hub_url, run_worker=False, **settings)) as server,
        httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}/scim/v2", headers={"Authorization": f"Bearer {token}"}
        ) as client,
    ):
        yield client


@pytest.fixture
def advertising(hub_url: str) -> Iterator[httpx.Client]:
    """A hub that advertises its limits, with a PATCH limit other than the default."""
    yield from _client(hub_url, limits_in_config=True, patch_max_operations=25)


def test_the_limits_are_not_in_the_config_by_default(hub_url: str) -> None:
    """Strict RFC 7643 clients (scim2-models) refuse members the RFC does not define."""
    for client in _client(hub_url):
        config = client.get("/ServiceProviderConfig").json()
        assert config["schemas"] == [SPC_SCHEMA]
        assert LIMITS_SCHEMA not in config
        # The schema is described whatever the setting, as the agent schemas are.
        assert client.get(f"/Schemas/{LIMITS_SCHEMA}").status_code == 200


def test_the_advertised_limits_are_the_ones_enforced(advertising: httpx.Client, unique: str) -> None:
    config = advertising.get("/ServiceProviderConfig").json()
    assert config["schemas"] == [SPC_SCHEMA, LIMITS_SCHEMA]
    limits = config[LIMITS_SCHEMA]
    described = {a["name"] for a in advertising.get(f"/Schemas/{LIMITS_SCHEMA}").json()["attributes"]}
    assert set(limits) == described
    assert limits["patchMaxOperations"] == 25

    created = advertising.post("/Users", json=user(f"limits-{unique}")).json()
    location = f"/Users/{created['id']}"

    def titles(n: int) -> dict[str, Any]:
        return patch(*({"op": "replace", "path": "title", "value": f"t{i}"} for i in range(n)))

    assert advertising.patch(location, json=titles(limits["patchMaxOperations"])).status_code in (200, 204)
    assert_error(advertising.patch(location, json=titles(limits["patchMaxOperations"] + 1)), 400, "tooMany")

    def nested(depth: int) -> str:
        return "(" * depth + 'userName eq "nobody"' + ")" * depth

    assert advertising.get("/Users", params={"filter": nested(limits["filterMaxNesting"])}).status_code == 200
    assert_error(
        advertising.get("/Users", params={"filter": nested(limits["filterMaxNesting"] + 1)}), 400, "invalidFilter"
    )

    long_name = "x" * limits["maxTextLength"]
    assert advertising.post("/Users", json=user(long_name)).status_code == 201
    assert_error(advertising.post("/Users", json=user(long_name + "y")), 400, "invalidValue")

    over = advertising.get("/Users", params={"startIndex": str(limits["maxIndex"] + 1)})
    assert_error(over, 400, "invalidValue")
