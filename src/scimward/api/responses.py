"""SCIM responses: ``application/scim+json`` bodies serialised with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from scimward.scim.errors import ScimError, ServiceUnavailable

SCIM_MEDIA_TYPE = "application/scim+json"


class ScimResponse(Response):
    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def error_response(error: ScimError, request_id: str | None = None) -> ScimResponse:
    headers = {"X-Request-Id": request_id} if request_id else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="scimward"'
    if isinstance(error, ServiceUnavailable):
        headers["Retry-After"] = str(error.retry_after)
    return ScimResponse(error.to_error(), status_code=error.status, headers=headers)
