"""The OpenAPI ``paths`` of the admin API's route tables, built from the tables themselves.

Each admin module (``admin_policy``, ``admin_reviews``, ``admin_evidence``, ``admin_operations``)
declares ``ROUTES`` as (path, method, handler, summary); this turns them into the document, so a
route cannot exist without being described.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

_ERRORS = ((400, "BadRequest"), (401, "Unauthorized"), (403, "Forbidden"), (404, "NotFound"), (409, "Conflict"))
#: Path parameters and their types: ``{id}`` of a finding is a number, every other is a string.
_PARAMETERS = {"id": "string", "name": "string"}


def openapi_paths(
    routes: Iterable[tuple[str, str, Any, str]],
    *,
    integer_ids: bool = False,
    request_bodies: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """``paths`` for these routes; ``request_bodies`` maps a method to its ``requestBody``."""
    paths: dict[str, Any] = {}
    for path, method, _handler, summary in routes:
        operation: dict[str, Any] = {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}},
                **{str(status): {"$ref": f"#/components/responses/{name}"} for status, name in _ERRORS},
            },
        }
        if request_bodies and method in request_bodies:
            operation["requestBody"] = request_bodies[method]
        entry = paths.setdefault(path, {})
        for name, kind in _PARAMETERS.items():
            if "{" + name + "}" in path:
                kind = "integer" if name == "id" and integer_ids else kind
                entry["parameters"] = [{"name": name, "in": "path", "required": True, "schema": {"type": kind}}]
        entry[method.lower()] = operation
    return paths
