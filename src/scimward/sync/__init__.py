"""Talking to targets: the outbound SCIM client and the errors that steer propagate and reconcile."""

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
