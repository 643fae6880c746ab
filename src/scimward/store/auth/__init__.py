"""Credentials the hub keeps: the bearer tokens it issues, the secrets it makes for itself, and the
console's administrators and sessions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
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

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
