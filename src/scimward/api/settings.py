"""Settings of the HTTP edge, from the command line or the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass

from scimward.scim.limits import DEFAULT_PATCH_MAX_OPERATIONS

MIB = 1024 * 1024
ENV_PREFIX = "SCIMWARD_"


@dataclass(frozen=True)
class Settings:
    database_url: str
    max_body_bytes: int = MIB
    max_results: int = 1000
    #: The externally visible base URL (behind a proxy); None: taken from each request.
    public_url: str | None = None
    #: Paging when a list request names neither ``cursor`` nor ``startIndex``: "cursor" or "index".
    default_pagination: str = "cursor"
    #: Run a propagate worker in this process (``scimward serve --no-worker`` to leave it to workers).
    run_worker: bool = True
    #: Bulk limits advertised in ServiceProviderConfig and enforced by POST /Bulk (RFC 7644 3.7.4).
    bulk_max_operations: int = 1000
    bulk_max_payload_bytes: int = 4 * MIB
    #: Operations in one PATCH; beyond it 400 tooMany. Documented (docs/security.md), not advertised: the
    #: ServiceProviderConfig "patch" section has only "supported", and validating clients refuse more.
    patch_max_operations: int = DEFAULT_PATCH_MAX_OPERATIONS

    @classmethod
    def from_env(cls) -> Settings:
        """Settings from ``SCIMWARD_*`` variables: how ``scimward serve`` configures its workers."""
        env = os.environ
        return cls(
            database_url=env.get("SCIMWARD_DATABASE_URL", "sqlite:///scimward.db"),
            max_body_bytes=int(env.get("SCIMWARD_MAX_BODY_BYTES", MIB)),
            max_results=int(env.get("SCIMWARD_MAX_RESULTS", 1000)),
            public_url=env.get("SCIMWARD_PUBLIC_URL") or None,
            default_pagination=env.get("SCIMWARD_DEFAULT_PAGINATION", "cursor"),
            run_worker=env.get("SCIMWARD_WORKER", "1") not in {"0", "false", "no"},
            bulk_max_operations=int(env.get("SCIMWARD_BULK_MAX_OPERATIONS", 1000)),
            bulk_max_payload_bytes=int(env.get("SCIMWARD_BULK_MAX_PAYLOAD_BYTES", 4 * MIB)),
            patch_max_operations=int(env.get("SCIMWARD_PATCH_MAX_OPERATIONS", DEFAULT_PATCH_MAX_OPERATIONS)),
        )
