"""SCIM resource endpoints (RFC 7644 3.3-3.6): create, read, list, replace, patch, delete."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.api.context import Handler, ScimEndpoint, actor_of, hub, json_body, scim_endpoint, source_of
from scimward.api.responses import ScimResponse
from scimward.scim.ast import AttrPath
from scimward.scim.errors import InvalidCursor, InvalidValue, NotImplementedByServer
from scimward.scim.filter import parse_attr_path, parse_filter
from scimward.scim.limits import MAX_INDEX
from scimward.scim.patch import check_operation_limit
from scimward.scim.resource import normalize, parse_attribute_list, render
from scimward.scim.schema import ResourceType
from scimward.store.identity import SearchQuery, StoredIdentity

LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds") + "Z"


def base_url(request: Request) -> str:
    configured = hub(request).settings.public_url
    if configured:
        return configured.rstrip("/")
    host = request.headers.get("host")
    if host is None:  # no Host header (HTTP/1.0): the address the request came to
        return f"{request.url.scheme}://{request.url.netloc}/scim/v2"
    # What ``request.url`` would give, without parsing the whole URL on every response.
    return f"{request.scope.get('scheme', 'http')}://{host}/scim/v2"


def to_scim(stored: StoredIdentity, rt: ResourceType, base: str) -> dict[str, Any]:
    """The stored document with id, meta and the membership attributes the store attached."""
    out: dict[str, Any] = {"id": stored.id, **stored.doc}
    if stored.members is not None and stored.members:
        out["members"] = [
            {**m, "$ref": f"{base}/{'Groups' if m['type'] == 'Group' else 'Users'}/{m['value']}"}
            for m in stored.members
        ]
    if stored.groups:
        out["groups"] = [{**g, "$ref": f"{base}/Groups/{g['value']}"} for g in stored.groups]
    out["meta"] = {
        "resourceType": rt.name,
        "created": iso(stored.created),
        "lastModified": iso(stored.last_modified),
        "location": f"{base}{rt.endpoint}/{stored.id}",
        "version": stored.etag,
    }
    return out


def _wants(name: str, attributes: Sequence[AttrPath], excluded: Sequence[AttrPath]) -> bool:
    """Whether attribute ``name`` would be returned, so its rows are loaded only when needed."""
    lowered = name.lower()
    if any(p.attr.lower() == lowered and p.sub_attr is None for p in excluded):
        return False
    return not attributes or any(p.attr.lower() == lowered for p in attributes)


class ResourceEndpoints:
    """The endpoints of one resource type."""

    def __init__(self, rt: ResourceType) -> None:
        self.rt = rt

    def routes(self) -> list[Route]:
        path = self.rt.endpoint
        return [
            Route(path, self._wrap(self.list_or_create), methods=["GET", "POST"]),
            Route(path + "/{id}", self._wrap(self.one), methods=["GET", "PUT", "PATCH", "DELETE"]),
        ]

    @staticmethod
    def _wrap(handler: Handler) -> ScimEndpoint:
        return scim_endpoint(handler)

    def _selection(self, request: Request) -> tuple[tuple[AttrPath, ...], tuple[AttrPath, ...]]:
        params = request.query_params
        return (
            parse_attribute_list(params.get("attributes"), self.rt),
            parse_attribute_list(params.get("excludedAttributes"), self.rt),
        )

    def _respond(self, request: Request, stored: StoredIdentity, status: int = 200) -> Response:
        attributes, excluded = self._selection(request)
        base = base_url(request)
        body = render(to_scim(stored, self.rt, base), self.rt, attributes=attributes, excluded=excluded)
        headers = {"ETag": stored.etag}
        if status == 201:
            headers["Location"] = body.get("meta", {}).get("location", f"{base}{self.rt.endpoint}/{stored.id}")
        return ScimResponse(body, status_code=status, headers=headers)

    async def list_or_create(self, request: Request) -> Response:
        if request.method == "POST":
            doc = normalize(await json_body(request), self.rt)
            stored = await hub(request).identities.create(
                self.rt, doc, source=source_of(request), actor=actor_of(request)
            )
            return self._respond(request, stored, 201)
        return await self.search(request, dict(request.query_params))

    async def search(self, request: Request, params: dict[str, Any]) -> Response:
        return ScimResponse(await self.search_body(request, params))

    async def search_body(self, request: Request, params: dict[str, Any]) -> dict[str, Any]:
        """GET list (RFC 7644 3.4.2): filter, sort, paging, attribute selection."""
        attributes = parse_attribute_list(params.get("attributes"), self.rt)
        excluded = parse_attribute_list(params.get("excludedAttributes"), self.rt)
        max_results = hub(request).settings.max_results
        start_index = max(1, int_param(params, "startIndex", 1))
        count = min(max(0, int_param(params, "count", max_results)), max_results)
        filter_text = params.get("filter")
        sort_by = params.get("sortBy")
        sort_order = str(params.get("sortOrder") or "ascending").lower()
        if sort_order not in {"ascending", "descending"}:
            raise InvalidValue(f"sortOrder must be 'ascending' or 'descending', not {sort_order!r}")
        cursor = _pagination_cursor(params, hub(request).settings.default_pagination)
        query = SearchQuery(
            filter=parse_filter(filter_text) if filter_text else None,
            sort_by=parse_attr_path(sort_by) if sort_by else None,
            descending=sort_order == "descending",
            start_index=start_index,
            count=count,
            with_members=_wants("members", attributes, excluded),
            with_groups=_wants("groups", attributes, excluded),
            cursor=cursor,
        )
        result = await hub(request).identities.search(self.rt, query)
        base = base_url(request)
        resources = [
            render(to_scim(item, self.rt, base), self.rt, attributes=attributes, excluded=excluded)
            for item in result.items
        ]
        body: dict[str, Any] = {"schemas": [LIST_RESPONSE], "totalResults": result.total}
        if cursor is None or not cursor:
            body["startIndex"] = start_index  # index paging, or the first page of a cursor walk
        body["itemsPerPage"] = len(resources)
        if result.next_cursor:
            body["nextCursor"] = result.next_cursor
        if result.previous_cursor:
            body["previousCursor"] = result.previous_cursor
        body["Resources"] = resources
        return body

    async def me(self, request: Request) -> Response:
        """``/Me`` (RFC 7644 3.11): the user the token is bound to."""
        user_id = request.state.token.user_id
        if user_id is None:
            raise NotImplementedByServer(
                "/Me needs a token bound to a user (scimward token create --user USERNAME); "
                "this token is not bound to one"
            )
        return await self.one(request, user_id)

    async def one(self, request: Request, identity_id: str | None = None) -> Response:
        identity_id = identity_id or request.path_params["id"]
        store = hub(request).identities
        if_match = request.headers.get("if-match")
        if request.method == "GET":
            stored = await self._read(request, identity_id)
            if _matches(request.headers.get("if-none-match"), stored.etag):
                return Response(status_code=304, headers={"ETag": stored.etag})  # RFC 7644 3.14
            return self._respond(request, stored)
        if request.method == "DELETE":
            await store.delete(
                self.rt, identity_id, if_match=if_match, source=source_of(request), actor=actor_of(request)
            )
            return Response(status_code=204)
        body = await json_body(request)
        if request.method == "PUT":
            doc = normalize(body, self.rt)
            stored = await store.replace(
                self.rt, identity_id, doc, if_match=if_match, source=source_of(request), actor=actor_of(request)
            )
            return self._respond(request, stored)
        check_operation_limit(body, hub(request).settings.patch_max_operations)
        stored = await store.patch(
            self.rt, identity_id, body, if_match=if_match, source=source_of(request), actor=actor_of(request)
        )
        if request.state.token.patch_response == "no_content":
            return Response(status_code=204, headers={"ETag": stored.etag})
        return self._respond(request, await self._read(request, identity_id))

    async def _read(self, request: Request, identity_id: str) -> StoredIdentity:
        """The identity as the request's ``attributes``/``excludedAttributes`` ask: members and groups
        read only when they will be shown."""
        attributes, excluded = self._selection(request)
        return await hub(request).identities.get(
            self.rt,
            identity_id,
            with_members=_wants("members", attributes, excluded),
            with_groups=_wants("groups", attributes, excluded),
        )


def _matches(header: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak comparison, RFC 9110 13.1.2)."""
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag.removeprefix("W/") in tags


