"""Credentials the hub keeps: the bearer tokens it issues, and the secrets it makes for itself."""

from scimward.store.auth.hub_secrets import hub_secret
from scimward.store.auth.tokens import SCOPES, TokenInfo, TokenStore

__all__ = ["SCOPES", "TokenInfo", "TokenStore", "hub_secret"]
