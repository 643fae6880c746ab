"""Bearer tokens the hub issues: shown once, stored only as a SHA-256 hash.

Tokens are 256 random bits, so a fast hash is enough: there is nothing to brute-force. Verified
tokens are cached for a few seconds so a request costs no database round trip; ``last_used`` is
written at most once a minute per token.

Issuing and revoking a token, and every refusal of one (unknown, expired, revoked, or outside its
scopes), are audit events (``store.governance.audit_records.token``). A refusal names the token when the hub
knows it, else the first characters of its hash, never the token; the same refusal is recorded at
most once per ``CACHE_SECONDS`` per process, so a client that retries in a loop writes little, and
refusals of unknown tokens are capped per source address and in all (``store.auth.refusals``), so a
spray of random tokens does not flood the audit trail.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from scimward.scim.errors import InvalidValue, NotFound
from scimward.store.auth.refusals import RefusalLimiter
from scimward.store.database import Database
from scimward.store.governance import audit_records
from scimward.store.tables import tokens
from scimward.store.timeutil import utcnow

TOKEN_PREFIX = "scimward_"
CACHE_SECONDS = 5.0
LAST_USED_RESOLUTION = timedelta(minutes=1)
#: What a token may do: ``scim`` the SCIM endpoint; ``admin`` the admin API, and the others too;
#: ``metrics`` only ``/metrics`` (a Prometheus scraper holds it, and can change nothing).
SCOPES = ("scim", "admin", "metrics")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class TokenInfo:
    name: str
    created_by: str
    created: datetime
    expires: datetime | None
    last_used: datetime | None
    revoked: datetime | None
    user_id: str | None
    patch_response: str
    scopes: frozenset[str] = frozenset({"scim"})
    #: The accountable person (a User's id): the token stops working when that person leaves.
    owner_id: str | None = None
    rotated_from: str | None = None
    #: The source whose SCIM client holds the token (``store.sources``); None: a source of its own.
    source: str | None = None

    def allows(self, scope: str) -> bool:
        """Whether the token may use ``scope``; ``admin`` includes every other scope."""
        return scope in self.scopes or "admin" in self.scopes

    @property
    def status(self) -> str:
        if self.revoked:
            return "revoked"
        if self.expires and self.expires <= utcnow():
            return "expired"
        return "active"


def _info(row: sa.Row[tuple[object, ...]]) -> TokenInfo:
    return TokenInfo(
        row.name,
        row.created_by,
        row.created,
        row.expires,
        row.last_used,
        row.revoked,
        row.user_id,
        row.patch_response,
        frozenset(row.scopes.split()),
        row.owner_id,
        row.rotated_from,
        row.source,
    )


def parse_scopes(scopes: str) -> frozenset[str]:
    """Scopes written space- or comma-separated, each one of ``SCOPES``."""
    names = frozenset(scopes.replace(",", " ").split())
    unknown = sorted(names - set(SCOPES))
    if unknown or not names:
        raise InvalidValue(f"unknown token scope {', '.join(unknown) or repr(scopes)}: use {', '.join(SCOPES)}")
    return names


class TokenStore:
    def __init__(self, database: Database, limiter: RefusalLimiter | None = None) -> None:
        self.db = database
        self._cache: dict[str, tuple[float, TokenInfo]] = {}
        self._refusals: dict[str, float] = {}
        #: Which refusals of unknown tokens are recorded one by one (``store.auth.refusals``).
        self.limiter = limiter or RefusalLimiter()
        self._summary_due: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def create(
        self,
        name: str,
        *,
        created_by: str,
        expires_in: timedelta | None = None,
        user_id: str | None = None,
        patch_response: str = "resource",
        scopes: str = "scim",
        replace: bool = False,
        owner_id: str | None = None,
        rotated_from: str | None = None,
        source: str | None = None,
    ) -> str:
        """Issue a token and return it; only its hash is kept. ``scopes``: see ``SCOPES``.

        ``replace``: a token already called ``name`` is deleted in the same transaction, and stops
        working at once. For tokens a program issues to itself on every run (the demo's), so that
        reruns replace them instead of piling them up.
        """
        granted = " ".join(scope for scope in SCOPES if scope in parse_scopes(scopes))
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = utcnow()
        expires = now + expires_in if expires_in else None
        async with self.db.write() as conn:
            if replace:
                await conn.execute(tokens.delete().where(tokens.c.name == name))
            await conn.execute(
                tokens.insert().values(
                    name=name,
                    token_hash=hash_token(token),
                    created_by=created_by,
                    created=now,
                    expires=now + expires_in if expires_in else None,
                    user_id=user_id,
                    patch_response=patch_response,
                    scopes=granted,
                    owner_id=owner_id,
                    rotated_from=rotated_from,
                    source=source,
                )
            )
            await audit_records.token(
                "token_issued",
                name,
                created_by,
                {
                    "scopes": granted.split(),
                    "expires": expires.isoformat() + "Z" if expires else None,
                    "user": user_id,
                    "replaced": replace,
                },
            ).append(conn)
        if replace:
            self._cache.clear()
        return token

    async def list(self) -> list[TokenInfo]:
        async with self.db.read() as conn:
            rows = await conn.execute(sa.select(tokens).order_by(tokens.c.created, tokens.c.name))
            return [_info(row) for row in rows]

    async def revoke(self, name: str, *, by: str = "admin") -> None:
        async with self.db.write() as conn:
            result = await conn.execute(
                tokens.update().where(tokens.c.name == name, tokens.c.revoked.is_(None)).values(revoked=utcnow())
            )
            if result.rowcount != 1:
                raise NotFound(f"no active token named {name!r}")
            await audit_records.token("token_revoked", name, by).append(conn)
        self._cache.clear()

    async def refused(self, token: str, where: str, reason: str | None = None, address: str | None = None) -> None:
        """Record that ``token`` was refused at ``where`` (a path), presented from ``address`` (the
        client's IP): for ``reason`` (e.g. "scope"), or by default for what ``verify`` found (unknown,
        expired or revoked). See the module's text, and ``store.auth.refusals`` for unknown tokens."""
        digest = hash_token(token)
        key = f"{digest}:{reason}:{where}"
        now = time.monotonic()
        if now - self._refusals.get(key, float("-inf")) < CACHE_SECONDS:
            return
        if len(self._refusals) > 10_000:
            self._refusals.clear()
        self._refusals[key] = now
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(tokens).where(tokens.c.token_hash == digest))).first()
        info = _info(row) if row is not None else None
        if info is None and not self.limiter.admit(address):
            self._summarise_later()
            return
        name = info.name if info is not None else f"unknown:{digest[:12]}"
        why = reason or (info.status if info is not None else "unknown")
        async with self.db.write() as conn:
            await self._append_summaries(conn)
            await audit_records.token(
                "token_refused", name, name, {"reason": why, "where": where, "address": address}
            ).append(conn)

    def _summarise_later(self) -> None:
        """Write the window's summary when it ends, even if no other refusal comes to write it."""
        if self._summary_due is None or self._summary_due.done():
            loop = asyncio.get_running_loop()
            self._summary_due = loop.create_future()
            due = self._summary_due
            loop.call_later(self.limiter.remaining() + 0.01, lambda: self._write_summaries(due))

    def _write_summaries(self, due: asyncio.Future[None]) -> None:
        async def write() -> None:
            try:
                async with self.db.write() as conn:
                    await self._append_summaries(conn)
            finally:
                if not due.done():
                    due.set_result(None)
                if self.limiter.suppressing:  # the window has not ended yet by the limiter's clock
                    self._summarise_later()

        task = asyncio.get_running_loop().create_task(write())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _append_summaries(self, conn: AsyncConnection) -> None:
        for summary in self.limiter.summaries():
            await audit_records.token(
                "token_refused_summary",
                "unknown",
                "unknown",
                {
                    "reason": "unknown",
                    "suppressed": summary.suppressed,
                    "addresses": summary.addresses,
                    "window_seconds": summary.seconds,
                    "from": datetime.fromtimestamp(summary.started, UTC).replace(tzinfo=None).isoformat() + "Z",
                },
            ).append(conn)

    async def get(self, name: str) -> TokenInfo:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(tokens).where(tokens.c.name == name))).first()
        if row is None:
            raise NotFound(f"no token named {name!r}")
        return _info(row)

    async def owned(self) -> dict[str, str]:
        """Active (not revoked) tokens that have an owner: name -> owner id."""
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(tokens.c.name, tokens.c.owner_id).where(
                    tokens.c.owner_id.is_not(None), tokens.c.revoked.is_(None)
                )
            )
            return {row.name: row.owner_id for row in rows}

    async def revoke_owned_by(self, owner_ids: Sequence[str]) -> builtins.list[str]:
        """Revoke every token these owners hold (they left); the names revoked."""
        if not owner_ids:
            return []
        async with self.db.write() as conn:
            rows = await conn.execute(
                tokens.update()
                .where(tokens.c.owner_id.in_(owner_ids), tokens.c.revoked.is_(None))
                .values(revoked=utcnow())
                .returning(tokens.c.name)
            )
            names = [row.name for row in rows]
        self._cache.clear()
        return names

    async def rotate(self, old: TokenInfo, actor: str, overlap: timedelta) -> tuple[str, str]:
        """Issue the successor of ``old`` (same scopes, owner, binding and lifetime) and let ``old``
        expire after ``overlap``, so clients can switch without an outage; (new name, new token)."""
        now = utcnow()
        root = old.rotated_from or old.name
        name = f"{root[:100]}.r{now:%Y%m%d%H%M%S}"
        lifetime = old.expires - old.created if old.expires else None
        token = await self.create(
            name,
            created_by=actor,
            expires_in=lifetime,
            user_id=old.user_id,
            patch_response=old.patch_response,
            scopes=" ".join(sorted(old.scopes)),
            owner_id=old.owner_id,
            rotated_from=root,
        )
        ends = now + overlap if old.expires is None else min(old.expires, now + overlap)
        async with self.db.write() as conn:
            await conn.execute(tokens.update().where(tokens.c.name == old.name).values(expires=ends))
        self._cache.clear()
        return name, token

    async def transfer(self, name: str, owner_id: str) -> None:
        async with self.db.write() as conn:
            result = await conn.execute(tokens.update().where(tokens.c.name == name).values(owner_id=owner_id))
            if result.rowcount != 1:
                raise NotFound(f"no token named {name!r}")

    async def verify(self, token: str) -> TokenInfo | None:
        """The token's record if it is active, else None."""
        digest = hash_token(token)
        cached = self._cache.get(digest)
        now = time.monotonic()
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            info = cached[1]
        else:
            async with self.db.read() as conn:
                row = (await conn.execute(sa.select(tokens).where(tokens.c.token_hash == digest))).first()
            if row is None:
                return None
            info = _info(row)
            if info.status == "active":
                info = await self._touch(digest, info)
            self._cache[digest] = (now, info)
        return info if info.status == "active" else None

    async def _touch(self, digest: str, info: TokenInfo) -> TokenInfo:
        now = utcnow()
        if info.last_used is not None and now - info.last_used < LAST_USED_RESOLUTION:
            return info
        async with self.db.write() as conn:
            await conn.execute(tokens.update().where(tokens.c.token_hash == digest).values(last_used=now))
        return replace(info, last_used=now)
