"""The console's sign-in and sessions on both dialects, over HTTP against a real server (issue 18 item 2).

The browser tests (``test_console_browser.py``) drive the same flows in Chromium on SQLite; these
pin the server's side on PostgreSQL too: the session row, its expiry, idleness and revocation, the
role and CSRF refusals, and the audit trail of each.
"""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from scimward.api.settings import Settings
from scimward.store.auth import ConsoleAccounts, ConsoleSessions
from scimward.store.database import Database
from scimward.store.tables import audit_events, console_sessions
from scimward.store.timeutil import utcnow
from scimward.web.oidc import person, role_for
from tests import forkserver
from tests.conftest import ServerThread, free_port, migrated_sqlite


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
                return [
                    (r[0], r[1])
                    for r in await conn.execute(sa.select(e.actor, e.subject).where(e.kind == kind).order_by(e.time))
                ]
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
    console: tuple[str, dict[str, str]], hub_url: str
) -> None:
    base, passwords = console
    client = httpx.Client(base_url=base)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text)
    assert token
    answer = client.post("/sign-in", data={"csrf": token.group(1), "name": "ana", "password": passwords["ana"]})
    cookie = answer.headers["set-cookie"].lower()
    assert "scimward_console=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
    page = client.get("/")
    assert page.status_code == 200 and [a for a, _ in events(hub_url, "console_sign_in")] == ["ana"]
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "unsafe-inline" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY" and page.headers["cache-control"] == "no-store"


def test_a_viewer_is_refused_every_action_on_the_server(console: tuple[str, dict[str, str]], hub_url: str) -> None:
    base, passwords = console
    client = sign_in(base, "vic", passwords["vic"])
    token = csrf(client)
    for path, form in (
        ("/changes/decide", {"action": "approve", "id": "x"}),
        ("/breakers/app/release", {}),
        ("/findings/accept", {"finding": "1", "until": "2030-01-01", "reason": "r"}),
        ("/sessions/revoke", {"session": "x"}),
        ("/targets/app/preview", {"scope": ""}),
        ("/targets/app/apply", {"changes": "{}"}),
        ("/nhi/x/attest", {}),
        ("/nhi/x/transfer", {"to": "a"}),
        ("/nhi/x/retire", {"confirm": "yes"}),
    ):
        answer = client.post(path, data={"csrf": token, **form})
        assert answer.status_code == 403, path
    assert client.get("/sessions").status_code == 403
    assert client.get("/changes").status_code == 200
    assert len([s for a, s in events(hub_url, "console_refused") if a == "vic"]) == 10


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
                await conn.execute(
                    console_sessions.update()
                    .where(s.token_hash == session.token_hash)
                    .values(last_seen=utcnow() - timedelta(minutes=31))
                )
            assert (await sessions.get(token)) is None
            token, session = await sessions.open("ana", "approver", "local")
            async with db.write() as conn:  # a day later
                await conn.execute(
                    console_sessions.update()
                    .where(s.token_hash == session.token_hash)
                    .values(expires=utcnow() - timedelta(seconds=1))
                )
            assert (await sessions.get(token)) is None
            token, session = await sessions.open("ana", "approver", "local")
            assert [x.token_hash for x in await sessions.live()] == [session.token_hash]
            assert await sessions.revoke(session.token_hash)
            assert (await sessions.get(token)) is None and not await sessions.revoke(session.token_hash)
            async with db.read() as conn:  # the cookie's token is never stored
                assert token not in str((await conn.execute(sa.select(console_sessions))).all())
            async with db.write() as conn:  # a session that ended long ago
                await conn.execute(
                    console_sessions.update()
                    .where(s.token_hash == session.token_hash)
                    .values(expires=utcnow() - timedelta(days=31))
                )
            await sessions.open("ana", "approver", "local")  # signing in sweeps it away
            async with db.read() as conn:
                left = [r[0] for r in await conn.execute(sa.select(s.token_hash))]
            assert session.token_hash not in left and len(left) == 3
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
    done = forkserver.run(["admin", "create", "break-glass", "--role", "approver", "--database-url", hub_url])
    assert done.returncode == 0, done.stderr
    password = done.stdout.strip().splitlines()[-1]
    assert len(password) >= 20 and " " not in password
    assert run(_verify(hub_url, "break-glass", password)) == "approver"
    again = forkserver.run(["admin", "create", "break-glass", "--database-url", hub_url])
    assert again.returncode != 0 and "exists already" in again.stderr and "Traceback" not in again.stderr
    wrong = forkserver.run(["admin", "create", "x", "--role", "owner", "--database-url", hub_url])
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
    for given, expected in (
        ("/console/findings?status=all", "/console/findings?status=all"),
        ("https://evil.example/", "/console/"),
        ("//evil.example/console/", "/console/"),
        ("/console/\\evil.example", "/console/"),
    ):
        client = httpx.Client(base_url=base)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text)
        assert token
        answer = client.post(
            "/sign-in", data={"csrf": token.group(1), "name": "ana", "password": passwords["ana"], "next": given}
        )
        assert answer.headers["location"] == expected, given


