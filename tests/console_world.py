"""A hub with its console for browser tests: a downstream scimward, an OpenID Connect provider, people.

Everything is real and on loopback: the hub (``scimward serve``'s app, its propagate worker
running) with a target that is a second scimward, and ``oidc-provider-mock`` as the organisation's
identity provider. The hub holds a membership change for approval (the policy's
``admins-need-approval`` rule), made by the IdP's actor, so someone else must decide it, and an
access review of a group whose reviewer is one of the console's people.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from oidc_provider_mock import User, run_server_in_thread

from scimward.api.settings import Settings
from scimward.governance.nhi import nhi_round, user_types
from scimward.governance.nhi.registry import NhiView, Registry
from scimward.governance.reviews import Reviews
from scimward.policy import Approvals, PolicyGate, identity_store, policies
from scimward.scim.ast import AttrPath, Compare
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.auth import ConsoleAccounts
from scimward.store.database import Database, upgrade
from scimward.store.identity import SearchQuery
from scimward.store.provisioning import TargetRepository
from scimward.store.tables import changes
from scimward.sync.secrets import SecretBox
from scimward.sync.targets import TargetConfig
from tests.conftest import Peer, ServerThread, issue_token

T = TypeVar("T")

POLICY = """
rules:
  - name: admins-need-approval
    when: change.type == "Group" && change.after.displayName.startsWith("admins") && size(change.members_added) > 0
    action: hold
    reason: administrative access
breaker:
  window: 10m
  max_count: 2
  max_percent: 100
"""
GROUP = "admins-ops"
#: A second held membership that no test decides: the refusals are tried on it, in any order.
KEPT_GROUP = "admins-sec"
#: A group under an access review whose reviewer is a console person.
REVIEWED = "engineering"
CAMPAIGN = "q4-engineering"
REVIEWER = "rita@example.com"
#: Non-human identities: an Agent owned by ada, and one that never expires (a finding says so).
NHI = "deploy-bot"
UNEXPIRING_NHI = "ticket-agent"
#: People at the identity provider: one the role mapping makes an approver, one it grants nothing.
IDP_PEOPLE = [
    User(sub="olive", claims={"email": "olive@example.com", "groups": ["idm-approvers"]}),
    User(sub="nora", claims={"email": "nora@example.com", "groups": ["sales"]}),
]


def elsewhere(work: Callable[[], T]) -> T:
    """Run ``work`` on a thread of its own: Playwright's sync API owns this thread's event loop."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()


def run(work: Callable[[], Awaitable[T]]) -> T:
    async def go() -> T:
        return await work()

    return elsewhere(lambda: asyncio.run(go()))


@dataclass
class World:
    console: str
    hub_url: str
    downstream: Peer
    passwords: dict[str, str]
    held_change: str
    kept_change: str
    ada: str

    def deactivate(self, user_names: list[str]) -> None:
        """The IdP deactivates these users (through the gate, as its SCIM requests would)."""

        async def go() -> None:
            db = Database(self.hub_url)
            try:
                store = identity_store(db, PolicyGate(db, refresh_seconds=0))
                for name in user_names:
                    found = await store.search(
                        USER_TYPE, SearchQuery(filter=Compare(AttrPath(None, "userName"), "eq", name), count=1)
                    )
                    await store.patch(
                        USER_TYPE,
                        found.items[0].id,
                        {
                            "schemas": [PATCH_OP_SCHEMA],
                            "Operations": [{"op": "replace", "path": "active", "value": False}],
                        },
                        source="scim:okta",
                        actor="okta",
                    )
            finally:
                await db.dispose()

        run(lambda: go())

    def create_users(self, user_names: list[str]) -> None:
        async def go() -> None:
            db = Database(self.hub_url)
            try:
                store = identity_store(db, PolicyGate(db, refresh_seconds=0))
                for name in user_names:
                    body = {"schemas": [USER_SCHEMA], "userName": name, "active": True}
                    await store.create(USER_TYPE, normalize(body, USER_TYPE), "scim:okta", "okta")
            finally:
                await db.dispose()

        run(lambda: go())

    def nhi(self, name: str) -> NhiView:
        async def go() -> NhiView:
            db = Database(self.hub_url)
            try:
                return await Registry(db, user_types("ServiceAccount")).find(name)
            finally:
                await db.dispose()

        return run(lambda: go())

    def change_sources(self, identity_id: str) -> set[tuple[str, str]]:
        """(source, actor) of every change of the identity."""

        async def go() -> set[tuple[str, str]]:
            db = Database(self.hub_url)
            try:
                async with db.read() as conn:
                    c = changes.c
                    return {
                        (str(s), str(a))
                        for s, a in await conn.execute(sa.select(c.source, c.actor).where(c.identity_id == identity_id))
                    }
            finally:
                await db.dispose()

        return run(lambda: go())

    def approvals(self, work: Callable[[Approvals], Awaitable[T]]) -> T:
        async def go() -> T:
            db = Database(self.hub_url)
            try:
                return await work(Approvals(db, identity_store(db).direct))
            finally:
                await db.dispose()

        return run(lambda: go())


