"""A hub with its console for browser tests: a downstream scimward, an OpenID Connect provider, people.

Everything is real and on loopback: the hub (``scimward serve``'s app, its propagate worker
running) with a target that is a second scimward, and ``oidc-provider-mock`` as the organisation's
identity provider. The hub holds a membership change for approval (the policy's
``admins-need-approval`` rule), made by the IdP's actor, so someone else must decide it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from oidc_provider_mock import User, run_server_in_thread

from scimward.api.settings import Settings
from scimward.policy import Approvals, PolicyGate, identity_store, policies
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.auth import ConsoleAccounts
from scimward.store.database import Database, upgrade
from scimward.store.provisioning import TargetRepository
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
"""
GROUP = "admins-ops"
#: People at the identity provider: one the role mapping makes an approver, one it grants nothing.
IDP_PEOPLE = [User(sub="olive", claims={"email": "olive@example.com", "groups": ["idm-approvers"]}),
              User(sub="nora", claims={"email": "nora@example.com", "groups": ["sales"]})]


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
    ada: str

    def approvals(self, work: Callable[[Approvals], Awaitable[T]]) -> T:
        async def go() -> T:
            db = Database(self.hub_url)
            try:
                return await work(Approvals(db, identity_store(db).direct))
            finally:
                await db.dispose()

        return run(lambda: go())


async def _prepare(hub_url: str, downstream: Peer) -> tuple[dict[str, str], str, str]:
    db = Database(hub_url)
    try:
        await policies.apply(db, POLICY, "tests")
        await TargetRepository(db).add("app", downstream.base_url, SecretBox().encrypt(downstream.token),
                                       TargetConfig().to_json())
        store = identity_store(db, PolicyGate(db, refresh_seconds=0))
        users = {}
        for name, display in (("ada@example.com", "Ada Lovelace"), ("bob@example.com", "Bob Hopper")):
            body = {"schemas": [USER_SCHEMA], "userName": name, "displayName": display,
                    "emails": [{"value": name, "primary": True}], "active": True}
            users[name] = (await store.create(USER_TYPE, normalize(body, USER_TYPE), "scim:okta", "okta")).id
        group = await store.create(GROUP_TYPE, normalize({"schemas": [GROUP_SCHEMA], "displayName": GROUP,
                                                          "members": []}, GROUP_TYPE), "scim:okta", "okta")
        await store.patch(GROUP_TYPE, group.id, {"schemas": [PATCH_OP_SCHEMA], "Operations": [
            {"op": "add", "path": "members", "value": [{"value": users["ada@example.com"]}]}]},
            source="scim:okta", actor="okta")
        pending = await Approvals(db, store.direct).changes("pending")
        assert len(pending) == 1, pending
        accounts = ConsoleAccounts(db)
        passwords = {name: await accounts.create(name, role, "tests")
                     for name, role in (("root", "admin"), ("vera", "viewer"))}
        return passwords, pending[0].id, users["ada@example.com"]
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
        passwords, change_id, ada = run(lambda: _prepare(hub_url, downstream))
        settings = Settings(database_url=hub_url, console_oidc_issuer=f"http://127.0.0.1:{idp.server_port}",
                            console_oidc_client_id="scimward-console", console_oidc_client_secret="console-secret",
                            console_oidc_roles="groups=idm-approvers:approver")
        hub = stack.enter_context(ServerThread(settings))
        yield World(f"http://127.0.0.1:{hub.port}/console", hub_url, downstream, passwords, change_id, ada)


def wait_for(check: Callable[[], Any], seconds: float = 30) -> Any:
    """Poll ``check`` until it returns something true (what a worker does takes its own time)."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)
