"""The admin API's request bodies: one JSON object, bounded, with only the fields an endpoint takes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from scimward.scim.errors import InvalidSyntax, InvalidValue, PayloadTooLarge, UnsupportedMediaType

#: Admin bodies are a target's or a source's settings; nothing legitimate comes near this.
MAX_BODY_BYTES = 64 * 1024


async def json_object(request: Request, allowed: set[str], *, optional: bool = False) -> dict[str, Any]:
    """The request body: a JSON object of at most ``MAX_BODY_BYTES`` with only ``allowed`` keys (with
    ``optional``, an empty body is the empty object: an action that takes nothing)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type != "application/json":
        raise UnsupportedMediaType(f"send application/json, not {content_type}")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the request body exceeds {MAX_BODY_BYTES} bytes")
    if optional and not body.strip():
        return {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidSyntax(f"the request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidValue("the request body must be a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise InvalidValue(f"unknown fields {', '.join(unknown)}; expected some of {', '.join(sorted(allowed))}")
    return data
