"""Settings of the HTTP edge: the hub's one settings model (``scimward.settings``), as the API reads it."""

from __future__ import annotations

from scimward.settings import ENV_PREFIX, MIB, Settings

__all__ = ["ENV_PREFIX", "MIB", "Settings"]
