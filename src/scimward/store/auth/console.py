"""The console's people and sessions: local break-glass administrators and server-side sessions.

A local administrator's password is shown once when the account is made and kept only as an
Argon2id hash (``store.passwords``). A session is a row: the browser's cookie carries 256 random
bits, the row only their SHA-256 hash (as API tokens, ``store.tokens``), so a copy of the database
opens no session. A session ends when it expires, when it has been idle too long, when its person
signs out, or when someone revokes it; each is a column, checked on every request.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from scimward.scim.errors import InvalidValue, NotFound, UniquenessError
from scimward.store.database import Database
from scimward.store.governance import audit
from scimward.store.identity.passwords import hash_password, verify_password
from scimward.store.tables import audit_events, console_admins, console_sessions
from scimward.store.timeutil import utcnow

#: Console roles, least to most: each may do what the ones before it may.
ROLES = ("viewer", "reviewer", "approver", "admin")
#: ``last_seen`` is written at most this often per session: an idle limit needs no finer clock.
SEEN_RESOLUTION = timedelta(seconds=30)
#: Rows of sessions that ended are kept this long (the Sessions page and an investigation may want
#: them), then removed when someone next signs in.
KEEP_ENDED = timedelta(days=30)
_decoy: list[str] = []

_a, _s = console_admins.c, console_sessions.c


def role_rank(role: str) -> int:
    return ROLES.index(role)


def hash_session_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class ConsoleAdmin:
    name: str
    role: str
    created: datetime
    created_by: str
    disabled: datetime | None


@dataclass(frozen=True)
class ConsoleSession:
    token_hash: str
    name: str
    role: str
    #: ``local`` (a break-glass administrator) or ``oidc`` (the organisation's identity provider).
    via: str
    #: The token every form of this session carries (the CSRF check).
    csrf: str
    created: datetime
    last_seen: datetime
    expires: datetime
    revoked: datetime | None

    def allows(self, role: str) -> bool:
        return role_rank(self.role) >= role_rank(role)


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidValue(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    return role


class ConsoleAccounts:
    """Local administrators: made with a one-time password, checked at sign-in, disabled."""

    def __init__(self, database: Database) -> None:
        self.db = database

    async def create(self, name: str, role: str, created_by: str) -> str:
        """Make the account and return its password, which is not kept."""
        check_role(role)
        password = secrets.token_urlsafe(18)
        password_hash = await hash_password(password)
        async with self.db.write() as conn:
            exists = (await conn.execute(sa.select(_a.name).where(_a.name == name))).first()
            if exists is not None:
                raise UniquenessError(f"a console administrator called {name!r} exists already")
            await conn.execute(
                console_admins.insert().values(
                    name=name, role=role, password_hash=password_hash, created=utcnow(), created_by=created_by
                )
            )
        return password

    async def list(self) -> list[ConsoleAdmin]:
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(_a.name, _a.role, _a.created, _a.created_by, _a.disabled).order_by(_a.name)
            )
            return [ConsoleAdmin(*row) for row in rows]

    async def verify(self, name: str, password: str) -> str | None:
        """The account's role when ``password`` is its password and it is not disabled; else None."""
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(_a.role, _a.password_hash, _a.disabled).where(_a.name == name))).first()
        if row is None:
            # An unknown name takes as long to refuse as a wrong password: check one nobody has.
            if not _decoy:
                _decoy.append(await hash_password(secrets.token_urlsafe(18)))
            await asyncio.to_thread(verify_password, _decoy[0], password)
            return None
        if not await asyncio.to_thread(verify_password, row.password_hash, password) or row.disabled is not None:
            return None
        return str(row.role)

    async def disable(self, name: str) -> None:
        """The account can no longer sign in, and its open sessions end now."""
        now = utcnow()
        async with self.db.write() as conn:
            result = await conn.execute(
                console_admins.update().where(_a.name == name, _a.disabled.is_(None)).values(disabled=now)
            )
            if result.rowcount != 1:
                raise NotFound(f"no active console administrator called {name!r}")
            await conn.execute(
                console_sessions.update()
                .where(_s.name == name, _s.via == "local", _s.revoked.is_(None))
                .values(revoked=now)
            )


class ConsoleSessions:
    def __init__(self, database: Database, lifetime: timedelta, idle: timedelta) -> None:
        self.db = database
        self.lifetime = lifetime
        self.idle = idle

    async def open(self, name: str, role: str, via: str) -> tuple[str, ConsoleSession]:
        """A new session; returns the cookie's token (not kept) and the session."""
        check_role(role)
        token = secrets.token_urlsafe(32)
        now = utcnow()
        session = ConsoleSession(
            hash_session_token(token), name, role, via, secrets.token_urlsafe(32), now, now, now + self.lifetime, None
        )
        async with self.db.write() as conn:
            await conn.execute(console_sessions.delete().where(_s.expires < now - KEEP_ENDED))
            await conn.execute(
                console_sessions.insert().values(
                    token_hash=session.token_hash,
                    name=name,
                    role=role,
                    via=via,
                    csrf=session.csrf,
                    created=now,
                    last_seen=now,
                    expires=session.expires,
                )
            )
        return token, session

    async def get(self, token: str) -> ConsoleSession | None:
        """The session the cookie's token opens, if it is live (not expired, idle, revoked)."""
        digest = hash_session_token(token)
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(console_sessions).where(_s.token_hash == digest))).first()
        if row is None:
            return None
        session = ConsoleSession(
            row.token_hash, row.name, row.role, row.via, row.csrf, row.created, row.last_seen, row.expires, row.revoked
        )
        now = utcnow()
        if session.revoked is not None or session.expires <= now or now - session.last_seen > self.idle:
            return None
        if now - session.last_seen >= SEEN_RESOLUTION:
            async with self.db.write() as conn:
                await conn.execute(console_sessions.update().where(_s.token_hash == digest).values(last_seen=now))
        return session

    async def revoke(self, token_hash: str) -> bool:
        async with self.db.write() as conn:
            result = await conn.execute(
                console_sessions.update()
                .where(_s.token_hash == token_hash, _s.revoked.is_(None))
                .values(revoked=utcnow())
            )
            return bool(result.rowcount)

    async def live(self, limit: int = 200) -> list[ConsoleSession]:
        """Sessions that have not ended, newest first."""
        now = utcnow()
        async with self.db.read() as conn:
            rows = await conn.execute(
                sa.select(console_sessions)
                .where(_s.revoked.is_(None), _s.expires > now, _s.last_seen > now - self.idle)
                .order_by(_s.created.desc())
                .limit(limit)
            )
            return [
                ConsoleSession(
                    r.token_hash, r.name, r.role, r.via, r.csrf, r.created, r.last_seen, r.expires, r.revoked
                )
                for r in rows
            ]


async def failed_sign_ins(database: Database, name: str, since: datetime) -> int:
    """How many sign-ins as ``name`` were refused since then (from the audit trail, across processes)."""
    e = audit_events.c
    async with database.read() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.count()).where(
                        e.kind == "console_refused", e.subject == "sign-in", e.actor == name, e.time >= since
                    )
                )
            ).scalar_one()
        )


async def record(database: Database, kind: str, actor: str, subject: str, data: Mapping[str, Any]) -> None:
    """One audit event for something done in the console (a sign-in, a refusal, an action), in its own transaction."""
    async with database.write() as conn:
        await audit.append(conn, kind=kind, actor=actor, subject=subject, data=data)
