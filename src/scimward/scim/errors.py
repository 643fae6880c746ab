"""SCIM errors (RFC 7644 section 3.12).

Every error the protocol can express is a ``ScimError`` carrying its HTTP status and
``scimType``; the HTTP edge turns any of them into an Error body with one handler::

    ScimError (400 unless a subclass says otherwise)
    ├── InvalidFilter      400 invalidFilter
    ├── InvalidPath        400 invalidPath
    ├── InvalidSyntax      400 invalidSyntax
    ├── InvalidValue       400 invalidValue
    ├── MutabilityError    400 mutability
    ├── NoTarget           400 noTarget
    ├── TooMany            400 tooMany
    ├── InvalidVersion     400 invalidVers
    ├── InvalidCursor      400 invalidCursor (RFC 9865)
    ├── Unauthorized       401
    ├── Forbidden          403
    ├── NotFound           404
    ├── MethodNotAllowed   405
    ├── UniquenessError    409 uniqueness
    ├── PreconditionFailed 412
    ├── PayloadTooLarge    413
    ├── UnsupportedMediaType 415
    ├── NotImplementedByServer 501
    └── ServiceUnavailable 503 (with Retry-After: a dependency such as the database is down)
"""

from __future__ import annotations

from typing import Any, ClassVar

from scimward.errors import ScimwardError

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(ScimwardError):
    """A protocol error that becomes an RFC 7644 Error body."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def to_error(self) -> dict[str, Any]:
        body: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status)}
        if self.scim_type:
            body["scimType"] = self.scim_type
        body["detail"] = self.detail
        return body


class InvalidFilter(ScimError):
    scim_type = "invalidFilter"


class InvalidPath(ScimError):
    scim_type = "invalidPath"


class InvalidSyntax(ScimError):
    scim_type = "invalidSyntax"


class InvalidValue(ScimError):
    scim_type = "invalidValue"


class MutabilityError(ScimError):
    scim_type = "mutability"


class NoTarget(ScimError):
    scim_type = "noTarget"


class TooMany(ScimError):
    scim_type = "tooMany"


class InvalidVersion(ScimError):
    scim_type = "invalidVers"


class InvalidCursor(ScimError):
    scim_type = "invalidCursor"


class Unauthorized(ScimError):
    status = 401


class Forbidden(ScimError):
    status = 403


class NotFound(ScimError):
    status = 404


class MethodNotAllowed(ScimError):
    status = 405


class UniquenessError(ScimError):
    status = 409
    scim_type = "uniqueness"


class PreconditionFailed(ScimError):
    status = 412


class PayloadTooLarge(ScimError):
    status = 413


class UnsupportedMediaType(ScimError):
    status = 415


class NotImplementedByServer(ScimError):
    status = 501


class ServiceUnavailable(ScimError):
    """The request may succeed later (RFC 9110 15.6.4); ``retry_after`` becomes the Retry-After header."""

    status = 503

    def __init__(self, detail: str, retry_after: int = 5) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
