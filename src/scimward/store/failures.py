"""Database failures as SCIM errors: the one chokepoint that reads driver exceptions.

The checks in ``scim.limits`` refuse what the databases cannot take before any SQL is built; this
is the last resort behind them, so that a value one of them still refuses is the client's 400, not
a 500, and a database that cannot be reached is a 503 with ``Retry-After``, not a hang or a 500::

    a value the database refuses (psycopg DataError, class 22; program limits, class 54;
    SQLite's "pattern too complex", integer overflow, unencodable text)   -> 400 invalidValue
    the connection is lost or cannot be made (class 08, 57P0x, pool timeouts,
    SQLite's "database is locked")                                       -> 503 + Retry-After

A unique constraint that a concurrent change broke (the checks before the write could not see it)
is named by the constraint, not by words of the driver's message: PostgreSQL reports the constraint's
name, SQLite the columns, which the tables say belong to one named constraint (``integrity_error``).

Details name the class of failure, never the driver's message: it can carry host, user and values.
"""

from __future__ import annotations

import functools
import sqlite3
import sys
from types import ModuleType
from typing import Any

import sqlalchemy as sa
import sqlalchemy.exc as sa_exc

from scimward.scim.errors import InvalidValue, ScimError, ServiceUnavailable, UniquenessError
from scimward.store.tables import metadata

__all__ = [
    "RETRY_AFTER_SECONDS",
    "UNIQUE",
    "integrity_error",
    "is_disconnect",
    "is_unreachable",
    "log_round_failure",
    "scim_error_for",
]

#: What breaking a unique constraint means for the client, by the constraint's name (``store.tables``).
UNIQUE = {
    "uq_identities_user_name": "the unique name (a User's userName, an Agent's name) is already taken",
    "uq_tokens_name": "a token with that name already exists",
    "uq_targets_name": "a target with that name already exists",
}
_SQLITE_UNIQUE = "UNIQUE constraint failed: "

#: What a 503 asks the client to wait: about the time a restarted PostgreSQL needs to accept connections.
RETRY_AFTER_SECONDS = 5

_SQLITE_TOO_COMPLEX = (
    "pattern too complex",
    "expression tree is too large",
    "too many sql variables",
    "string or blob too big",
    "too many terms",
)
_SQLITE_BUSY = ("database is locked", "database is busy", "unable to open database")


def _loaded(module: str) -> ModuleType | None:
    """The driver module if this process has imported it, else None: an exception can only be one of
    psycopg's where psycopg was loaded, so a command on SQLite never pays for importing it."""
    return sys.modules.get(module)


def integrity_errors() -> tuple[type[Exception], ...]:
    """The drivers' integrity errors, for an ``except`` on the driver: psycopg's only where it is loaded."""
    psycopg = _loaded("psycopg")
    return (sqlite3.IntegrityError,) if psycopg is None else (sqlite3.IntegrityError, psycopg.IntegrityError)


def _unwrap(exc: BaseException) -> BaseException:
    """The driver's exception behind SQLAlchemy's wrapper."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None:
        return exc.orig
    return exc


def is_disconnect(exc: BaseException) -> bool:
    """Whether ``exc`` says the connection to PostgreSQL is gone (so the statement did not run there, or
    its outcome is unknown), rather than that the statement itself failed."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    inner = _unwrap(exc)
    pool, psycopg = _loaded("psycopg_pool"), _loaded("psycopg")
    if pool is not None and isinstance(inner, pool.PoolTimeout):
        return True
    if psycopg is None or not isinstance(inner, psycopg.OperationalError):
        return False
    state = inner.sqlstate or ""
    return not state or state.startswith("08") or state in {"57P01", "57P02", "57P03"}


def is_unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be reached now (down, restarting, no connection free)."""
    return is_disconnect(exc) or isinstance(exc, sa_exc.TimeoutError)


def log_round_failure(log: Any, event: str, exc: BaseException) -> None:
    """How a background loop (propagate, the schedules) logs a round that failed: while the database is
    unreachable, which is expected and which the next round retries, one warning line naming the
    cause; anything else is a bug, logged with its traceback."""
    if is_unreachable(exc):
        log.warning(event, error=f"the database is unreachable: {_unwrap(exc)}".strip())
    else:
        log.error(event, exc_info=exc)


def scim_error_for(exc: BaseException) -> ScimError | None:
    """The SCIM error a database failure means for the client, or None when it is a bug of ours."""
    if is_unreachable(exc):
        return ServiceUnavailable("the database is unreachable; retry shortly", retry_after=RETRY_AFTER_SECONDS)
    inner = _unwrap(exc)
    psycopg = _loaded("psycopg")
    if psycopg is not None and (
        isinstance(inner, psycopg.DataError)
        or (isinstance(inner, psycopg.OperationalError) and (inner.sqlstate or "").startswith("54"))
    ):
        return InvalidValue(f"the database refused a value in the request ({type(inner).__name__})")
    if isinstance(inner, sqlite3.OperationalError):
        message = str(inner).lower()
        if any(text in message for text in _SQLITE_TOO_COMPLEX):
            return InvalidValue("the request is too large or complex for the database")
        if any(text in message for text in _SQLITE_BUSY):
            return ServiceUnavailable("the database is busy; retry shortly", retry_after=RETRY_AFTER_SECONDS)
    if isinstance(inner, OverflowError | UnicodeEncodeError | sqlite3.DataError):
        return InvalidValue(f"the database cannot store a value in the request ({type(inner).__name__})")
    return None


@functools.cache
def _sqlite_unique_names() -> dict[str, str]:
    """The name of each unique constraint and index, by the columns SQLite names when one is broken
    (``"tokens.name"``, ``"identities.resource_type, identities.user_name_lower"``)."""
    names: dict[str, str] = {}
    for table in metadata.tables.values():
        keyed: list[sa.UniqueConstraint | sa.Index] = [
            c for c in table.constraints if isinstance(c, sa.UniqueConstraint)
        ]
        keyed += [index for index in table.indexes if index.unique]
        for key in keyed:
            if isinstance(key.name, str):
                names[", ".join(f"{table.name}.{column.name}" for column in key.columns)] = key.name
    return names


def constraint_name(exc: BaseException) -> str | None:
    """The unique constraint ``exc`` says was broken, by its name; None for any other failure."""
    inner = _unwrap(exc)
    psycopg = _loaded("psycopg")
    if psycopg is not None and isinstance(inner, psycopg.errors.UniqueViolation):
        return inner.diag.constraint_name  # type: ignore[no-any-return]
    if isinstance(inner, sqlite3.IntegrityError) and str(inner).startswith(_SQLITE_UNIQUE):
        return _sqlite_unique_names().get(str(inner)[len(_SQLITE_UNIQUE) :])
    return None


def integrity_error(exc: BaseException) -> ScimError:
    """A constraint the checks before the write could not see (a concurrent change), as a SCIM error."""
    message = UNIQUE.get(constraint_name(exc) or "")
    if message is not None:
        return UniquenessError(message)
    return InvalidValue("the change conflicts with another change made at the same time; retry")
