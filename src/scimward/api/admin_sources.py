"""Sources in the admin API: list, add and show them, with what their last import left (issue 17).

The same services as ``scimward source list|add`` (``governance.sources.config`` checks a new
source's settings for both). Imports run from the command line or on ``serve``'s schedule, where the
export file is; the admin API shows their status: the last import and the records it stored.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scimward.api.admin_bodies import json_object
from scimward.api.admin_paths import openapi_paths as _paths
from scimward.governance.sources.config import check_name, source_config
from scimward.scim.errors import InvalidValue
from scimward.store.database import Database
from scimward.store.governance import DEFAULT_PRIORITY, SourceRepository, SourceRow

Handler = Callable[[Request, Database], Awaitable[Response]]
FIELDS = {"name", "kind", "priority", "correlate", "joiners"}


async def _shown(repository: SourceRepository, source: SourceRow) -> dict[str, Any]:
    shown = source.to_json()
    if source.is_hr:
        shown["records"] = await repository.record_counts(source.id)
    return shown


async def list_sources(_request: Request, database: Database) -> Response:
    return JSONResponse({"sources": [row.to_json() for row in await SourceRepository(database).all()]})


async def get_source(request: Request, database: Database) -> Response:
    repository = SourceRepository(database)
    return JSONResponse(await _shown(repository, await repository.get(request.path_params["name"])))


async def add_source(request: Request, database: Database) -> Response:
    data = await json_object(request, FIELDS)
    name, kind = data.get("name"), data.get("kind")
    priority, correlate, joiners = (
        data.get("priority", DEFAULT_PRIORITY),
        data.get("correlate"),
        data.get("joiners", "report"),
    )
    if not isinstance(name, str) or not isinstance(kind, str):
        raise InvalidValue(
            'the body is {"name": "workday", "kind": "scim" | "csv" | "json", "priority": 100, '
            '"correlate": ["employeeNumber", "emails"], "joiners": "report" | "create"}'
        )
    if not isinstance(priority, int) or isinstance(priority, bool) or not 0 <= priority <= 1_000_000:
        raise InvalidValue("priority is a whole number from 0 to 1000000")
    if correlate is not None and (not isinstance(correlate, list) or not all(isinstance(k, str) for k in correlate)):
        raise InvalidValue('correlate is a list of keys, e.g. ["employeeNumber", "emails"]')
    if not isinstance(joiners, str):
        raise InvalidValue("joiners is report or create")
    config = source_config(kind, correlate=correlate, joiners=joiners)
    repository = SourceRepository(database)
    row = await repository.add(
        check_name(name), kind, priority=priority, created_by=str(request.state.admin_token.name), config=config
    )
    return JSONResponse(await _shown(repository, row), status_code=201)


#: (path, method, handler, summary): registered by ``api.admin`` and described in its OpenAPI document.
ROUTES: list[tuple[str, str, Handler, str]] = [
    (
        "/sources",
        "GET",
        list_sources,
        "Sources: the IdPs (scim) and HR exports (csv, json) identities' truth "
        "comes from, by priority, with their last import",
    ),
    (
        "/sources",
        "POST",
        add_source,
        'Add a source: {"name": "workday", "kind": "csv", "priority": 100, '
        '"correlate": ["employeeNumber", "emails"], "joiners": "report"} (201; '
        "a mapping file is given with scimward source add --mapping)",
    ),
    (
        "/sources/{name}",
        "GET",
        get_source,
        "A source, and for an HR source the records its imports stored: by "
        "status, and how many match no user (the import status)",
    ),
]

_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["name", "kind"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"},
                    "kind": {"enum": ["scim", "csv", "json"]},
                    "priority": {"type": "integer", "minimum": 0, "default": DEFAULT_PRIORITY},
                    "correlate": {"type": "array", "items": {"enum": ["employeeNumber", "emails", "userName"]}},
                    "joiners": {"enum": ["report", "create"], "default": "report"},
                },
            }
        }
    },
}


def openapi_paths() -> dict[str, Any]:
    paths = _paths(ROUTES, request_bodies={"POST": _BODY})
    created = paths["/sources"]["post"]["responses"]
    created["201"] = created.pop("200") | {"description": "Created"}
    return paths