def _pagination_cursor(params: dict[str, Any], default: str) -> str | None:
    """None for index paging (RFC 7644 3.4.2.4), else the cursor ("" for the first page, RFC 9865)."""
    cursor = params.get("cursor")
    if cursor is not None:
        if params.get("startIndex") not in (None, ""):
            raise InvalidValue("use either cursor (RFC 9865) or startIndex (RFC 7644), not both")
        if not isinstance(cursor, str):
            raise InvalidCursor("cursor must be a string")
        return cursor
    if params.get("startIndex") not in (None, "") or default == "index":
        return None
    return ""


def int_param(params: dict[str, Any], name: str, default: int) -> int:
    """A paging parameter (``startIndex``, ``count``) from a query or a SearchRequest body.

    An integer, or its decimal text, at most ``MAX_INDEX``; below 1 it means what RFC 7644 3.4.2.4 says
    (the caller clamps to 1 or 0). Anything else (``"abc"``, ``[1]``, ``1e30``, ``true``) is 400 invalidValue.
    """
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise InvalidValue(f"{name} must be an integer")
    if isinstance(raw, str):
        text = raw.strip()
        # int() refuses more than 4,300 digits with a ValueError; refuse long text before it tries.
        if len(text) > 100 or not text.lstrip("+-").isdigit():
            raise InvalidValue(f"{name} must be an integer of at most {MAX_INDEX}, not {raw[:40]!r}")
        value = int(text)
    else:
        value = raw
    if value > MAX_INDEX:
        raise InvalidValue(f"{name} must be at most {MAX_INDEX}")
    return value
