"""The outbound SCIM client: one target, its HTTP, and the translation of every failure.

Every request goes through ``TargetClient._request``, the only place that sees HTTP statuses and
httpx exceptions; the rest of ``sync`` sees resources (plain JSON dicts) and ``sync.errors``.
The client never retries: whether and when to retry is the propagate worker's decision, helped by
``backoff`` and the ``retry_after`` that ``TransientError`` carries.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import httpx

from scimward.sync.errors import (
    AlreadyExistsError,
    AuthError,
    BadRequestError,
    HaltError,
    NotFoundError,
    ProtocolError,
    TargetError,
    TransientError,
)

#: A SCIM resource as the target sent it.
Resource = dict[str, Any]

SCIM_MEDIA_TYPE = "application/scim+json"
PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

#: Longest wait a target may ask for with Retry-After; beyond it we suspect a misconfigured target.
RETRY_AFTER_CAP = 3600.0

DEFAULT_TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# Keep connections alive: a reconcile or a burst of propagation sends many requests to one host.
DEFAULT_LIMITS = httpx.Limits(max_connections=20, max_keepalive_connections=10, keepalive_expiry=30.0)

# 501 is absent on purpose: a target that does not implement an operation will not by retrying.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

# An attribute path as a filter may name it, optionally behind its schema URN (RFC 7644 3.10).
_ATTRIBUTE_PATH = re.compile(r"(?:urn:[A-Za-z0-9.:_-]+:)?[A-Za-z][\w$-]*(?:\.[A-Za-z][\w$-]*)?")


def eq_filter(attribute: str, value: str | int | bool | None) -> str:
    """An ``attribute eq value`` filter with the value written as a JSON literal (RFC 7644 3.4.2.2).

    Quotes, backslashes and control characters in names like ``o"brien\\`` are escaped, so a value
    can never end the string early and smuggle in more filter.
    """
    if not _ATTRIBUTE_PATH.fullmatch(attribute):
        raise ValueError(f"not an attribute path: {attribute!r}")
    return f"{attribute} eq {json.dumps(value, ensure_ascii=False)}"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or HTTP-date, RFC 9110 10.2.3).

    ``None`` when absent or unreadable; never negative; capped at ``RETRY_AFTER_CAP``.
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # an obsolete date form without zone; HTTP dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_CAP)


def backoff(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 300.0,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retrying after ``attempt`` failures (1 after the first).

    Capped exponential backoff with full jitter: uniform in [0, min(cap, base * 2**(attempt-1))],
    which spreads the retries of many workers hit by the same outage. A target's Retry-After is a
    floor: it said when it will be ready, and asking sooner only earns another 429.
    """
    if attempt < 1:
        raise ValueError("attempt counts failures and starts at 1")
    # Clamp the exponent so that a long-failing row cannot overflow the float.
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 64))
    delay = rand() * ceiling
    return max(delay, retry_after) if retry_after is not None else delay


REDACTED = "[redacted]"


def redactor(secret: str | None) -> Callable[[str], str]:
    """A function replacing ``secret`` in a text by ``[redacted]``: some targets echo the request
    they refused, Authorization header included, and their words are stored and shown."""

    def redact(text: str) -> str:
        return text.replace(secret, REDACTED) if secret and text else text

    return redact


def error_for_response(response: httpx.Response, redact: Callable[[str], str] = lambda text: text) -> TargetError:
    """The error a non-success answer stands for; the single table of statuses."""
    status = response.status_code
    detail, scim_type = _error_text(response)
    detail = redact(detail)
    if status in _TRANSIENT_STATUSES or (status >= 500 and status != 501):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        return TransientError(detail, status=status, scim_type=scim_type, retry_after=retry_after)
    if status in (401, 403):
        return AuthError(detail, status=status, scim_type=scim_type)
    if status == 404:
        return NotFoundError(detail, status=status, scim_type=scim_type)
    if status == 409:
        return AlreadyExistsError(detail, status=status, scim_type=scim_type)
    if 300 <= status < 400:
        # Redirects are not followed: a token must not travel to wherever a target points.
        where = response.headers.get("Location", "nowhere")
        return HaltError(f"the target redirects to {where}; fix its base URL", status=status)
    if 200 <= status < 300:
        return ProtocolError(f"unexpected success status for this request: {detail}", status=status)
    return BadRequestError(detail, status=status, scim_type=scim_type)


