"""Access reviews: campaigns whose revokes remove access everywhere, through the gate (issue 15)."""

from __future__ import annotations

from scimward.governance.reviews.campaigns import DECISIONS, Decided, ReviewError, Reviews, review_source

__all__ = ["DECISIONS", "Decided", "ReviewError", "Reviews", "review_source"]