def test_every_console_route_but_sign_in_needs_a_session(console: tuple[str, dict[str, str]]) -> None:
    """Each page's routes (``web.nav.PAGES``), each method: without a session, a page sends the person
    to sign in and an action is refused (issue 18: roles enforced on the server for every page and action)."""
    from starlette.routing import Route

    from scimward.web.app import page_routes

    base, _ = console
    checked = 0
    for route in page_routes():
        assert isinstance(route, Route)
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            answer = httpx.request(method, base + path)
            if method == "GET":
                assert answer.status_code == 303 and "/console/sign-in" in answer.headers["location"], path
            else:
                assert answer.status_code == 401, (method, path)
            checked += 1
    assert checked >= 15


def test_guessing_a_password_is_stopped_after_ten_failures(console: tuple[str, dict[str, str]]) -> None:
    base, passwords = console
    client = httpx.Client(base_url=base)

    def attempt(password: str) -> httpx.Response:
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text)
        assert token
        return client.post("/sign-in", data={"csrf": token.group(1), "name": "vic", "password": password})

    assert [attempt(f"guess-{n}").status_code for n in range(10)] == [401] * 10
    refused = attempt(passwords["vic"])
    assert refused.status_code == 429 and "Too many failed sign-ins" in refused.text
    assert sign_in(base, "ana", passwords["ana"])  # another account is not held up


def test_an_unreachable_identity_provider_is_said_not_crashed(sqlite_template: Path, tmp_path: Path) -> None:
    url = migrated_sqlite(sqlite_template, tmp_path / "hub.db")
    settings = Settings(
        database_url=url,
        run_worker=False,
        console_oidc_issuer=f"http://127.0.0.1:{free_port()}",
        console_oidc_client_id="scimward",
        console_oidc_roles="groups=idm:admin",
    )
    with ServerThread(settings) as server:
        answer = httpx.get(f"http://127.0.0.1:{server.port}/console/oidc/start")
        assert answer.status_code == 503 and "did not answer" in answer.text
        page = httpx.get(f"http://127.0.0.1:{server.port}/console/sign-in")
        assert "Sign in with your organisation" in page.text and "Break-glass administrator" in page.text


def test_four_eyes_nobody_approves_their_own_change_from_the_console(
    console: tuple[str, dict[str, str]], hub_url: str
) -> None:
    from urllib.parse import parse_qs, urlsplit

    from scimward.policy import Approvals, PolicyGate, identity_store, policies
    from scimward.scim.patch import PATCH_OP_SCHEMA
    from scimward.scim.resource import normalize
    from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
    from tests.console_world import POLICY

    async def held_change_by_ana() -> str:
        db = Database(hub_url)
        try:
            await policies.apply(db, POLICY, "tests")
            store = identity_store(db, PolicyGate(db, refresh_seconds=0))
            user = await store.create(
                USER_TYPE, normalize({"schemas": [USER_SCHEMA], "userName": "eve@example.com"}, USER_TYPE), "cli", "ana"
            )
            group = await store.create(
                GROUP_TYPE, normalize({"schemas": [GROUP_SCHEMA], "displayName": "admins-db"}, GROUP_TYPE), "cli", "ana"
            )
            await store.patch(
                GROUP_TYPE,
                group.id,
                {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": user.id}]}],
                },
                source="cli",
                actor="ana",
            )
            return (await Approvals(db, store.direct).changes("pending"))[0].id
        finally:
            await db.dispose()

    async def status_of(change_id: str) -> str:
        db = Database(hub_url)
        try:
            return (await Approvals(db, identity_store(db).direct).show(change_id)).status
        finally:
            await db.dispose()

    change_id = asyncio.run(held_change_by_ana())
    base, passwords = console
    client = sign_in(base, "ana", passwords["ana"])
    answer = client.post("/changes/decide", data={"csrf": csrf(client), "action": "approve", "id": change_id})
    assert answer.status_code == 303
    notice = parse_qs(urlsplit(answer.headers["location"]).query)["notice"][0]
    assert "'ana' made it and cannot approve it" in notice
    assert asyncio.run(status_of(change_id)) == "pending"