def _error_text(response: httpx.Response) -> tuple[str, str | None]:
    """The target's explanation: the SCIM Error's detail and scimType when it sent one, else the body."""
    text = response.text.strip()
    try:
        body = json.loads(text)
    except ValueError:
        return text or response.reason_phrase, None
    if isinstance(body, dict) and ("detail" in body or "scimType" in body):
        scim_type = body.get("scimType")
        return str(body.get("detail") or text), scim_type if isinstance(scim_type, str) else None
    return text, None


def _error_for_exception(exc: httpx.HTTPError) -> TargetError:
    """The error an httpx failure stands for, when the target gave no answer to read."""
    name = type(exc).__name__
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError):
        return HaltError(f"cannot send the request ({name}): {exc}")
    if isinstance(exc, httpx.DecodingError):
        return ProtocolError(f"undecodable response ({name}): {exc}")
    # Timeouts, refused or reset connections, a server hanging up mid-answer: try again later.
    return TransientError(f"{name}: {exc}" if str(exc) else name)


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError as exc:
        raise ProtocolError(f"the body is not JSON: {response.text[:200]!r}", status=response.status_code) from exc
    if not isinstance(body, dict):
        raise ProtocolError(f"the body is JSON but not an object: {type(body).__name__}", status=response.status_code)
    return body


def _resource(response: httpx.Response) -> Resource:
    """The resource in a response, which must at least have an id to link to."""
    body = _json_object(response)
    if not isinstance(body.get("id"), str) or not body["id"]:
        raise ProtocolError("the resource in the response has no id", status=response.status_code)
    return body


def _describe(method: str, path: str, body: Any) -> str:
    """A failed request in a line: its method, path and the start of its body."""
    text = f"{method} /{path}"
    if body is not None:
        text += " " + json.dumps(body, ensure_ascii=False)[:500]
    return text


def _path(resource: str, resource_id: str | None = None) -> str:
    # Ids are the target's and may hold any character; "." and ".." would walk out of the endpoint.
    if resource_id is None:
        return quote(resource, safe="")
    if resource_id in ("", ".", ".."):
        raise ValueError(f"not a resource id: {resource_id!r}")
    return f"{quote(resource, safe='')}/{quote(resource_id, safe='')}"


