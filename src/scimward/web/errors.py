"""The project's errors as console answers: one table for every page and action.

Every ``ScimwardError`` (``scimward/errors.py`` draws the tree) that reaches a page becomes the error
page with a status and a title (``scimward_error``, the console's one exception handler); an action
that reports in a notice instead (a bulk decision, a form sent back) words it with ``answer_to`` too,
so a page and an action say the same thing for the same error::

    ScimError                        its status: 400 Not valid, 401, 403, 404 Not found, 409 Conflict,
                                     412, 503 Busy
    UnknownSubject                   404  Not found: no change, target or identity by that name
    ConfigChangeHeld                 202  Held for approval: a configuration change a second person decides
    PolicyLayerError                 409  Not done: four eyes, not pending, a breaker action refused
    PolicyError, ExpressionError,    400  Not valid: a policy or rule, an export or one of its rows, a
    ExportError, BadRow,                  finding kind, framework id or findings filter: what the form sent
    UnknownKind, FilterError
    DatabaseError                    503  Busy: the detail is generic (the URL names a host), logged
    TargetError                      502  The target failed
    SecretKeyError                   500  The hub's secret key, not the request, is wrong: logged
    any other ScimwardError          500  logged

Anything that is not a ``ScimwardError`` is a bug: Starlette answers 500 and logs its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from starlette.requests import Request
from starlette.responses import Response

from scimward.errors import ScimwardError
from scimward.governance.catalogue import UnknownKind
from scimward.governance.finding_filters import FilterError
from scimward.governance.sources.readers import ExportError
from scimward.governance.sources.records import BadRow
from scimward.policy.cel import ExpressionError
from scimward.policy.document import PolicyError
from scimward.policy.errors import PolicyLayerError, UnknownSubject
from scimward.policy.plans import ConfigChangeHeld
from scimward.scim.errors import ScimError
from scimward.store.errors import DatabaseError
from scimward.sync.errors import TargetError
from scimward.sync.secrets import SecretKeyError
from scimward.web.context import console_of

log = structlog.get_logger("scimward.web")

TITLES = {
    400: "Not valid",
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    409: "Conflict",
    412: "Changed meanwhile",
    503: "Busy",
}


@dataclass(frozen=True)
class Answer:
    status: int
    title: str
    message: str


def answer_to(exc: ScimwardError) -> Answer:
    """The console's answer to one of the project's errors."""
    if isinstance(exc, ScimError):
        return Answer(exc.status, TITLES.get(exc.status, "Not done"), exc.detail)
    if isinstance(exc, UnknownSubject):
        return Answer(404, "Not found", str(exc))
    if isinstance(exc, ConfigChangeHeld):
        return Answer(202, "Held for approval", str(exc))
    if isinstance(exc, PolicyLayerError):
        return Answer(409, "Not done", str(exc))
    if isinstance(exc, PolicyError | ExpressionError | ExportError | BadRow | UnknownKind | FilterError):
        return Answer(400, "Not valid", str(exc))
    if isinstance(exc, DatabaseError):
        log.error("database unusable", detail=str(exc))
        return Answer(503, "Busy", "The database is unavailable; try again shortly.")
    if isinstance(exc, TargetError):
        return Answer(502, "The target failed", f"the target failed: {exc}")
    if isinstance(exc, SecretKeyError):
        log.error("secret key unusable", detail=str(exc))
        return Answer(500, "The hub's secret key cannot be used", str(exc))
    log.error("console request failed", error=type(exc).__name__, detail=str(exc))
    return Answer(500, "Something went wrong", f"internal error: {exc}")


def notice_of(exc: ScimwardError) -> str:
    """What a form or an action's notice says of an error about what it sent (any answer below 500);
    an error of the hub's own (500 and above) is raised on, to the error page."""
    answer = answer_to(exc)
    if answer.status >= 500:
        raise exc
    return answer.message


async def scimward_error(request: Request, exc: Exception) -> Response:
    """The error page for a ``ScimwardError`` a page or an action raised."""
    assert isinstance(exc, ScimwardError)
    answer = answer_to(exc)
    return console_of(request).render(request, "error.html", answer.status, title=answer.title, message=answer.message)
