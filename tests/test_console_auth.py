"""The console's sign-in and sessions on both dialects, over HTTP against a real server (issue 18 item 2).

The browser tests (``test_console_browser.py``) drive the same flows in Chromium on SQLite; these
pin the server's side on PostgreSQL too: the session row, its expiry, idleness and revocation, the
role and CSRF refusals, and the audit trail of each.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.store.auth import ConsoleAccounts, ConsoleSessions
from scimward.store.database import Database
from scimward.store.tables import audit_events, console_sessions
from scimward.store.timeutil import utcnow
from scimward.web.oidc import person, role_for
from tests.conftest import ServerThread

SCIMWARD = [sys.executable, "-m", "scimward"]


def run(coro: object) -> object:
    return asyncio.run(coro)  # type: ignore[arg-type]


async def _accounts(url: str, *people: tuple[str, str]) -> dict[str, str]:
    db = Database(url)
    try:
        return {name: await ConsoleAccounts(db).create(name, role, "tests") for name, role in people}
    finally:
        await db.dispose()


@pytest.fixture
def console(hub_url: str) -> Iterator[tuple[str, dict[str, str]]]:
    passwords = asyncio.run(_accounts(hub_url, ("ana", "approver"), ("vic", "viewer")))
    # Cookies marked Secure are not sent by httpx over plain HTTP; the browser tests keep them Secure.
    with ServerThread(Settings(database_url=hub_url, run_worker=False, console_secure_cookies=False)) as server:
        yield f"http://127.0.0.1:{server.port}/console", passwords


def sign_in(base: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=base)
    form = client.get("/sign-in")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token, form.text
    answer = client.post("/sign-in", data={"csrf": token.group(1), "name": name, "password": password})
    assert answer.status_code == 303, answer.text
    return client


def csrf(client: httpx.Client) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert found
    return found.group(1)


def events(url: str, kind: str) -> list[tuple[str, str]]:
    async def read() -> list[tuple[str, str]]:
        db = Database(url)
        try:
            async with db.read() as conn:
                e = audit_events.c
                return [(r[0], r[1]) for r in await conn.execute(
                    sa.select(e.actor, e.subject).where(e.kind == kind).order_by(e.time))]
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_a_page_without_a_session_sends_the_person_to_sign_in(console: tuple[str, dict[str, str]]) -> None:
    base, _ = console
    answer = httpx.get(base + "/changes?status=pending")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fchanges%3Fstatus%3Dpending"
    assert httpx.post(base + "/changes/decide", data={"action": "approve", "id": "x"}).status_code == 401


def test_a_wrong_password_is_refused_and_audited(console: tuple[str, dict[str, str]], hub_url: str) -> None:
    base, passwords = console
    client = httpx.Client(base_url=base)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text)
    assert token
    answer = client.post("/sign-in", data={"csrf": token.group(1), "name": "ana", "password": "guess"})
    assert answer.status_code == 401 and "do not match" in answer.text
    assert passwords["ana"] not in answer.text
    assert ("ana", "sign-in") in events(hub_url, "console_refused")


def test_the_session_cookie_is_http_only_and_same_site_and_pages_carry_a_strict_csp(
        console: tuple[str, dict[str, str]]) -> None:
    base, passwords = console
    client = httpx.Client(base_url=base)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text)
    assert token
    answer = client.post("/sign-in", data={"csrf": token.group(1), "name": "ana", "password": passwords["ana"]})
    cookie = answer.headers["set-cookie"].lower()
    assert "scimward_console=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_a_viewer_is_refused_every_action_on_the_server(console: tuple[str, dict[str, str]], hub_url: str) -> None:
    base, passwords = console
    client = sign_in(base, "vic", passwords["vic"])
    token = csrf(client)
    for path, form in (("/changes/decide", {"action": "approve", "id": "x"}), ("/breakers/app/release", {}),
                       ("/findings/accept", {"finding": "1", "until": "2030-01-01", "reason": "r"}),
                       ("/sessions/revoke", {"session": "x"})):
        answer = client.post(path, data={"csrf": token, **form})
        assert answer.status_code == 403, path
    assert client.get("/sessions").status_code == 403
    assert client.get("/changes").status_code == 200
    assert len([s for a, s in events(hub_url, "console_refused") if a == "vic"]) == 5


def test_an_action_without_the_session_csrf_token_is_refused(console: tuple[str, dict[str, str]]) -> None:
    base, passwords = console
    client = sign_in(base, "ana", passwords["ana"])
    assert client.post("/changes/decide", data={"action": "reject", "id": "x"}).status_code == 403
    assert client.post("/changes/decide", data={"csrf": "forged", "action": "reject", "id": "x"}).status_code == 403
    answer = client.post("/changes/decide", data={"csrf": csrf(client), "action": "reject", "id": "x"})
    assert answer.status_code == 303  # with its token the form is taken (and says there is no change x)


def test_signing_out_revokes_the_session_on_the_server(console: tuple[str, dict[str, str]], hub_url: str) -> None:
    base, passwords = console
    client = sign_in(base, "ana", passwords["ana"])
    stolen = client.cookies["scimward_console"]
    assert client.post("/sign-out", data={"csrf": csrf(client)}).status_code == 303
    again = httpx.get(base + "/", cookies={"scimward_console": stolen})
    assert again.status_code == 303 and "/sign-in" in again.headers["location"]
    assert [a for a, _ in events(hub_url, "console_sign_out")] == ["ana"]


def test_a_session_ends_when_it_expires_when_idle_and_when_revoked(hub_url: str) -> None:
    async def scenario() -> None:
        db = Database(hub_url)
        try:
            sessions = ConsoleSessions(db, lifetime=timedelta(hours=8), idle=timedelta(minutes=30))
            token, session = await sessions.open("ana", "approver", "local")
            assert (await sessions.get(token)) is not None
            assert (await sessions.get(token + "x")) is None
            s = console_sessions.c
            async with db.write() as conn:  # the person went for lunch
                await conn.execute(console_sessions.update().where(s.token_hash == session.token_hash)
                                   .values(last_seen=utcnow() - timedelta(minutes=31)))
            assert (await sessions.get(token)) is None
            token, session = await sessions.open("ana", "approver", "local")
            async with db.write() as conn:  # a day later
                await conn.execute(console_sessions.update().where(s.token_hash == session.token_hash)
                                   .values(expires=utcnow() - timedelta(seconds=1)))
            assert (await sessions.get(token)) is None
            token, session = await sessions.open("ana", "approver", "local")
            assert [x.token_hash for x in await sessions.live()] == [session.token_hash]
            assert await sessions.revoke(session.token_hash)
            assert (await sessions.get(token)) is None and not await sessions.revoke(session.token_hash)
            async with db.read() as conn:  # the cookie's token is never stored
                assert token not in str((await conn.execute(sa.select(console_sessions))).all())
        finally:
            await db.dispose()

    asyncio.run(scenario())


def test_a_disabled_administrator_cannot_sign_in_and_loses_their_sessions(hub_url: str) -> None:
    async def scenario() -> None:
        db = Database(hub_url)
        try:
            accounts = ConsoleAccounts(db)
            password = await accounts.create("root", "admin", "tests")
            assert await accounts.verify("root", password) == "admin"
            assert await accounts.verify("root", password + "x") is None
            assert await accounts.verify("nobody", password) is None
            sessions = ConsoleSessions(db, lifetime=timedelta(hours=1), idle=timedelta(hours=1))
            token, _ = await sessions.open("root", "admin", "local")
            await accounts.disable("root")
            assert await accounts.verify("root", password) is None
            assert await sessions.get(token) is None
        finally:
            await db.dispose()

    asyncio.run(scenario())


def test_admin_create_prints_the_one_time_password_alone_on_the_last_line(hub_url: str) -> None:
    done = subprocess.run([*SCIMWARD, "admin", "create", "break-glass", "--role", "approver",
                           "--database-url", hub_url], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    password = done.stdout.strip().splitlines()[-1]
    assert len(password) >= 20 and " " not in password
    assert run(_verify(hub_url, "break-glass", password)) == "approver"
    again = subprocess.run([*SCIMWARD, "admin", "create", "break-glass", "--database-url", hub_url],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode != 0 and "exists already" in again.stderr and "Traceback" not in again.stderr
    wrong = subprocess.run([*SCIMWARD, "admin", "create", "x", "--role", "owner", "--database-url", hub_url],
                           capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "--role must be one of viewer, reviewer, approver, admin" in wrong.stderr


async def _verify(url: str, name: str, password: str) -> str | None:
    db = Database(url)
    try:
        return await ConsoleAccounts(db).verify(name, password)
    finally:
        await db.dispose()


def test_the_role_mapping_grants_the_highest_matching_role_and_none_to_strangers() -> None:
    rules = [("groups", "idm", "viewer"), ("groups", "idm-admins", "admin"), ("email", "ada@example.com", "approver")]
    assert role_for({"groups": ["idm", "idm-admins"]}, rules) == "admin"
    assert role_for({"groups": ["idm"], "email": "ada@example.com"}, rules) == "approver"
    assert role_for({"groups": "idm"}, rules) == "viewer"
    assert role_for({"groups": ["sales"], "email": "eve@example.com"}, rules) is None
    assert person({"preferred_username": "ada", "email": "ada@example.com", "sub": "1"}) == "ada"
    assert person({"sub": "1"}) == "1"


def test_signing_in_goes_on_only_to_a_console_page(console: tuple[str, dict[str, str]]) -> None:
    base, passwords = console
    for given, expected in (("/console/findings?status=all", "/console/findings?status=all"),
                            ("https://evil.example/", "/console/"), ("//evil.example/console/", "/console/"),
                            ("/console/\\evil.example", "/console/")):
        client = httpx.Client(base_url=base)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text)
        assert token
        answer = client.post("/sign-in", data={"csrf": token.group(1), "name": "ana", "password": passwords["ana"],
                                               "next": given})
        assert answer.headers["location"] == expected, given