def test_an_administrator_revokes_another_persons_session(console: tuple[str, dict[str, str]], hub_url: str) -> None:
    base, passwords = console
    root_password = asyncio.run(_accounts(hub_url, ("root", "admin")))["root"]
    victim = sign_in(base, "vic", passwords["vic"])
    admin = sign_in(base, "root", root_password)
    listing = admin.get("/sessions")
    assert listing.status_code == 200
    rows = re.findall(r'<th scope="row">(\w+).*?name="session" value="([0-9a-f]{64})"', listing.text, re.S)
    vic_session = next(digest for name, digest in rows if name == "vic")
    answer = admin.post("/sessions/revoke", data={"csrf": csrf(admin), "session": vic_session})
    assert answer.status_code == 303 and "Session+revoked" in answer.headers["location"]
    assert victim.get("/").status_code == 303  # back to sign-in
    assert admin.get("/").status_code == 200
    assert ("root", f"session:{vic_session[:12]}") in events(hub_url, "console_action")


def test_every_page_answers_on_this_dialect(console: tuple[str, dict[str, str]], hub_url: str) -> None:
    """The pages' SQL on both dialects (the browser tests run on SQLite), with a target, a held change,
    a campaign and a finding to show."""
    from scimward.governance.reviews import Reviews
    from scimward.policy import PolicyGate, identity_store, policies
    from scimward.scim.patch import PATCH_OP_SCHEMA
    from scimward.scim.resource import normalize
    from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
    from scimward.store.provisioning import TargetRepository
    from scimward.sync.secrets import SecretBox
    from scimward.sync.targets import TargetConfig
    from scimward.web.nav import PAGES
    from tests.console_world import POLICY

    async def prepare() -> tuple[str, str]:
        db = Database(hub_url)
        try:
            await policies.apply(db, POLICY, "tests")
            await TargetRepository(db).add(
                "app", "http://127.0.0.1:9/scim/v2", SecretBox().encrypt("t"), TargetConfig().to_json()
            )
            store = identity_store(db, PolicyGate(db, refresh_seconds=0))
            user = await store.create(
                USER_TYPE,
                normalize({"schemas": [USER_SCHEMA], "userName": "eve@example.com"}, USER_TYPE),
                "scim:okta",
                "okta",
            )
            group = await store.create(
                GROUP_TYPE,
                normalize({"schemas": [GROUP_SCHEMA], "displayName": "admins-x"}, GROUP_TYPE),
                "scim:okta",
                "okta",
            )
            await store.patch(
                GROUP_TYPE,
                group.id,
                {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": user.id}]}],
                },
                source="scim:okta",
                actor="okta",
            )
            await Reviews(db, store).start(
                "q1", groups='displayName eq "admins-x"', reviewer="eve@example.com", actor="tests"
            )
            return user.id, group.id
        finally:
            await db.dispose()

    user_id, group_id = asyncio.run(prepare())
    base, passwords = console
    client = sign_in(base, "ana", passwords["ana"])
    change = re.search(r'href="/console/changes/([0-9a-f-]{36})"', client.get("/changes").text)
    assert change
    paths = [page.path for page in PAGES if page.role != "admin"] + [
        f"/identities/{user_id}",
        f"/identities/{group_id}",
        f"/changes/{change.group(1)}",
        "/reviews/q1?mine=0",
        "/identities?filter=" + 'userName sw "eve"',
        "/groups?filter=" + 'displayName sw "admins"',
        "/changes?status=all&before=2030-01-01T00:00:00|x",
        "/audit?after=2000-01-01T00:00:00|0|0",
        "/findings?status=all&framework=csf:PR.AA-05&severity=medium&target=app",
        "/audit?verify=1&kind=console_sign_in&actor=ana&subject=session",
    ]
    for path in paths:
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text[-500:])
    held = client.get(f"/identities/{group_id}").text
    assert "Held memberships" in held and f'href="/console/changes/{change.group(1)}"' in held
    assert "The chain is intact" in client.get("/audit?verify=1").text


