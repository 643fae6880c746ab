#!/usr/bin/env python3
"""Leaver-cascade benchmark (issue 14): one owner with N NHIs, deprovisioned in one target.

    .venv/bin/python bench/nhi_cascade.py                  # N=1,000, the hub on PostgreSQL
    .venv/bin/python bench/nhi_cascade.py --nhis 200 --hub sqlite

A fresh hub database; a second scimward (``--no-worker``, SQLite) on 127.0.0.1 as the target, taking
NHIs; N Agents owned by one User, pushed to the target first (not timed). Then the owner is deactivated
through the hub's store (what a SCIM PATCH runs) and the clock runs until the target holds all N
Agents inactive: the NHI round (each disable a change through the gate, source nhi:cascade) and the
propagator's drain to the target. The breaker is switched off for the run: a thousand deprovisionings
would trip it (that is what it is for; tests/test_nhi_lifecycle.py shows it holding a cascade).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import sqlalchemy as sa
import uvicorn

from scimward.api.app import create_app
from scimward.governance.nhi import nhi_round
from scimward.policy import identity_store, policies
from scimward.scim.resource import normalize
from scimward.scim.resource_types import AGENT_TYPE, USER_SCHEMA, USER_TYPE
from scimward.settings import Settings
from scimward.store.auth import TokenStore
from scimward.store.database import Database, upgrade
from scimward.store.provisioning.targets import TargetRepository
from scimward.sync.propagate import Propagator
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.targets import TargetConfig

AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"
NHI = "urn:scimward:params:scim:schemas:extension:nhi:2.0:Identity"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
POLICY = "breaker: false\nnhi:\n  owner_leaves: disable\n  grace: 0\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str) -> tuple[uvicorn.Server, int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(Settings(database_url=url, run_worker=False)),
                                           host="127.0.0.1", port=port, log_level="warning", access_log=False))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return server, port


def inactive_on_target(base: str, token: str) -> int:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        return int(client.get("/Agents", params={"filter": "active eq false", "count": 0}).json()["totalResults"])


async def bench(hub_url: str, nhis: int, target_url: str, target_token: str) -> dict[str, float]:
    database = Database(hub_url)
    secrets = SecretBox(key=generate_key())
    store = identity_store(database)
    propagator = Propagator(database, secrets=secrets, batch=200)
    try:
        await policies.apply(database, POLICY, "bench")
        await TargetRepository(database).add("target", target_url, secrets.encrypt(target_token),
                                             TargetConfig(push_nhis=True).to_json())
        owner = (await store.create(USER_TYPE, normalize({"schemas": [USER_SCHEMA], "userName": "owner",
                                                          "active": True}, USER_TYPE), source="bench")).id
        for n in range(nhis):
            await store.create(AGENT_TYPE, normalize({
                "schemas": [AGENT, NHI], "name": f"nhi-{n:05d}", "active": True,
                "owners": [{"value": owner, "type": "User"}], NHI: {"kind": "api_key"}}, AGENT_TYPE), source="bench")
        await propagator.drain()
        await nhi_round(database, store, frozenset(), findings=False)  # first sight, as the worker would have
        started = time.perf_counter()
        await store.patch(USER_TYPE, owner, {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]}, source="bench")
        result = await nhi_round(database, store, frozenset(), findings=False)
        decided = time.perf_counter()
        await propagator.drain()
        pushed = time.perf_counter()
        assert len(result.disabled) == nhis, len(result.disabled)
        return {"cascade_s": decided - started, "push_s": pushed - decided, "total_s": pushed - started}
    finally:
        await propagator.close()
        await database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nhis", type=int, default=1000)
    parser.add_argument("--hub", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        target_db = f"sqlite:///{Path(tmp) / 'target.db'}"
        upgrade(target_db)
        target_token = asyncio.run(_token(target_db))
        name = f"nhi_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT") if args.hub == "postgresql" else None
        if admin is not None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            hub_url = sa.make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
        else:
            hub_url = f"sqlite:///{Path(tmp) / 'hub.db'}"
        server, port = serve(target_db)
        try:
            upgrade(hub_url)
            base = f"http://127.0.0.1:{port}/scim/v2"
            figures = asyncio.run(bench(hub_url, args.nhis, base, target_token))
            assert inactive_on_target(base, target_token) == args.nhis
            print(f"{args.nhis} NHIs of one owner on {args.hub}: cascade {figures['cascade_s']:.2f} s, "
                  f"push {figures['push_s']:.2f} s, total {figures['total_s']:.2f} s")
        finally:
            server.should_exit = True
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                admin.dispose()


async def _token(url: str) -> str:
    database = Database(url)
    try:
        return await TokenStore(database).create("hub", created_by="bench", scopes="scim")
    finally:
        await database.dispose()


if __name__ == "__main__":
    main()
