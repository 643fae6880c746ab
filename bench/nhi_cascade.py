#!/usr/bin/env python3
"""Leaver-cascade benchmark (issue 14): one owner with N NHIs, deprovisioned in one target.

    .venv/bin/python bench/nhi_cascade.py                  # N=1,000, the hub on PostgreSQL
    .venv/bin/python bench/nhi_cascade.py --nhis 200 --hub sqlite
    .venv/bin/python bench/nhi_cascade.py --profile cascade.html   # pyinstrument (pip install pyinstrument)

A fresh hub database; a second scimward (``--no-worker``, SQLite, its own process) on 127.0.0.1 as the target, taking
NHIs; N Agents owned by one User, pushed to the target first (not timed). Then the owner is deactivated
through the hub's store (what a SCIM PATCH runs) and the clock runs until the target holds all N
Agents inactive: the NHI round (each disable a change through the gate, source nhi:cascade) and the
propagator's drain to the target. The breaker is switched off for the run: a thousand deprovisionings
would trip it (that is what it is for; tests/test_nhi_lifecycle.py shows it holding a cascade).
Wall and CPU seconds (this process, the hub, alone: the target runs in its own) are printed with the
load average, as docs/benchmarks.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from scimward.governance.nhi import nhi_round
from scimward.policy import identity_store, policies
from scimward.scim.resource import normalize
from scimward.scim.resource_types import AGENT_TYPE, USER_SCHEMA, USER_TYPE
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


@contextlib.contextmanager
def serve(url: str) -> Iterator[tuple[int, int]]:
    """The target: ``scimward serve --no-worker`` in a process of its own, so its CPU is not the hub's."""
    port = free_port()
    env = {**os.environ, "SCIMWARD_DATABASE_URL": url, "SCIMWARD_LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "scimward", "serve", "--no-worker", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code < 500:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the target did not start")
            time.sleep(0.2)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(30)


def inactive_on_target(base: str, token: str) -> int:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        return int(client.get("/Agents", params={"filter": "active eq false", "count": 0}).json()["totalResults"])


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far (Linux: /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backends(admin: sa.Engine | None, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving ``database`` (on this machine), by pid."""
    if admin is None:
        return {}
    with admin.connect() as conn:
        pids = [int(row[0]) for row in conn.execute(
            sa.text("select pid from pg_stat_activity where datname = :d"), {"d": database})]
    found = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            found[pid] = cpu_of(pid)
    return found


class Clock:
    """Wall and CPU seconds of a phase: this process's (the hub, every thread), the target's, and the
    PostgreSQL backends' that serve the hub's database."""

    def __init__(self, target_pid: int, admin: sa.Engine | None, database: str) -> None:
        self.pid, self.admin, self.database = target_pid, admin, database
        self.start()

    def start(self) -> None:
        self.wall, self.cpu, self.target = time.perf_counter(), time.process_time(), cpu_of(self.pid)
        self.pg = backends(self.admin, self.database)

    def lap(self) -> tuple[float, float, float, float]:
        wall, cpu, target = time.perf_counter(), time.process_time(), cpu_of(self.pid)
        pg = backends(self.admin, self.database)
        used = sum(seconds - self.pg.get(pid, 0.0) for pid, seconds in pg.items())
        lapped = (wall - self.wall, cpu - self.cpu, target - self.target, used)
        self.wall, self.cpu, self.target, self.pg = wall, cpu, target, pg
        return lapped


async def bench(hub_url: str, nhis: int, target_url: str, target_token: str, clock: Clock,
                profile: str | None) -> dict[str, float]:
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
        profiler = _profiler(profile)
        clock.start()
        await store.patch(USER_TYPE, owner, {"schemas": [PATCH], "Operations": [
            {"op": "replace", "path": "active", "value": False}]}, source="bench")
        result = await nhi_round(database, store, frozenset(), findings=False)
        cascade = clock.lap()
        await propagator.drain()
        push = clock.lap()
        if profiler is not None:
            profiler.stop()
            Path(str(profile)).write_text(profiler.output_html())
            print(profiler.output_text(unicode=False, color=False, show_all=False))
        assert len(result.disabled) == nhis, len(result.disabled)
        return {"cascade_s": cascade[0], "cascade_cpu_s": cascade[1], "push_s": push[0], "push_cpu_s": push[1],
                "push_target_cpu_s": push[2], "cascade_pg_cpu_s": cascade[3], "push_pg_cpu_s": push[3],
                "total_s": cascade[0] + push[0], "total_cpu_s": cascade[1] + push[1]}
    finally:
        await propagator.close()
        await database.dispose()


def _profiler(path: str | None) -> Any:
    if path is None:
        return None
    from pyinstrument import Profiler  # only for --profile: not a dependency of the project

    profiler = Profiler(async_mode="enabled")
    profiler.start()
    return profiler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nhis", type=int, default=1000)
    parser.add_argument("--hub", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--profile", metavar="HTML", help="profile the timed part with pyinstrument")
    parser.add_argument("--out", metavar="JSONL", help="append the figures as one JSON line")
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
        try:
            with serve(target_db) as (port, pid):
                upgrade(hub_url)
                base = f"http://127.0.0.1:{port}/scim/v2"
                load = os.getloadavg()
                clock = Clock(pid, admin, name)
                figures = asyncio.run(bench(hub_url, args.nhis, base, target_token, clock, args.profile))
                assert inactive_on_target(base, target_token) == args.nhis
            print(f"{args.nhis} NHIs of one owner on {args.hub}: cascade {figures['cascade_s']:.2f} s "
                  f"(CPU {figures['cascade_cpu_s']:.2f} s; PostgreSQL's {figures['cascade_pg_cpu_s']:.2f} s), "
                  f"push {figures['push_s']:.2f} s "
                  f"(CPU {figures['push_cpu_s']:.2f} s; the target's {figures['push_target_cpu_s']:.2f} s, "
                  f"PostgreSQL's {figures['push_pg_cpu_s']:.2f} s), "
                  f"total {figures['total_s']:.2f} s "
                  f"(CPU {figures['total_cpu_s']:.2f} s); load average {load[0]:.1f} -> {os.getloadavg()[0]:.1f}")
            if args.out:
                with open(args.out, "a") as out:
                    out.write(json.dumps({"nhis": args.nhis, "hub": args.hub, **{k: round(v, 3) for k, v in
                                          figures.items()}, "load_before": load[0],
                                          "load_after": os.getloadavg()[0]}) + "\n")
        finally:
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
