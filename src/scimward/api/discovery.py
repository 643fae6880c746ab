"""Discovery endpoints (RFC 7644 section 4): what this server does, described exactly."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimward.api.context import hub, scim_endpoint
from scimward.api.resources import LIST_RESPONSE, base_url
from scimward.api.responses import ScimResponse
from scimward.scim.errors import NotFound
from scimward.scim.limits import LIMITS_SCHEMA, advertised
from scimward.scim.resource_types import RESOURCE_TYPES, SCHEMAS
from scimward.store.identity import CURSOR_TIMEOUT_SECONDS

SPC_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"


def service_provider_config(request: Request) -> dict[str, Any]:
    base = base_url(request)
    settings = hub(request).settings
    config: dict[str, Any] = {
        "schemas": [SPC_SCHEMA],
        "documentationUri": "https://github.com/scimward/scimward/blob/main/docs/identity-providers.md",
        "patch": {"supported": True},
        "bulk": {
            "supported": True,
            "maxOperations": hub(request).settings.bulk_max_operations,
            "maxPayloadSize": hub(request).settings.bulk_max_payload_bytes,
        },
        "filter": {"supported": True, "maxResults": settings.max_results},
        "changePassword": {"supported": False},
        "sort": {"supported": True},
        "etag": {"supported": True},
        "pagination": {
            "cursor": True,
            "index": True,
            "defaultPaginationMethod": settings.default_pagination,
            "defaultPageSize": settings.max_results,
            "maxPageSize": settings.max_results,
            "cursorTimeout": CURSOR_TIMEOUT_SECONDS,
        },
        "authenticationSchemes": [
            {
                "type": "oauthbearertoken",
                "name": "OAuth Bearer Token",
                "description": "A bearer token issued with `scimward token create`.",
                "specUri": "https://www.rfc-editor.org/info/rfc6750",
                "primary": True,
            }
        ],
        "meta": {"resourceType": "ServiceProviderConfig", "location": f"{base}/ServiceProviderConfig"},
    }
    if settings.agent_extension_in_config:
        # draft-abbey-scim-agent-extension: /Agents and /AgenticApplications are served (they are
        # announced in /ResourceTypes and /Schemas whatever this setting says).
        config["agentExtension"] = {"supported": True}
    if settings.limits_in_config:
        config["schemas"] = [SPC_SCHEMA, LIMITS_SCHEMA]
        config[LIMITS_SCHEMA] = advertised(settings.patch_max_operations)
    return config


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": [LIST_RESPONSE],
        "totalResults": len(resources),
        "startIndex": 1,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }


@scim_endpoint
async def get_service_provider_config(request: Request) -> Response:
    return ScimResponse(service_provider_config(request))


@scim_endpoint
async def list_resource_types(request: Request) -> Response:
    base = base_url(request)
    return ScimResponse(_list([rt.to_scim(f"{base}/ResourceTypes/{rt.name}") for rt in RESOURCE_TYPES.values()]))


@scim_endpoint
async def get_resource_type(request: Request) -> Response:
    name = request.path_params["name"]
    rt = RESOURCE_TYPES.get(name)
    if rt is None:
        raise NotFound(f"no resource type {name!r}")
    return ScimResponse(rt.to_scim(f"{base_url(request)}/ResourceTypes/{rt.name}"))


@scim_endpoint
async def list_schemas(request: Request) -> Response:
    base = base_url(request)
    return ScimResponse(_list([s.to_scim(f"{base}/Schemas/{s.id}") for s in SCHEMAS.values()]))


@scim_endpoint
async def get_schema(request: Request) -> Response:
    schema_id = request.path_params["id"]
    schema = SCHEMAS.get(schema_id)
    if schema is None:
        raise NotFound(f"no schema {schema_id!r}")
    return ScimResponse(schema.to_scim(f"{base_url(request)}/Schemas/{schema.id}"))


routes = [
    Route("/ServiceProviderConfig", get_service_provider_config, methods=["GET"]),
    Route("/ResourceTypes", list_resource_types, methods=["GET"]),
    Route("/ResourceTypes/{name}", get_resource_type, methods=["GET"]),
    Route("/Schemas", list_schemas, methods=["GET"]),
    Route("/Schemas/{id:path}", get_schema, methods=["GET"]),
]