async def _prepare(hub_url: str, downstream: Peer) -> tuple[dict[str, str], str, str, str]:
    db = Database(hub_url)
    try:
        await policies.apply(db, POLICY, "tests")
        await TargetRepository(db).add(
            "app", downstream.base_url, SecretBox().encrypt(downstream.token), TargetConfig().to_json()
        )
        store = identity_store(db, PolicyGate(db, refresh_seconds=0))
        users = {}
        for name, display in (
            ("ada@example.com", "Ada Lovelace"),
            ("bob@example.com", "Bob Hopper"),
            (REVIEWER, "Rita Levi"),
        ):
            body = {
                "schemas": [USER_SCHEMA],
                "userName": name,
                "displayName": display,
                "emails": [{"value": name, "primary": True}],
                "active": True,
            }
            users[name] = (await store.create(USER_TYPE, normalize(body, USER_TYPE), "scim:okta", "okta")).id
        held = []
        for name, member in ((GROUP, "ada@example.com"), (KEPT_GROUP, "bob@example.com")):
            group = await store.create(
                GROUP_TYPE,
                normalize({"schemas": [GROUP_SCHEMA], "displayName": name, "members": []}, GROUP_TYPE),
                "scim:okta",
                "okta",
            )
            await store.patch(
                GROUP_TYPE,
                group.id,
                {
                    "schemas": [PATCH_OP_SCHEMA],
                    "Operations": [{"op": "add", "path": "members", "value": [{"value": users[member]}]}],
                },
                source="scim:okta",
                actor="okta",
            )
            held.append((await Approvals(db, store.direct).changes("pending", group.id))[0].id)
        team = [{"value": users["ada@example.com"]}, {"value": users["bob@example.com"]}]
        await store.create(
            GROUP_TYPE,
            normalize({"schemas": [GROUP_SCHEMA], "displayName": REVIEWED, "members": team}, GROUP_TYPE),
            "scim:okta",
            "okta",
        )
        await Reviews(db, store).start(
            CAMPAIGN, groups=f'displayName eq "{REVIEWED}"', reviewer=REVIEWER, actor="tests"
        )
        registry = Registry(db, user_types("ServiceAccount"), store)
        await registry.add(
            NHI,
            "api_key",
            ["ada@example.com"],
            purpose="deploys the web shop",
            expires_in=timedelta(days=20),
            environment="prod",
            actor="okta",
        )
        await registry.add(
            UNEXPIRING_NHI,
            "ai_agent",
            ["bob@example.com"],
            purpose="answers tickets",
            expires_in=None,
            environment="prod",
            actor="okta",
        )
        await nhi_round(db, store, user_types("ServiceAccount"))  # its findings: one has no expiry
        accounts = ConsoleAccounts(db)
        passwords = {
            name: await accounts.create(name, role, "tests")
            for name, role in (("root", "admin"), ("vera", "viewer"), (REVIEWER, "reviewer"))
        }
        return passwords, held[0], held[1], users["ada@example.com"]
    finally:
        await db.dispose()


@contextmanager
def console_world(root: Path) -> Iterator[World]:
    with ExitStack() as stack:
        down_url = f"sqlite:///{root / 'downstream.db'}"
        elsewhere(lambda: upgrade(down_url))
        token = elsewhere(lambda: issue_token(down_url, "hub"))
        down = stack.enter_context(ServerThread(Settings(database_url=down_url, run_worker=False)))
        downstream = Peer(f"http://127.0.0.1:{down.port}/scim/v2", token)
        idp = stack.enter_context(run_server_in_thread(user_claims=IDP_PEOPLE))
        hub_url = f"sqlite:///{root / 'hub.db'}"
        elsewhere(lambda: upgrade(hub_url))
        passwords, change_id, kept_id, ada = run(lambda: _prepare(hub_url, downstream))
        settings = Settings(
            database_url=hub_url,
            console_oidc_issuer=f"http://127.0.0.1:{idp.server_port}",
            console_oidc_client_id="scimward-console",
            console_oidc_client_secret="console-secret",
            console_oidc_roles="groups=idm-approvers:approver",
        )
        hub = stack.enter_context(ServerThread(settings))
        yield World(f"http://127.0.0.1:{hub.port}/console", hub_url, downstream, passwords, change_id, kept_id, ada)


def wait_for(check: Callable[[], Any], seconds: float = 30) -> Any:
    """Poll ``check`` until it returns something true (what a worker does takes its own time)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)
