"""POST ``/.search`` (RFC 7644 3.4.3), per resource type and at the root.

The body carries the same parameters as a GET query; it is turned into them and searched the
same way, so both paths share filter, sort, paging and attribute selection.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.api.context import json_body, scim_endpoint
from scimward.api.resources import LIST_RESPONSE, ResourceEndpoints, int_param
from scimward.api.responses import ScimResponse
from scimward.scim.errors import InvalidCursor, InvalidFilter, InvalidSyntax, InvalidValue

SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
_PARAMS = {"attributes", "excludedAttributes", "filter", "sortBy", "sortOrder", "startIndex", "count", "cursor"}


def search_params(body: Any) -> dict[str, Any]:
    """A SearchRequest body as GET query parameters."""
    if not isinstance(body, dict):
        raise InvalidSyntax("a SearchRequest must be a JSON object")
    schemas = body.get("schemas")
    if not isinstance(schemas, list) or SEARCH_REQUEST not in schemas:
        raise InvalidSyntax(f"a SearchRequest must list {SEARCH_REQUEST!r} in schemas")
    params: dict[str, Any] = {}
    for key, value in body.items():
        if key == "schemas":
            continue
        if key not in _PARAMS:
            raise InvalidSyntax(f"unknown SearchRequest attribute {key!r}")
        if key in {"attributes", "excludedAttributes"}:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InvalidValue(f"{key} must be a list of attribute names")
            value = ",".join(value)
        elif key in {"filter", "sortBy", "sortOrder"} and not isinstance(value, str):
            raise InvalidValue(f"{key} must be a string")
        params[key] = value
    return params


def routes(endpoints: list[ResourceEndpoints]) -> list[Route]:
    def per_type(resource: ResourceEndpoints) -> Route:
        @scim_endpoint
        async def search(request: Request) -> Response:
            return await resource.search(request, search_params(await json_body(request)))

        return Route(f"{resource.rt.endpoint}/.search", search, methods=["POST"])

    @scim_endpoint
    async def root_search(request: Request) -> Response:
        """Search every resource type; pages run over Users, then Groups."""
        params = search_params(await json_body(request))
        if "cursor" in params:
            raise InvalidCursor("cursor paging is offered per resource type (/Users/.search), not at the root")
        # The root pages by index over every type, with the same parameter checks as each type.
        start = max(1, int_param(params, "startIndex", 1))
        count = None if params.get("count") in (None, "") else max(0, int_param(params, "count", 0))
        params.pop("startIndex", None)
        params.pop("count", None)
        combined: list[dict[str, Any]] = []
        total = 0
        searched = 0
        for resource in endpoints:
            try:
                body = await resource.search_body(request, {**params, "startIndex": 1})
            except InvalidFilter:
                continue  # the filter names attributes this resource type does not have
            searched += 1
            total += body["totalResults"]
            combined.extend(body["Resources"])
        if searched == 0:
            raise InvalidFilter("the filter matches no resource type's attributes")
        page = combined[start - 1 :] if count is None else combined[start - 1 : start - 1 + count]
        return ScimResponse(
            {
                "schemas": [LIST_RESPONSE],
                "totalResults": total,
                "startIndex": start,
                "itemsPerPage": len(page),
                "Resources": page,
            }
        )

    return [Route("/.search", root_search, methods=["POST"]), *(per_type(e) for e in endpoints)]
