"""The outbound SCIM client: failures sorted into decisions, and round trips with real targets.

Unit tests of the failure handling (status and transport error → error class, Retry-After, backoff,
paging guards against misbehaving targets) use ``httpx.MockTransport``; everything else talks to
real servers on 127.0.0.1: a second scimward (SQLite and PostgreSQL, cursor paging) and scim2-server
(an implementation nobody here wrote, index paging only) in a uvicorn subprocess.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, TypeVar

import httpx
import pytest

from scimward.sync import (
    AlreadyExistsError,
    AuthError,
    BadRequestError,
    HaltError,
    NotFoundError,
    ProtocolError,
    TargetClient,
    TargetError,
    TransientError,
    backoff,
    eq_filter,
    parse_retry_after,
)
from scimward.sync.errors import DETAIL_LIMIT
from tests.conftest import LiveServer, Peer, free_port

T = TypeVar("T")
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def mock_client(handler: Callable[[httpx.Request], httpx.Response]) -> TargetClient:
    return TargetClient("http://target.invalid/scim/v2", "s3cret-token", transport=httpx.MockTransport(handler))


def answer(status: int, body: Any = None, **headers: str) -> Callable[[httpx.Request], httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        return (
            httpx.Response(status, json=body, headers=headers)
            if body is not None
            else httpx.Response(status, headers=headers)
        )

    return handler


def scim_error(status: int, detail: str, scim_type: str | None = None) -> dict[str, Any]:
    body = {"schemas": [ERROR_SCHEMA], "status": str(status), "detail": detail}
    return body | ({"scimType": scim_type} if scim_type else {})


def fail_with(
    handler: Callable[[httpx.Request], httpx.Response], call: Callable[[TargetClient], Awaitable[object]]
) -> TargetError:
    async def go() -> TargetError:
        async with mock_client(handler) as client:
            with pytest.raises(TargetError) as caught:
                await call(client)
            return caught.value

    return run(go())


def get_user(client: TargetClient) -> Awaitable[object]:
    return client.get("Users", "u1")


# --- statuses and transport failures → error classes ------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (429, TransientError),
        (500, TransientError),
        (502, TransientError),
        (503, TransientError),
        (504, TransientError),
        (408, TransientError),
        (507, TransientError),
        (404, NotFoundError),
        (409, AlreadyExistsError),
        (400, BadRequestError),
        (405, BadRequestError),
        (412, BadRequestError),
        (413, BadRequestError),
        (422, BadRequestError),
        (501, BadRequestError),
        (401, AuthError),
        (403, AuthError),
    ],
)
def test_status_maps_to_error_class(status: int, kind: type[TargetError]) -> None:
    error = fail_with(answer(status, scim_error(status, "nope")), get_user)
    assert type(error) is kind
    assert error.status == status and error.detail == "nope"
    assert error.retryable is (kind is TransientError)


def test_auth_errors_halt_the_target() -> None:
    assert isinstance(fail_with(answer(401, scim_error(401, "bad token")), get_user), HaltError)


def test_conflict_keeps_scim_type() -> None:
    """RFC 7644 3.3: a duplicate answers 409 with scimType uniqueness."""
    error = fail_with(answer(409, scim_error(409, "userName taken", "uniqueness")), get_user)
    assert isinstance(error, AlreadyExistsError) and error.scim_type == "uniqueness"
    assert str(error) == "409 uniqueness: userName taken"


def test_non_scim_error_body_becomes_the_detail_truncated() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, text="<html>" + "x" * 5000)

    error = fail_with(handler, get_user)
    assert error.detail.startswith("<html>xxx") and len(error.detail) == DETAIL_LIMIT


def test_redirect_is_not_followed_and_halts() -> None:
    error = fail_with(answer(301, Location="https://elsewhere.invalid/"), get_user)
    assert type(error) is HaltError and "https://elsewhere.invalid/" in error.detail


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.ReadTimeout("slow"),
        httpx.ConnectTimeout("slow"),
        httpx.PoolTimeout("busy"),
        httpx.RemoteProtocolError("hung up"),
    ],
)
def test_transport_failures_are_transient_and_chained(exc: httpx.HTTPError) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    error = fail_with(handler, get_user)
    assert type(error) is TransientError and error.status is None and error.__cause__ is exc


def test_a_url_we_cannot_speak_halts() -> None:
    async def go() -> None:
        async with TargetClient("ftp://127.0.0.1/scim", "t") as client:
            with pytest.raises(HaltError) as caught:
                await client.get("Users", "u1")
            assert isinstance(caught.value.__cause__, httpx.UnsupportedProtocol)

    run(go())


def test_connection_refused_by_a_real_closed_port_is_transient() -> None:
    async def go() -> None:
        async with TargetClient(f"http://127.0.0.1:{free_port()}/scim/v2", "t") as client:
            with pytest.raises(TransientError):
                await client.get("Users", "u1")

    run(go())


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"[1, 2]", b'{"userName": "no id"}'])
def test_success_without_a_resource_is_a_protocol_error(body: bytes) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body)

    assert type(fail_with(handler, get_user)) is ProtocolError


def test_unexpected_success_status_is_a_protocol_error() -> None:
    error = fail_with(answer(202, {"id": "u1"}), get_user)
    assert type(error) is ProtocolError and error.status == 202


# --- Retry-After and backoff -----------------------------------------------------------------------


def test_retry_after_seconds_travels_with_the_error() -> None:
    error = fail_with(answer(429, scim_error(429, "slow down"), **{"Retry-After": "7"}), get_user)
    assert isinstance(error, TransientError) and error.retry_after == 7.0


def test_retry_after_http_date_travels_with_the_error() -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    error = fail_with(answer(503, **{"Retry-After": later}), get_user)
    assert isinstance(error, TransientError) and error.retry_after is not None
    assert 100 < error.retry_after <= 120


NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("0", 0.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("86400", 3600.0),
        ("Thu, 01 Jan 2026 12:01:30 GMT", 90.0),  # RFC 9110 10.2.3: an HTTP-date
        ("Thu, 01 Jan 2026 11:00:00 GMT", 0.0),  # already past
        ("Fri, 02 Jan 2026 12:00:00 GMT", 3600.0),  # capped
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    assert [backoff(n, rand=lambda: 1.0) for n in range(1, 11)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]


def test_backoff_is_full_jitter() -> None:
    assert backoff(5, rand=lambda: 0.0) == 0.0
    assert backoff(5, rand=lambda: 0.5) == 8.0
    assert all(0 <= backoff(4) <= 8 for _ in range(200))


def test_backoff_honours_retry_after_as_a_floor() -> None:
    assert backoff(1, retry_after=30.0, rand=lambda: 1.0) == 30.0
    assert backoff(10, retry_after=30.0, rand=lambda: 1.0) == 300.0


def test_backoff_survives_a_row_that_failed_forever() -> None:
    assert backoff(100_000, rand=lambda: 1.0) == 300.0


def test_backoff_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError):
        backoff(0)


# --- requests as sent ------------------------------------------------------------------------------


def test_eq_filter_escapes_the_value() -> None:
    """RFC 7644 3.4.2.2: compValue is a JSON string, so quotes and backslashes are escaped."""
    assert eq_filter("userName", 'a" or userName pr or "\\') == r'userName eq "a\" or userName pr or \"\\"'
    assert eq_filter("emails.value", "zoë@example.com") == 'emails.value eq "zoë@example.com"'
    assert eq_filter("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "7") == (
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "7"'
    )
    assert eq_filter("active", True) == "active eq true"


@pytest.mark.parametrize("attribute", ["", "userName pr or id", 'a"b', "1abc"])
def test_eq_filter_refuses_what_is_not_an_attribute(attribute: str) -> None:
    with pytest.raises(ValueError):
        eq_filter(attribute, "x")


def test_requests_carry_scim_headers_and_quoted_ids() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"id": "a/b?c"})

    async def go() -> None:
        async with mock_client(handler) as client:
            await client.get("Users", "a/b?c")

    run(go())
    request = seen[0]
    assert request.url.raw_path == b"/scim/v2/Users/a%2Fb%3Fc"
    assert request.headers["Authorization"] == "Bearer s3cret-token"
    assert request.headers["Accept"] == request.headers["Content-Type"] == "application/scim+json"


def test_the_token_stays_out_of_the_repr() -> None:
    assert "s3cret" not in repr(mock_client(answer(200, {})))


@pytest.mark.parametrize("bad_id", ["", ".", ".."])
def test_ids_that_would_leave_the_endpoint_are_refused(bad_id: str) -> None:
    with pytest.raises(ValueError):
        run(mock_client(answer(200, {"id": "x"})).get("Users", bad_id))


# --- paging guards against targets that misbehave ---------------------------------------------------


def list_response(ids: list[str], total: int | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"Resources": [{"id": i} for i in ids]}
    return page if total is None else page | {"totalResults": total}


def walk(handler: Callable[[httpx.Request], httpx.Response], page_size: int = 2) -> list[str]:
    async def go() -> list[str]:
        async with mock_client(handler) as client:
            return [item["id"] async for item in client.iterate("Users", page_size=page_size)]

    return run(go())


def no_cursors(request: httpx.Request) -> httpx.Response | None:
    if request.url.path.endswith("/ServiceProviderConfig"):
        return httpx.Response(200, json={"pagination": {"cursor": False, "index": True}})
    return None


def test_index_walk_ends_when_the_target_ignores_start_index() -> None:
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return no_cursors(request) or httpx.Response(200, json=list_response(["a", "b"]))

    assert walk(handler) == ["a", "b"]
    assert len(requests) == 3  # the config, the page, and the same page again


def test_index_walk_advances_by_what_came_back_when_count_is_ignored() -> None:
    everything = [str(i) for i in range(5)]

    def handler(request: httpx.Request) -> httpx.Response:
        if response := no_cursors(request):
            return response
        start = int(request.url.params["startIndex"])
        return httpx.Response(200, json=list_response(everything[start - 1 :], total=5))

    assert walk(handler) == everything


def test_index_walk_does_not_repeat_a_resource_pushed_to_the_next_page() -> None:
    pages = {1: ["a", "b"], 3: ["b", "c"], 5: []}  # "b" shifted by an insert before it mid-walk

    def handler(request: httpx.Request) -> httpx.Response:
        if response := no_cursors(request):
            return response
        return httpx.Response(200, json=list_response(pages[int(request.url.params["startIndex"])]))

    assert walk(handler) == ["a", "b", "c"]


def test_without_a_service_provider_config_the_walk_pages_by_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ServiceProviderConfig"):
            return httpx.Response(404)
        assert "cursor" not in request.url.params
        return httpx.Response(200, json=list_response(["a"], total=1))

    assert walk(handler) == ["a"]


def test_cursor_walk_ends_on_a_cursor_handed_back_unchanged() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ServiceProviderConfig"):
            return httpx.Response(200, json={"pagination": {"cursor": True}})
        cursor = request.url.params["cursor"]
        return httpx.Response(200, json=list_response([f"after-{cursor}"]) | {"nextCursor": "same"})

    assert walk(handler) == ["after-", "after-same"]


# --- real targets ------------------------------------------------------------------------------------


@pytest.fixture
def scimward_target(live_server: LiveServer) -> Peer:
    return Peer(live_server.base_url, live_server.token)


def new_user(user_name: str, **attributes: Any) -> dict[str, Any]:
    return {"schemas": [USER_SCHEMA], "userName": user_name, **attributes}


async def users_and_groups_round_trip(client: TargetClient, unique: str) -> None:
    """What propagate does to a target: create, look up, change, group, delete."""
    ann = await client.create("Users", new_user(f"{unique}-ann", displayName="Ann", active=True))
    bob = await client.create("Users", new_user(f"{unique}-bob"))
    assert ann["userName"] == f"{unique}-ann" and ann["id"] != bob["id"]
    assert (await client.get("Users", ann["id"]))["displayName"] == "Ann"

    assert [u["id"] for u in await client.find("Users", eq_filter("userName", f"{unique}-ann"))] == [ann["id"]]
    assert await client.find("Users", eq_filter("userName", f"{unique}-nobody")) == []
    tricky = await client.create("Users", new_user(f'{unique} o"brien\\x'))
    found = await client.find("Users", eq_filter("userName", f'{unique} o"brien\\x'))
    assert [u["id"] for u in found] == [tricky["id"]]

    patched = await client.patch("Users", ann["id"], [{"op": "replace", "path": "displayName", "value": "Annie"}])
    assert patched is None or patched["displayName"] == "Annie"
    assert (await client.get("Users", ann["id"]))["displayName"] == "Annie"

    replaced = await client.replace("Users", ann["id"], new_user(f"{unique}-ann", title="Engineer"))
    assert replaced["title"] == "Engineer" and "displayName" not in replaced  # PUT replaces (RFC 7644 3.5.1)

    group = await client.create(
        "Groups",
        {
            "schemas": [GROUP_SCHEMA],
            "displayName": f"{unique}-team",
            "members": [{"value": ann["id"]}, {"value": bob["id"]}],
        },
    )
    assert member_ids(await client.get("Groups", group["id"])) == {ann["id"], bob["id"]}
    await client.patch(
        "Groups",
        group["id"],
        [
            {"op": "remove", "path": f'members[value eq "{bob["id"]}"]'},
            {"op": "add", "path": "members", "value": [{"value": tricky["id"]}]},
        ],
    )
    assert member_ids(await client.get("Groups", group["id"])) == {ann["id"], tricky["id"]}

    for resource, item in (("Groups", group), ("Users", ann), ("Users", bob), ("Users", tricky)):
        await client.delete(resource, item["id"])
        with pytest.raises(NotFoundError):
            await client.get(resource, item["id"])
        with pytest.raises(NotFoundError):  # a second delete: the caller treats it as done
            await client.delete(resource, item["id"])


def member_ids(group: dict[str, Any]) -> set[str]:
    return {member["value"] for member in group.get("members", [])}


async def every_user_once(client: TargetClient, unique: str, n: int = 250) -> None:
    """A walk over more users than fit a page yields each exactly once, whatever else the target holds."""
    gate = asyncio.Semaphore(8)

    async def create(i: int) -> str:
        async with gate:
            return str((await client.create("Users", new_user(f"{unique}-walk-{i:03d}")))["id"])

    async def delete(user_id: str) -> None:
        async with gate:
            await client.delete("Users", user_id)

    created = set(await asyncio.gather(*(create(i) for i in range(n))))
    walked = [item async for item in client.iterate("Users", attributes=["userName"], page_size=40)]
    ids = [item["id"] for item in walked]
    assert len(ids) == len(set(ids))
    assert created <= set(ids)
    assert all("userName" in item for item in walked)
    # The scimward target is shared by the session: leave it as we found it for tests that count.
    await asyncio.gather(*(delete(user_id) for user_id in created))


async def pagination(client: TargetClient) -> dict[str, Any]:
    pages: dict[str, Any] = (await client.service_provider_config()).get("pagination") or {}
    return pages


def page_requests(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The list requests sent, as httpx logs them (URL and status; httpx never logs headers)."""
    return [r.getMessage() for r in caplog.records if r.name == "httpx" and "/Users?" in r.getMessage()]


