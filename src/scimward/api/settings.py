"""Settings of the HTTP edge, from the command line or the environment."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    database_url: str
    max_body_bytes: int = MIB
    max_results: int = 1000
    #: The externally visible base URL (behind a proxy); None: taken from each request.
    public_url: str | None = None
