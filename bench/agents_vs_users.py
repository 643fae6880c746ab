#!/usr/bin/env python3
"""GET /Agents/{id} and a filtered list of Agents against the same on Users (issue 14: within 10 %).

    .venv/bin/python bench/agents_vs_users.py                     # N=2,000 of each, the hub on PostgreSQL
    .venv/bin/python bench/agents_vs_users.py --identities 10000 --rounds 3

A fresh PostgreSQL database with N Users and N Agents (written through the gated store), one
``scimward serve --no-worker`` process on 127.0.0.1, and the unmodified load generator
(``bench/scimload.py --raw-get``, 8 connections) hammering, in turn and ``--rounds`` times over,
``/Users/{id}``, ``/Agents/{id}``, ``/Users?filter=userName eq "…"`` and ``/Agents?filter=name eq "…"``
(one identity in the middle of the N). Printed per operation: requests per second and the server's CPU
milliseconds per request (the figure that holds on a loaded machine), the best round of each, the
Agents' over the Users', and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import AGENT_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.auth import TokenStore
from scimward.store.database import Database, upgrade

HERE = Path(__file__).resolve().parent
AGENT = "urn:ietf:params:scim:schemas:core:2.0:Agent"


async def seed(url: str, n: int) -> tuple[str, str, str]:
    """N Users and N Agents; answers a token and the ids of the middle one of each."""
    database = Database(url)
    store = identity_store(database)
    try:
        users, agents = [], []
        for i in range(n):
            users.append((await store.create(USER_TYPE, normalize({
                "schemas": [USER_SCHEMA], "userName": f"user{i}", "displayName": f"User {i}", "active": True},
                USER_TYPE), source="bench")).id)
            agents.append((await store.create(AGENT_TYPE, normalize({
                "schemas": [AGENT], "name": f"agent{i}", "displayName": f"Agent {i}", "active": True,
                "agentType": "Assistant"}, AGENT_TYPE), source="bench")).id)
        token = await TokenStore(database).create("bench", created_by="bench", scopes="scim")
        return token, users[n // 2], agents[n // 2]
    finally:
        await database.dispose()


def serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SCIMWARD_DATABASE_URL": url, "SCIMWARD_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "scimward", "serve", "--no-worker", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


def hammer(base: str, token: str, path: str, pid: int, requests: int, seconds: float, out: Path) -> dict[str, Any]:
    subprocess.run([sys.executable, str(HERE / "scimload.py"), "--base-url", base, "--token", token,
                    "--raw-get", path, "--requests", str(requests), "--max-seconds", str(seconds),
                    "--server-pid", str(pid), "--label", path, "--out", str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    found: dict[str, Any] = next(r for r in reversed(lines) if r.get("op") == "raw_get" and r.get("label") == path)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--identities", type=int, default=2000, help="Users, and as many Agents")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--requests", type=int, default=20000, help="per operation and round")
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound per operation and round")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--port", type=int, default=8950)
    args = parser.parse_args()
    name = f"agents_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        token, user_id, agent_id = asyncio.run(seed(url, args.identities))
        middle = args.identities // 2
        paths = {"GET /Users/{id}": f"/Users/{user_id}", "GET /Agents/{id}": f"/Agents/{agent_id}",
                 "filter Users": "/Users?filter=" + urllib.parse.quote(f'userName eq "user{middle}"'),
                 "filter Agents": "/Agents?filter=" + urllib.parse.quote(f'name eq "agent{middle}"')}
        server = serve(url, args.port)
        best: dict[str, dict[str, Any]] = {}
        load = os.getloadavg()[0]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                for _round in range(args.rounds):
                    for label, path in paths.items():
                        found = hammer(f"http://127.0.0.1:{args.port}/scim/v2", token, path, server.pid,
                                       args.requests, args.seconds, Path(tmp) / "out.jsonl")
                        assert found["errors"] == 0, found
                        cpu_ms = found["server_cpu"] * found["wall_s"] / found["requests"] * 1000
                        record = {"rps": found["rps"], "cpu_ms": cpu_ms, "p50_ms": found["p50_ms"]}
                        if label not in best or record["cpu_ms"] < best[label]["cpu_ms"]:
                            best[label] = record
        finally:
            server.terminate()
            server.wait(30)
        print(f"N={args.identities:,} of each, best of {args.rounds} rounds; load average {load:.1f} -> "
              f"{os.getloadavg()[0]:.1f}")
        for label, record in best.items():
            print(f"  {label:18} {record['rps']:8.0f} req/s  {record['cpu_ms']:.3f} ms server CPU/request  "
                  f"p50 {record['p50_ms']:.2f} ms")
        for users, agents in (("GET /Users/{id}", "GET /Agents/{id}"), ("filter Users", "filter Agents")):
            print(f"  {agents} / {users}: CPU per request x{best[agents]['cpu_ms'] / best[users]['cpu_ms']:.2f}, "
                  f"req/s x{best[agents]['rps'] / best[users]['rps']:.2f}")
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