def test_scimward_round_trip(scimward_target: Peer, unique: str) -> None:
    async def go() -> None:
        async with scimward_target.client() as client:
            await users_and_groups_round_trip(client, unique)

    run(go())


def test_scimward_walk_by_cursor(scimward_target: Peer, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with scimward_target.client() as client:
            assert (await pagination(client)).get("cursor") is True
            await every_user_once(client, unique)

    with caplog.at_level(logging.INFO, logger="httpx"):
        run(go())
    pages = page_requests(caplog)
    assert len(pages) > 250 // 40 and all("cursor=" in page and "startIndex" not in page for page in pages)


def test_scimward_duplicate_user_name_already_exists(scimward_target: Peer, unique: str) -> None:
    async def go() -> None:
        async with scimward_target.client() as client:
            await client.create("Users", new_user(f"{unique}-dup"))
            with pytest.raises(AlreadyExistsError) as caught:
                await client.create("Users", new_user(f"{unique}-dup"))
            assert caught.value.scim_type == "uniqueness"

    run(go())


def test_scimward_rejects_a_wrong_token(scimward_target: Peer) -> None:
    async def go() -> None:
        async with TargetClient(scimward_target.base_url, "wrong") as client:
            with pytest.raises(AuthError):
                await client.get("Users", "whatever")

    run(go())


def test_scim2_server_round_trip(scim2_server: Peer, unique: str) -> None:
    async def go() -> None:
        async with scim2_server.client() as client:
            await users_and_groups_round_trip(client, unique)

    run(go())


def test_scim2_server_walk_by_index(scim2_server: Peer, unique: str, caplog: pytest.LogCaptureFixture) -> None:
    async def go() -> None:
        async with scim2_server.client() as client:
            assert not (await pagination(client)).get("cursor")
            await every_user_once(client, unique)

    with caplog.at_level(logging.INFO, logger="httpx"):
        run(go())
    pages = page_requests(caplog)
    assert len(pages) > 250 // 40 and all("startIndex=" in page and "cursor" not in page for page in pages)


def test_scim2_server_patch_answers_no_content(scim2_server: Peer, unique: str) -> None:
    async def go() -> None:
        async with scim2_server.client() as client:
            user = await client.create("Users", new_user(f"{unique}-p"))
            assert await client.patch("Users", user["id"], [{"op": "replace", "path": "title", "value": "x"}]) is None

    run(go())


def test_scim2_server_duplicate_user_name_already_exists(scim2_server: Peer, unique: str) -> None:
    """userName is unique and not caseExact (RFC 7643 4.1.1), so a case variant collides too."""

    async def go() -> None:
        async with scim2_server.client() as client:
            await client.create("Users", new_user(f"{unique}-dup"))
            for name in (f"{unique}-dup", f"{unique}-DUP"):
                with pytest.raises(AlreadyExistsError) as caught:
                    await client.create("Users", new_user(name))
                assert caught.value.status == 409 and caught.value.scim_type == "uniqueness"

    run(go())


def test_scim2_server_missing_user_not_found(scim2_server: Peer) -> None:
    async def go() -> None:
        async with scim2_server.client() as client:
            with pytest.raises(NotFoundError) as caught:
                await client.get("Users", uuid.uuid4().hex)
            assert "not found" in caught.value.detail

    run(go())


def test_scim2_server_rejects_a_wrong_token(scim2_server: Peer) -> None:
    async def go() -> None:
        async with TargetClient(scim2_server.base_url, "wrong") as client:
            with pytest.raises(AuthError) as caught:
                await client.get("Users", "whatever")
            assert caught.value.status == 401

    run(go())
