"""Passwords clients send (the writeOnly ``password``): kept only as an Argon2id hash.

The hub never needs a password back: it is never returned (RFC 7643 4.1.1) and never pushed
downstream. Hashing takes tens of milliseconds of CPU by design, so it runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from argon2 import PasswordHasher

_hasher = PasswordHasher()


async def take_password_hash(doc: dict[str, Any]) -> str | None:
    """Remove ``password`` from ``doc`` and return its hash (None when the doc carries none)."""
    password = doc.pop("password", None)
    if not isinstance(password, str):
        return None
    return await asyncio.to_thread(_hasher.hash, password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except Exception:  # argon2 raises a family of errors for "no"; all mean the same here
        return False


async def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (in a worker thread, as ``take_password_hash``)."""
    return await asyncio.to_thread(_hasher.hash, password)