class TargetClient:
    """A SCIM 2.0 client for one target (RFC 7644), speaking plain JSON dicts.

    ``transport`` replaces the network, for unit tests with ``httpx.MockTransport``.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        limits: httpx.Limits = DEFAULT_LIMITS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self._redact = redactor(token)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": SCIM_MEDIA_TYPE,
                "Content-Type": SCIM_MEDIA_TYPE,
                "User-Agent": "scimward",
            },
            timeout=timeout,
            limits=limits,
            follow_redirects=False,
            transport=transport,
        )
        self._cursor_paging: bool | None = None

    def __repr__(self) -> str:  # the token stays out of reprs, and so out of logs and tracebacks
        return f"TargetClient({self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        expect: Iterable[int] = (200,),
    ) -> httpx.Response:
        """Send one request; return the response if its status is expected, else raise a ``TargetError``."""
        try:
            response = await self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            error = _error_for_exception(exc)
            error.request = _describe(method, path, json)
            raise error from exc
        if response.status_code not in expect:
            error = error_for_response(response, self._redact)
            error.request = _describe(method, path, json)
            raise error
        return response

    async def first_page(self, resource: str, count: int, attributes: list[str] | None = None) -> list[Resource]:
        """The first ``count`` resources of a type (a health check, a probe of what the target holds)."""
        params: dict[str, str | int] = {"count": count, "startIndex": 1}
        if attributes:
            params["attributes"] = ",".join(attributes)
        return _page_resources(_json_object(await self._request("GET", _path(resource), params=params)))

    async def service_provider_config(self) -> dict[str, Any]:
        return _json_object(await self._request("GET", "ServiceProviderConfig"))

    async def get(self, resource: str, id: str) -> Resource:
        return _resource(await self._request("GET", _path(resource, id)))

    async def find(self, resource: str, filter: str, count: int = 2) -> list[Resource]:
        """Resources matching a filter (see ``eq_filter``); ``count`` 2 is enough to tell one from many."""
        page = _json_object(await self._request("GET", _path(resource), params={"filter": filter, "count": count}))
        return _page_resources(page)

    async def create(self, resource: str, body: Resource) -> Resource:
        # RFC 7644 3.3 says 201; some targets answer 200 with the same body, which is as good.
        return _resource(await self._request("POST", _path(resource), json=body, expect=(200, 201)))

    async def replace(self, resource: str, id: str, body: Resource) -> Resource:
        return _resource(await self._request("PUT", _path(resource, id), json=body))

    async def patch(self, resource: str, id: str, operations: list[dict[str, Any]]) -> Resource | None:
        """Apply a PatchOp (RFC 7644 3.5.2); the resource if the target sends it back, else None (204)."""
        body = {"schemas": [PATCH_OP_SCHEMA], "Operations": operations}
        response = await self._request("PATCH", _path(resource, id), json=body, expect=(200, 204))
        if response.status_code == 204 or not response.content.strip():
            return None
        return _resource(response)

    async def delete(self, resource: str, id: str) -> None:
        """Delete a resource. A 404 raises ``NotFoundError``: the caller decides that it means done."""
        await self._request("DELETE", _path(resource, id), expect=(200, 204))

    async def iterate(
        self, resource: str, *, attributes: list[str] | None = None, page_size: int = 500
    ) -> AsyncIterator[Resource]:
        """Every resource of a type, page by page, holding one page at a time.

        Pages by cursor (RFC 9865) when the target offers it: cursors neither skip nor repeat while
        the target changes under the walk. Otherwise by index (RFC 7644 3.4.2.4).
        """
        if page_size < 1:
            raise ValueError("page_size must be positive")
        params: dict[str, str | int] = {"count": page_size}
        if attributes:
            params["attributes"] = ",".join(attributes)
        pages = self._cursor_pages if await self._pages_by_cursor() else self._index_pages
        async for page in pages(_path(resource), params):
            for item in page:
                yield item

    async def _pages_by_cursor(self) -> bool:
        if self._cursor_paging is None:
            try:
                config = await self.service_provider_config()
            except (NotFoundError, BadRequestError, ProtocolError):
                # Some targets serve no usable ServiceProviderConfig; index paging is the RFC 7644 default.
                config = {}
            pagination = config.get("pagination")
            self._cursor_paging = isinstance(pagination, dict) and pagination.get("cursor") is True
        return self._cursor_paging

    async def _cursor_pages(self, path: str, params: dict[str, str | int]) -> AsyncIterator[list[Resource]]:
        cursor = ""  # an empty cursor asks for the first page (RFC 9865 2.1)
        while True:
            page = _json_object(await self._request("GET", path, params={**params, "cursor": cursor}))
            resources = _page_resources(page)
            if resources:
                yield resources
            next_cursor = page.get("nextCursor")
            # No nextCursor ends the walk; an empty page or a cursor handed back unchanged would loop.
            if not isinstance(next_cursor, str) or not next_cursor or not resources or next_cursor == cursor:
                return
            cursor = next_cursor

    async def _index_pages(self, path: str, params: dict[str, str | int]) -> AsyncIterator[list[Resource]]:
        start = 1
        previous: set[str] = set()
        while True:
            page = _json_object(await self._request("GET", path, params={**params, "startIndex": start}))
            resources = _page_resources(page)
            ids = {item["id"] for item in resources}
            # Only the previous page is remembered, so memory stays one page: a resource pushed to the
            # next page by an insert mid-walk is not yielded twice, and a target that ignores
            # startIndex (sending the same page again) ends the walk instead of looping.
            fresh = [item for item in resources if item["id"] not in previous]
            if not fresh:
                return
            yield fresh
            # Advance by what came back, not by page_size: targets may cap count below it, or ignore it.
            start += len(resources)
            total = page.get("totalResults")
            if isinstance(total, int) and start > total:
                return
            previous = ids


def _page_resources(page: dict[str, Any]) -> list[Resource]:
    """The resources of a ListResponse, each checked to be an object with an id."""
    resources = page.get("Resources", [])
    if not isinstance(resources, list):
        raise ProtocolError("the ListResponse's Resources is not a list")
    for item in resources:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ProtocolError("a resource in the ListResponse has no id")
    return resources