def test_every_page_answers_the_projects_errors_from_one_table(console: tuple[str, dict[str, str]]) -> None:
    """An unknown identity, change or campaign is the same 404 page whichever page met it (web/errors.py)."""
    base, passwords = console
    client = sign_in(base, "vic", passwords["vic"])
    for path, said in (
        ("/identities/no-such-id", "No identity no-such-id."),
        ("/changes/00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000"),
        ("/reviews/no-such-campaign", "no-such-campaign"),
    ):
        answer = client.get(path)
        assert answer.status_code == 404, (path, answer.text[-300:])
        assert "<h1>Not found</h1>" in answer.text and said in answer.text


def test_a_target_change_is_previewed_then_applied_or_held_past_the_breaker(
    console: tuple[str, dict[str, str]], hub_url: str
) -> None:
    """Issue 18: a configuration change shows its plan (the one ``target set --dry-run`` prints) before it is
    submitted; past the breaker's threshold it is held for a second person, as from the command line."""
    from urllib.parse import parse_qs, urlsplit

    from scimward.policy import PolicyGate, identity_store, policies
    from scimward.scim.resource import normalize
    from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
    from scimward.store.provisioning import TargetRepository
    from scimward.store.tables import changes, links
    from scimward.sync.secrets import SecretBox
    from scimward.sync.targets import TargetConfig
    from tests.console_world import POLICY  # the breaker: at most 2 deprovisionings

    async def prepare() -> None:
        db = Database(hub_url)
        try:
            await policies.apply(db, POLICY, "tests")
            target = await TargetRepository(db).add(
                "app", "http://127.0.0.1:9/scim/v2", SecretBox().encrypt("t"), TargetConfig().to_json()
            )
            store = identity_store(db, PolicyGate(db, refresh_seconds=0))
            for n in range(3):  # three accounts on the target, as pushes would have left them
                body = {"schemas": [USER_SCHEMA], "userName": f"u{n}@example.com"}
                user = await store.create(USER_TYPE, normalize(body, USER_TYPE), "scim:okta", "okta")
                async with db.write() as conn:
                    await conn.execute(
                        links.insert().values(
                            target_id=target.id,
                            identity_id=user.id,
                            resource_type="User",
                            remote_id=f"r{n}",
                            status="active",
                            acknowledged=utcnow(),
                        )
                    )
        finally:
            await db.dispose()

    async def stored() -> tuple[dict[str, object], set[tuple[str, str, str, str]]]:
        db = Database(hub_url)
        try:
            c = changes.c
            async with db.read() as conn:
                made = {
                    (str(r[0]), str(r[1]), str(r[2]), str(r[3]))
                    for r in await conn.execute(
                        sa.select(c.source, c.actor, c.status, c.identity_id).where(c.resource_type == "Target")
                    )
                }
            return (await TargetRepository(db).by_name("app")).config, made
        finally:
            await db.dispose()

    def notice(answer: httpx.Response) -> str:
        assert answer.status_code == 303, answer.text[-300:]
        return parse_qs(urlsplit(answer.headers["location"]).query)["notice"][0]

    asyncio.run(prepare())
    base, _ = console
    root = sign_in(base, "root", asyncio.run(_accounts(hub_url, ("root", "admin")))["root"])
    form = {"csrf": csrf(root), "push_groups": "on", "deprovision": "deactivate", "tombstone_days": "30"}
    assert "Preview the change" in root.get("/targets/app").text
    bad = root.post("/targets/app/preview", data={**form, "scope": "userName eq"})
    assert bad.status_code == 400 and "scope" in bad.text

    keep_one = root.post("/targets/app/preview", data={**form, "scope": 'userName eq "u0@example.com"'})
    assert keep_one.status_code == 200 and "Apply the change" in keep_one.text
    assert re.search(r"<dt>Deprovision</dt><dd>2 ", keep_one.text), keep_one.text
    carried = re.search(r'name="changes" value="([^"]+)"', keep_one.text)
    assert carried
    changes_json = html.unescape(carried.group(1))
    assert (
        notice(root.post("/targets/app/apply", data={"csrf": form["csrf"], "changes": changes_json}))
        == "Target app changed."
    )
    config, made = asyncio.run(stored())
    assert config["scope"] == 'userName eq "u0@example.com"'
    assert ("console", "root", "applied", "app") in made

    everyone = root.post("/targets/app/preview", data={**form, "scope": 'userName eq "nobody"'})
    assert "holds it for a second person" in everyone.text and "Submit for approval" in everyone.text
    carried = re.search(r'name="changes" value="([^"]+)"', everyone.text)
    assert carried
    said = notice(
        root.post("/targets/app/apply", data={"csrf": form["csrf"], "changes": html.unescape(carried.group(1))})
    )
    assert said.startswith("held for approval as change ") and "deprovision 3 of 3 accounts" in said
    config, made = asyncio.run(stored())
    assert config["scope"] == 'userName eq "u0@example.com"'  # nothing changed yet
    assert ("console", "root", "pending", "app") in made
    assert ("root", "target:app") in events(hub_url, "console_action")


