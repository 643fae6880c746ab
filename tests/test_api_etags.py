"""ETags (RFC 7644 3.14): If-Match guards writes, If-None-Match saves reads."""

from __future__ import annotations

import asyncio

import httpx

from tests.conftest import LiveServer
from tests.scimdata import assert_error, patch, user


def created(scim: httpx.Client, name: str) -> dict[str, object]:
    return scim.post("/Users", json=user(name)).json()  # type: ignore[no-any-return]


def test_get_with_current_etag_is_304(scim: httpx.Client, unique: str) -> None:
    body = created(scim, unique)
    response = scim.get(f"/Users/{body['id']}", headers={"If-None-Match": str(body["meta"]["version"])})  # type: ignore[index]
    assert response.status_code == 304 and response.content == b""


def test_get_with_stale_etag_returns_the_resource(scim: httpx.Client, unique: str) -> None:
    body = created(scim, unique)
    response = scim.get(f"/Users/{body['id']}", headers={"If-None-Match": 'W/"0"'})
    assert response.status_code == 200 and response.json()["userName"] == unique


def test_patch_with_matching_if_match_applies(scim: httpx.Client, unique: str) -> None:
    body = created(scim, unique)
    version = str(body["meta"]["version"])  # type: ignore[index]
    response = scim.patch(
        f"/Users/{body['id']}",
        headers={"If-Match": version},
        json=patch({"op": "replace", "path": "title", "value": "x"}),
    )
    assert response.status_code == 200 and response.headers["etag"] != version


def test_second_writer_with_old_etag_gets_412_and_no_update_is_lost(scim: httpx.Client, unique: str) -> None:
    body = created(scim, unique)
    version = str(body["meta"]["version"])  # type: ignore[index]
    first = scim.patch(
        f"/Users/{body['id']}",
        headers={"If-Match": version},
        json=patch({"op": "replace", "path": "title", "value": "first"}),
    )
    assert first.status_code == 200
    second = scim.patch(
        f"/Users/{body['id']}",
        headers={"If-Match": version},
        json=patch({"op": "replace", "path": "title", "value": "second"}),
    )
    assert_error(second, 412)
    assert scim.get(f"/Users/{body['id']}").json()["title"] == "first"


def test_delete_with_stale_etag_is_412(scim: httpx.Client, unique: str) -> None:
    body = created(scim, unique)
    assert_error(scim.delete(f"/Users/{body['id']}", headers={"If-Match": 'W/"99"'}), 412)
    assert scim.get(f"/Users/{body['id']}").status_code == 200


def test_concurrent_patches_of_one_user_all_apply(live_server: LiveServer, unique: str) -> None:
    """Writers racing on one identity: none fails and none is lost (each bumps the version once)."""
    with live_server.client() as scim:
        body = created(scim, unique)

    async def race() -> list[int]:
        headers = {"Authorization": f"Bearer {live_server.token}"}
        async with httpx.AsyncClient(base_url=live_server.base_url, headers=headers) as client:
            responses = await asyncio.gather(
                *(
                    client.patch(
                        f"/Users/{body['id']}", json=patch({"op": "replace", "path": "title", "value": f"t{n}"})
                    )
                    for n in range(20)
                )
            )
        return [r.status_code for r in responses]

    assert asyncio.run(race()) == [200] * 20
    with live_server.client() as scim:
        assert scim.get(f"/Users/{body['id']}").json()["meta"]["version"] == 'W/"21"'
