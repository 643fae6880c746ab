"""Identities: SCIM resources in SQL, their reads, the write pipeline's apply, cursors, counts, passwords,
and the short reads pages show (``summaries``: names for ids, a member's groups, member counts).

The fast paths (``_fused`` one-statement writes on PostgreSQL, ``_batched`` writes of many changes by
statement, ``_positions`` index paging) are private to this room; ``IdentityStore`` and its ``Writer`` choose them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scimward.facades import lazy_exports

if TYPE_CHECKING:
    from scimward.store.identity.cursor import CURSOR_TIMEOUT_SECONDS
    from scimward.store.identity.identities import Edit, IdentityStore, SearchQuery, SearchResult
    from scimward.store.identity.identity_rows import StoredIdentity, etag
    from scimward.store.identity.passwords import verify_password
    from scimward.store.identity.summaries import groups_of, member_counts, names_of

__all__ = [
    "CURSOR_TIMEOUT_SECONDS",
    "Edit",
    "IdentityStore",
    "SearchQuery",
    "SearchResult",
    "StoredIdentity",
    "etag",
    "groups_of",
    "member_counts",
    "names_of",
    "verify_password",
]

if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)
