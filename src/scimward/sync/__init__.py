"""Talking to targets: the outbound SCIM client and the errors that steer propagate and reconcile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
    from scimward.sync.client import Resource, TargetClient, backoff, eq_filter, parse_retry_after
    from scimward.sync.errors import (
        AlreadyExistsError,
        AuthError,
        BadRequestError,
        HaltError,
        NotFoundError,
        ProtocolError,
        TargetError,
        TransientError,
    )

__all__ = [
    "AlreadyExistsError",
    "AuthError",
    "BadRequestError",
    "HaltError",
    "NotFoundError",
    "ProtocolError",
    "Resource",
    "TargetClient",
    "TargetError",
    "TransientError",
    "backoff",
    "eq_filter",
    "parse_retry_after",
]


if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
