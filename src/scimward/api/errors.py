"""The project's errors as HTTP answers: one table for both HTTP edges (the SCIM API and the admin API).

Every ``ScimwardError`` (``scimward/errors.py`` draws the tree) becomes a ``ScimError``: the SCIM edge
answers it as an RFC 7644 Error body, the admin edge as its JSON error (``{"error", "detail"}``, the
name from the status unless ``ADMIN_NAMES`` gives one)::

    ScimError                        as it is: its status and scimType
    UnknownSubject                   404  no change, target or identity by that name
    PolicyLayerError                 409  an approval or breaker action refused (four eyes, not pending)
    PolicyError, ExpressionError     400  invalidValue: a policy document or rule the request sent
    DatabaseError                    503  with Retry-After; the detail is generic (the URL names a host)
    TargetError                      502  target_error: the target failed
    SecretKeyError                   500  secret_key: the hub's key, not the request, is wrong
    any other ScimwardError          500

Errors answered 5xx are logged here, as one line without a traceback: they are expected, and the
operator must see them. Anything that is not a ``ScimwardError`` is a bug, which the edges log
with its traceback.
"""

from __future__ import annotations

import structlog

from scimward.errors import ScimwardError
from scimward.policy.cel import ExpressionError
from scimward.policy.document import PolicyError
from scimward.policy.errors import PolicyLayerError, UnknownSubject
from scimward.scim.errors import InvalidValue, NotFound, ScimError, ServiceUnavailable
from scimward.store.errors import DatabaseError
from scimward.store.failures import RETRY_AFTER_SECONDS
from scimward.sync.errors import TargetError
from scimward.sync.secrets import SecretKeyError

log = structlog.get_logger("scimward.api")


class Conflict(ScimError):
    """409 without a scimType: the request conflicts with the state of something other than a resource."""

    status = 409


class InternalError(ScimError):
    status = 500


class KeyUnusable(InternalError):
    """The hub's secret key cannot be used: the operator must fix it; the request was fine."""


class TargetFailed(ScimError):
    status = 502


#: The admin API's error names where the status's own name would not say enough.
ADMIN_NAMES: dict[type[ScimError], str] = {KeyUnusable: "secret_key", TargetFailed: "target_error"}


def as_scim_error(exc: ScimwardError) -> ScimError:
    """The HTTP answer to one of the project's errors."""
    if isinstance(exc, ScimError):
        return exc
    if isinstance(exc, UnknownSubject):
        return NotFound(str(exc))
    if isinstance(exc, PolicyLayerError):
        return Conflict(str(exc))
    if isinstance(exc, PolicyError | ExpressionError):
        return InvalidValue(str(exc))
    if isinstance(exc, DatabaseError):
        log.error("database unusable", detail=str(exc))
        return ServiceUnavailable("the database is unavailable; retry shortly", retry_after=RETRY_AFTER_SECONDS)
    if isinstance(exc, TargetError):
        return TargetFailed(f"the target failed: {exc}")
    if isinstance(exc, SecretKeyError):
        log.error("secret key unusable", detail=str(exc))
        return KeyUnusable(str(exc))
    log.error("request failed", error=type(exc).__name__, detail=str(exc))
    return InternalError(f"internal error: {exc}")