def test_changes_and_the_trail_are_paged_by_keyset_both_ways(hub_url: str) -> None:
    """The 2,000th page as fast as the first (bench/console_pages.py): Older and Newer by key, not offset,
    each change and event exactly once."""
    from scimward.policy import identity_store
    from scimward.scim.resource import normalize
    from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
    from scimward.store.governance import Keyset, audit_page, changes_page

    async def walk() -> tuple[list[str], list[str], list[str], list[str]]:
        db = Database(hub_url)
        try:
            store = identity_store(db)
            for n in range(5):
                await store.create(
                    USER_TYPE,
                    normalize({"schemas": [USER_SCHEMA], "userName": f"k{n}@example.com"}, USER_TYPE),
                    "scim:okta",
                    "okta",
                )

            async def pages(read: object, key: object) -> tuple[list[str], list[str]]:
                """Older to the end, then Newer back to the start: the keys in each walk's order."""
                page: Keyset = await read()  # type: ignore[operator]
                seen = [key(r) for r in page.rows]  # type: ignore[operator]
                while page.older is not None:
                    page = await read(before=page.older)  # type: ignore[operator]
                    seen += [key(r) for r in page.rows]  # type: ignore[operator]
                back = [key(r) for r in page.rows]  # type: ignore[operator]
                while page.newer is not None:
                    page = await read(after=page.newer)  # type: ignore[operator]
                    back = [key(r) for r in page.rows] + back  # type: ignore[operator]
                return seen, back

            changes_seen, changes_back = await pages(
                lambda before=None, after=None: changes_page(db, "applied", before=before, after=after, limit=2),
                lambda c: c.id,
            )
            events_seen, events_back = await pages(
                lambda before=None, after=None: audit_page(db, kind="change", before=before, after=after, limit=2),
                lambda e: f"{e.lane}:{e.seq}",
            )
            return changes_seen, changes_back, events_seen, events_back
        finally:
            await db.dispose()

    changes_seen, changes_back, events_seen, events_back = asyncio.run(walk())
    assert len(changes_seen) == len(set(changes_seen)) == 5 and changes_back == changes_seen
    assert len(events_seen) == len(set(events_seen)) == 5 and events_back == events_seen


def test_a_contains_search_is_paged_and_counted_only_where_an_index_counts_it(
    console: tuple[str, dict[str, str]], hub_url: str
) -> None:
    """Issue 18: ``co`` on 100,000 identities. PostgreSQL counts it in its trigram index; SQLite has no
    index for it, so the page stops at its 25 rows and says there are more instead of a total."""
    from scimward.policy import PolicyGate, identity_store
    from scimward.scim.resource import normalize
    from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE

    async def prepare() -> None:
        db = Database(hub_url)
        try:
            store = identity_store(db, PolicyGate(db, refresh_seconds=0))
            for n in range(30):
                name = f"{'hanna' if n % 10 else 'otto'}{n:02d}@example.com"  # 27 hannas, 3 ottos
                await store.create(USER_TYPE, normalize({"schemas": [USER_SCHEMA], "userName": name}, USER_TYPE))
        finally:
            await db.dispose()

    asyncio.run(prepare())
    base, passwords = console
    client = sign_in(base, "vic", passwords["vic"])
    first = client.get("/identities", params={"filter": 'userName co "ANN"'})
    assert first.status_code == 200 and 'role="alert"' not in first.text
    shown = re.findall(r"hanna\d\d@example\.com", first.text)
    assert len(set(shown)) == 25 and "otto" not in first.text
    following = re.search(r'href="\?([^"]+)" rel="next"', first.text)
    assert following
    second = client.get("/identities?" + html.unescape(following.group(1)))
    rest = set(re.findall(r"hanna\d\d@example\.com", second.text))
    assert len(rest) == 2 and not rest & set(shown)
    if hub_url.startswith("sqlite"):
        assert "25 on this page, and more (a contains search is not counted)" in first.text
        assert "2 on this page (a contains search is not counted)" in second.text
    else:
        assert "27 in all" in first.text and "27 in all" in second.text
    assert "30 in all" in client.get("/identities", params={"filter": 'userName sw "h" or userName sw "o"'}).text
