"""Credentials the hub keeps: the bearer tokens it issues, the secrets it makes for itself, and the
console's administrators and sessions."""

from scimward.store.auth.console import (
    ROLES,
    ConsoleAccounts,
    ConsoleAdmin,
    ConsoleSession,
    ConsoleSessions,
    check_role,
    failed_sign_ins,
    record,
    role_rank,
)
from scimward.store.auth.hub_secrets import hub_secret
from scimward.store.auth.tokens import SCOPES, TokenInfo, TokenStore

__all__ = [
    "ROLES",
    "SCOPES",
    "ConsoleAccounts",
    "ConsoleAdmin",
    "ConsoleSession",
    "ConsoleSessions",
    "TokenInfo",
    "TokenStore",
    "check_role",
    "failed_sign_ins",
    "hub_secret",
    "record",
    "role_rank",
]
