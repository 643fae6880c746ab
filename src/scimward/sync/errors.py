"""What can go wrong when scimward talks to a target, sorted by what propagate should do next.

The class of an error is the decision; the worker never inspects status codes itself::

    TargetError                      any failure of a request to a target
    ├── TransientError               retry later (429, 408, 5xx but 501, timeouts, dropped
    │                                connections); carries the target's Retry-After
    ├── NotFoundError                404: the account is gone, so recreate it (or, on
    │                                delete, consider the work done)
    ├── AlreadyExistsError           409: the account exists already, so adopt it
    ├── BadRequestError              400, 413, 422, 501, any other 4xx: the target refuses this
    │                                change; record it and continue, do not retry blindly
    ├── ProtocolError                a 2xx whose body is not the JSON resource SCIM promises
    └── HaltError                    the target needs an admin (a redirect, a URL scheme we
        │                            cannot speak): halt the target, touch no other identity
        └── AuthError                401, 403: credentials rejected or lacking scope

``status`` is the HTTP status when the target answered, ``None`` when it did not. ``detail`` is the
target's own words (the SCIM Error ``detail``, else the body), cut to ``DETAIL_LIMIT`` characters so
a target answering with an HTML page cannot bloat the audit trail. The client redacts its own
credential from ``detail`` before the error exists, so an echoing target's words can be stored.
"""

from __future__ import annotations

from typing import ClassVar

from scimward.errors import ScimwardError

#: Longest ``detail`` kept from a target's answer.
DETAIL_LIMIT = 1000


class TargetError(ScimwardError):
    """A request to a target failed; the subclass says what to do about it."""

    retryable: ClassVar[bool] = False

    def __init__(self, detail: str, *, status: int | None = None, scim_type: str | None = None) -> None:
        self.detail = detail[:DETAIL_LIMIT]
        self.status = status
        self.scim_type = scim_type
        #: The request that failed (method, path and the start of its body), set by the client's
        #: chokepoint: a parked push's finding names what was sent as well as what came back.
        self.request: str | None = None
        prefix = " ".join(part for part in (str(status) if status is not None else None, scim_type) if part)
        super().__init__(f"{prefix}: {self.detail}" if prefix else self.detail)


class TransientError(TargetError):
    """The target could not serve the request now; the same request may succeed later."""

    retryable = True

    def __init__(
        self, detail: str, *, status: int | None = None, scim_type: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(detail, status=status, scim_type=scim_type)
        #: Seconds the target asked us to wait (Retry-After), already capped; a floor for the backoff.
        self.retry_after = retry_after


class NotFoundError(TargetError):
    """The resource does not exist on the target (404)."""


class AlreadyExistsError(TargetError):
    """The target holds a resource with the same unique attribute (409, usually scimType uniqueness)."""


class BadRequestError(TargetError):
    """The target refused this request as it is; sending it again unchanged will fail again."""


class ProtocolError(TargetError):
    """The target answered success with a body that is not the JSON SCIM promises."""


class HaltError(TargetError):
    """Nothing sent to this target can succeed until an admin fixes its configuration."""


class AuthError(HaltError):
    """The target rejected our credentials (401) or their scope (403)."""
