#!/usr/bin/env python3
"""The console's pages on 100,000 identities (issue 18: no page over 200 ms on the benchmark data set).

    .venv/bin/python bench/console_pages.py [--dialect postgresql|sqlite] [--users 100000] [--repeat 20]
                                            [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                                            [--out bench/results/console-pages.jsonl] [--keep]

Seeds a fresh hub through its gated store, as identity providers and admins would have filled it:
``--users`` Users (1 % of them service accounts, each managed by a person), groups of 100 members
holding every user, 2 % of the users' count in Agents (NHIs, owned, half of them expiring) with the
NHI round's findings, 50 membership changes a policy rule holds for approval, one access-review
campaign, and a target with an acknowledged account for every user and group (the links a
propagation would have left). Every one of those writes is a change with its audit event, so the
changes and the audit trail are as long as the hub is big. On PostgreSQL the users' and Agents'
creates run as the store builds them, by one ``executemany`` per batch in one transaction
(``create_all``; ``bench/console_seed_check.py`` compares the rows with a one-by-one seed's): 100,000
users seed in about two minutes instead of twelve. The seed ends as autovacuum would (``settle``).

Then serves the hub with ``scimward serve --no-worker`` (pinned to CPU 1 with taskset when there are
two or more; this client on CPU 0), signs in over the console's own form, and requests each page
``--repeat`` times in a row after two warm-ups. Per page it prints the wall time of the request
(p50 and p95, milliseconds), the server's CPU time per request (its ``utime + stime`` from /proc
over those requests) and, on PostgreSQL, the CPU time of the database backends serving it, with
the load average, one JSON line each. On a loaded machine the wall times wait for a core; the CPU
times do not. docs/benchmarks.md has the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa

from scimward.governance.nhi import nhi_round, user_types
from scimward.governance.reviews import Reviews
from scimward.policy import identity_store, policies
from scimward.policy.gate import PolicyGate
from scimward.scim.agents import AGENT_SCHEMA, NHI_SCHEMA
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import (
    AGENT_TYPE,
    ENTERPRISE_USER_SCHEMA,
    GROUP_SCHEMA,
    GROUP_TYPE,
    USER_SCHEMA,
    USER_TYPE,
)
from scimward.scim.schema import ResourceType
from scimward.store.auth import ConsoleAccounts
from scimward.store.database import Database, upgrade
from scimward.store.identity import IdentityStore
from scimward.store.identity import _fused as fused
from scimward.store.provisioning import TargetRepository
from scimward.store.tables import identities, links
from scimward.store.timeutil import utcnow
from scimward.sync.secrets import SecretBox, generate_key
from scimward.sync.targets import TargetConfig

SCIMWARD = str(Path(sys.executable).parent / "scimward")
POLICY = """
rules:
  - name: admins-need-approval
    when: change.type == "Group" && change.after.displayName.startsWith("admins") && size(change.members_added) > 0
    action: hold
    reason: administrative access
"""
GROUP_SIZE = 100
WRITERS = 64
HELD = 50
TARGET_MS = 200


async def _gather_in_batches(work: list[Any]) -> list[Any]:
    done: list[Any] = []
    for start in range(0, len(work), WRITERS):
        done += await asyncio.gather(*work[start:start + WRITERS])
    return done


async def create_all(store: IdentityStore, rt: ResourceType, docs: list[dict[str, Any]], *, source: str,
                     actor: str) -> list[str]:
    """Create ``docs``, each as ``store.create`` would, in their order; their ids.

    On PostgreSQL ``store.create`` writes an identity without members that the gate allows without
    the database as one statement in autocommit (``store.identity._fused``): one commit, one WAL
    flush, per identity. Here the store builds each create's statement and parameters itself (the
    writer's own code, so the rows are those it writes) while its ``fetch`` only keeps them, and
    they then run by one ``executemany`` in one transaction: the same statements, in the same order,
    one commit. A create that would not take the fused path goes the store's locking path as usual.
    On SQLite every create goes through the store (its writers share a group commit already).
    """
    if not store.direct.postgres:
        return [str(stored.id) for stored in await _gather_in_batches(
            [store.create(rt, doc, source=source, actor=actor) for doc in docs])]
    kept: list[dict[str, Any]] = []

    async def keep(statement: Any, params: dict[str, Any]) -> list[Any]:
        assert statement is fused.insert_row(), statement  # the only statement a fused create runs
        kept.append(params)
        return [(1,)]

    assert isinstance(store.gate, PolicyGate)
    async with store.direct.transaction() as tx:  # so that the first create finds the policy read already
        await store.gate.ensure_fresh(tx)
    store.direct.fetch = keep  # type: ignore[method-assign]
    try:
        ids = [(await store.create(rt, doc, source=source, actor=actor)).id for doc in docs]
    finally:
        del store.direct.fetch
    async with store.direct.transaction() as tx:
        await tx.run(fused.insert_row(), kept)
    if len(kept) < len(docs):
        print(f"  {len(docs) - len(kept)} of {len(docs)} {rt.name} creates took the locking path", file=sys.stderr)
    return ids


async def settle(db: Database) -> None:
    """What autovacuum would have done after such a load: on PostgreSQL ``VACUUM (ANALYZE)``, the
    planner's statistics and the visibility map (without it an index-only scan still reads every
    row's heap page; this machine's test server runs with ``autovacuum = off``); on SQLite ``ANALYZE``."""
    if db.dialect == "postgresql":
        async with db.engine.connect() as conn:  # VACUUM cannot run inside a transaction
            await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(sa.text("VACUUM (ANALYZE)"))
        return
    async with db.write() as conn:
        await conn.execute(sa.text("ANALYZE"))


async def seed(url: str, users: int, secret_key: str) -> dict[str, str]:
    """Fill the hub; the ids the pages are asked about."""
    db = Database(url)
    # The policy is applied first and changes no more: the gate need not look for a newer one every second.
    store = identity_store(db, PolicyGate(db, refresh_seconds=24 * 3600))
    try:
        await policies.apply(db, POLICY, "bench")

        def user(n: int) -> dict[str, Any]:
            name = f"user{n:06d}@example.com"
            body: dict[str, Any] = {"schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": name,
                                    "displayName": f"User {n}", "active": True,
                                    "emails": [{"value": name, "type": "work", "primary": True}],
                                    ENTERPRISE_USER_SCHEMA: {"department": f"dept-{n % 50}"}}
            if n % 100 == 99:  # a service account, managed by the person before it
                body.update(userName=f"svc-{n:06d}", userType="ServiceAccount")
            return normalize(body, USER_TYPE)

        started = time.perf_counter()
        ids: list[str] = []
        for start in range(0, users, 5000):
            ids += await create_all(store, USER_TYPE, [user(n) for n in range(start, min(start + 5000, users))],
                                    source="scim:okta", actor="okta")
            print(f"  users: {len(ids)} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        for n in range(99, users, 100):  # the manager as a PATCH, as an IdP sends it once both exist
            await store.patch(USER_TYPE, ids[n], {"schemas": [PATCH_OP_SCHEMA], "Operations": [
                {"op": "add", "path": f"{ENTERPRISE_USER_SCHEMA}:manager", "value": {"value": ids[n - 1]}}]},
                source="scim:okta", actor="okta")

        async def group(g: int) -> str:
            members = [{"value": i} for i in ids[g * GROUP_SIZE:(g + 1) * GROUP_SIZE]]
            body = {"schemas": [GROUP_SCHEMA], "displayName": f"group-{g:05d}", "members": members}
            return (await store.create(GROUP_TYPE, normalize(body, GROUP_TYPE), source="scim:okta", actor="okta")).id

        groups = await _gather_in_batches([group(g) for g in range(-(-users // GROUP_SIZE))])
        print(f"  groups: {len(groups)} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)

        def agent(n: int) -> dict[str, Any]:
            ext: dict[str, Any] = {"kind": ("api_key", "ai_agent", "workload")[n % 3], "purpose": "bench",
                                   "environment": "prod"}
            if n % 2:
                ext["expires"] = (utcnow() + timedelta(days=n % 120)).replace(microsecond=0).isoformat() + "Z"
            body = {"schemas": [AGENT_SCHEMA, NHI_SCHEMA], "name": f"agent-{n:05d}", "displayName": f"agent-{n:05d}",
                    "active": True, "agentType": ext["kind"], NHI_SCHEMA: ext,
                    "owners": [{"value": ids[(n * 37) % users], "type": "User"}]}
            return normalize(body, AGENT_TYPE)

        agents = await create_all(store, AGENT_TYPE, [agent(n) for n in range(max(users // 50, 1))],
                                  source="cli", actor="bench")
        held = []
        for n in range(HELD):
            body = {"schemas": [GROUP_SCHEMA], "displayName": f"admins-{n:02d}", "members": []}
            admins = await store.create(GROUP_TYPE, normalize(body, GROUP_TYPE), source="scim:okta", actor="okta")
            await store.patch(GROUP_TYPE, admins.id, {"schemas": [PATCH_OP_SCHEMA], "Operations": [
                {"op": "add", "path": "members", "value": [{"value": ids[n]}]}]}, source="scim:okta", actor="okta")
            held.append(admins.id)
        await nhi_round(db, store, user_types("ServiceAccount"))
        await Reviews(db, store).start("q4", groups='displayName eq "group-00000"', reviewer="user000001@example.com",
                                       actor="bench")
        target = await TargetRepository(db).add("app", "http://127.0.0.1:9/scim/v2",
                                                SecretBox(key=secret_key).encrypt("unused"), TargetConfig().to_json())
        now = utcnow()
        async with db.read() as conn:
            every = [(str(i), str(rt)) for i, rt in await conn.execute(
                sa.select(identities.c.id, identities.c.resource_type).where(identities.c.resource_type.in_(
                    ["User", "Group"])))]
        for start in range(0, len(every), 5000):
            async with db.write() as conn:
                await conn.execute(links.insert(), [
                    {"target_id": target.id, "identity_id": i, "resource_type": rt, "remote_id": str(uuid.uuid4()),
                     "status": "active", "acknowledged": now, "state": None} for i, rt in every[start:start + 5000]])
        password = await ConsoleAccounts(db).create("bench", "admin", "bench")
        await settle(db)
        print(f"  seeded ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
        return {"password": password, "user": ids[99 - 1], "service_account": ids[99], "group": groups[0],
                "held_group": held[0], "agent": agents[1]}
    finally:
        await db.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server(url: str, secret_key: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    pin = ["taskset", "-c", "1"] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else []
    env = {**os.environ, "SCIMWARD_SECRET_KEY": secret_key, "SCIMWARD_CONSOLE_SECURE_COOKIES": "0"}
    child = subprocess.Popen([*pin, SCIMWARD, "serve", "--port", str(port), "--database-url", url, "--no-worker",
                              "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or child.poll() is not None:
                raise SystemExit("the hub did not start")
            time.sleep(0.2)
        yield base + "/console", child.pid
    finally:
        child.terminate()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()


def cpu_seconds(pid: int) -> float:
    """utime + stime of the process, from /proc (clock ticks); 0 for one that has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class DatabaseCpu:
    """The CPU the PostgreSQL backends serving the hub's database used (they run on this machine): the
    database's share of a page, which the server's own CPU time leaves out. SQLite runs in the server."""

    def __init__(self, url: str) -> None:
        self.engine = sa.create_engine(url) if url.startswith("postgresql") else None
        self.name = sa.make_url(url).database

    def backends(self) -> dict[int, float]:
        if self.engine is None:
            return {}
        with self.engine.connect() as conn:
            pids = [int(p) for (p,) in conn.execute(sa.text(
                "SELECT pid FROM pg_stat_activity WHERE datname = :db AND pid <> pg_backend_pid()"),
                {"db": self.name})]
        return {pid: cpu_seconds(pid) for pid in pids}

    def since(self, before: dict[int, float]) -> float:
        now = self.backends()
        return sum(now[pid] - before.get(pid, 0.0) for pid in now)


def sign_in(base: str, password: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=60)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/sign-in").text)
    assert token
    answer = client.post("/sign-in", data={"csrf": token.group(1), "name": "bench", "password": password})
    assert answer.status_code == 303, answer.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert csrf
    return client, csrf.group(1)


def deep_keys(url: str, depth: int) -> tuple[str, str]:
    """The keyset keys of the change and the audit event ``depth`` rows from the newest (at most): the
    2,000th page of 50."""
    from scimward.store.database import create_sync_engine

    engine = create_sync_engine(url)
    try:
        with engine.connect() as conn:
            depth = min(depth, int(conn.execute(sa.text("SELECT count(*) FROM changes")).scalar_one()) - 1)
            created, change_id = conn.execute(sa.text(
                "SELECT created, id FROM changes ORDER BY created DESC, id DESC LIMIT 1 OFFSET :n"), {"n": depth}).one()
            moment, lane, seq = conn.execute(sa.text(
                "SELECT time, lane, seq FROM audit_events ORDER BY time DESC, lane DESC, seq DESC LIMIT 1 OFFSET :n"),
                {"n": depth}).one()
    finally:
        engine.dispose()
    return f"{_iso(created)}|{change_id}", f"{_iso(moment)}|{lane}|{seq}"


def _iso(moment: Any) -> str:
    """A stored time as the console's keys write it (SQLite keeps the text, PostgreSQL a datetime)."""
    return (moment if isinstance(moment, str) else moment.isoformat()).replace(" ", "T")


def pages(ids: dict[str, str], client: httpx.Client, url: str) -> list[tuple[str, str, dict[str, str] | None]]:
    """(label, path, form or None): every page of the console, and its heavier queries."""
    listing = client.get("/identities").text
    cursor = re.search(r'href="\?filter=&amp;cursor=([^"]+)" rel="next"', listing)
    assert cursor, "no next page on /identities"
    change = re.search(r'href="/console/changes/([0-9a-f-]{36})"', client.get("/changes").text)
    assert change
    deep_change, deep_event = (quote(key) for key in deep_keys(url, 100_000))
    return [
        ("dashboard", "/", None),
        ("identities", "/identities", None),
        ("identities page 2 (cursor)", "/identities?cursor=" + cursor.group(1).replace("&amp;", "&"), None),
        ("identities filter sw", '/identities?filter=userName sw "user0500"', None),
        ("identities filter co (a scan)", '/identities?filter=displayName co "User 9999"', None),
        ("identity (a user)", f"/identities/{ids['user']}", None),
        ("identity (a group of 100)", f"/identities/{ids['group']}", None),
        ("groups", "/groups", None),
        ("groups filter sw", '/groups?filter=displayName sw "group-009"', None),
        ("targets", "/targets", None),
        ("target", "/targets/app", None),
        ("target preview (plan over every account)", "/targets/app/preview",
         {"scope": 'userName sw "user01"', "push_groups": "on", "deprovision": "deactivate", "tombstone_days": "30"}),
        ("changes (pending)", "/changes", None),
        ("changes (all)", "/changes?status=all", None),
        ("changes (all, 100,000 back)", f"/changes?status=all&before={deep_change}", None),
        ("change", f"/changes/{change.group(1)}", None),
        ("reviews", "/reviews", None),
        ("review (100 items)", "/reviews/q4?mine=0", None),
        ("findings", "/findings", None),
        ("findings by framework", "/findings?framework=owasp-nhi:NHI7", None),
        ("NHIs (agents)", "/nhi", None),
        ("NHIs expiring in 30 days", "/nhi?show=agents&expiring=30", None),
        ("NHIs (service accounts)", "/nhi?show=accounts", None),
        ("NHI", f"/nhi/{ids['agent']}", None),
        ("audit", "/audit", None),
        ("audit (100,000 back)", f"/audit?before={deep_event}", None),
        ("audit by kind and actor", "/audit?kind=change&actor=okta", None),
        ("sessions", "/sessions", None),
    ]


def measure(client: httpx.Client, csrf: str, pid: int, db_cpu: DatabaseCpu, path: str,
            form: dict[str, str] | None, repeat: int) -> dict[str, Any]:
    def once() -> float:
        started = time.perf_counter()
        answer = client.post(path, data={"csrf": csrf, **form}) if form is not None else client.get(path)
        took = time.perf_counter() - started
        assert answer.status_code == 200, (path, answer.status_code, answer.text[-400:])
        assert form is not None or 'role="alert"' not in answer.text, (path, answer.text[-400:])  # a bad filter
        return took

    for _ in range(2):
        once()
    before, backends = cpu_seconds(pid), db_cpu.backends()
    walls = sorted(once() for _ in range(repeat))
    cpu = (cpu_seconds(pid) - before) / repeat
    database = db_cpu.since(backends) / repeat
    return {"p50_ms": round(statistics.median(walls) * 1000, 1),
            "p95_ms": round(walls[min(len(walls) - 1, int(len(walls) * 0.95))] * 1000, 1),
            "server_cpu_ms": round(cpu * 1000, 1), "database_cpu_ms": round(database * 1000, 1),
            "load": round(os.getloadavg()[0], 2)}


def database_for(dialect: str, pg_url: str, tmp: str) -> tuple[str, str | None]:
    if dialect == "sqlite":
        return f"sqlite:///{tmp}/hub.db", None
    name = f"scimward_bench_console_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return sa.make_url(pg_url).set(database=name).render_as_string(hide_password=False), name


def drop(pg_url: str, name: str) -> None:
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialect", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--out", type=Path, help="also append the JSON lines to this file")
    parser.add_argument("--keep", action="store_true", help="keep the database, and print its URL and ids")
    parser.add_argument("--url", help="measure this already seeded database (with --ids)")
    parser.add_argument("--ids", help="the JSON --keep printed")
    args = parser.parse_args()
    secret_key = generate_key()
    with tempfile.TemporaryDirectory() as tmp:
        name = None
        if args.url:
            url, ids = args.url, json.loads(args.ids)
            secret_key = ids["key"]
        else:
            url, name = database_for(args.dialect, args.pg_url, tmp if not args.keep else tempfile.mkdtemp())
            try:
                upgrade(url)
                started = time.perf_counter()
                ids = asyncio.run(seed(url, args.users, secret_key))
                ids["key"] = secret_key
                print(json.dumps({"phase": "seed", "dialect": args.dialect, "users": args.users,
                                  "seconds": round(time.perf_counter() - started)}), flush=True)
            except BaseException:
                if name:
                    drop(args.pg_url, name)
                raise
        try:
            if args.keep:
                print(json.dumps({"url": url, "ids": ids}), flush=True)
            run(url, ids, args)
        finally:
            if name and not args.keep:
                drop(args.pg_url, name)


def run(url: str, ids: dict[str, str], args: argparse.Namespace) -> None:
    machine = {"nproc": os.cpu_count(), "kernel": platform.release(), "load_before": os.getloadavg()}
    lines = []
    with server(url, ids["key"]) as (base, pid):
        client, csrf = sign_in(base, ids["password"])
        if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {0})
        db_cpu = DatabaseCpu(url)
        dialect = "postgresql" if url.startswith("postgresql") else "sqlite"
        for label, path, form in pages(ids, client, url):
            result = {"page": label, "path": path, "dialect": dialect, "users": args.users,
                      **measure(client, csrf, pid, db_cpu, path, form, args.repeat)}
            result["within_target"] = result["p95_ms"] <= TARGET_MS
            lines.append(result)
            print(json.dumps(result), flush=True)
    summary = {"summary": True, **machine, "load_after": os.getloadavg(),
               "pages_over_target": [r["page"] for r in lines if not r["within_target"]]}
    print(json.dumps(summary), flush=True)
    if args.out:
        with args.out.open("a", encoding="utf-8") as out:
            for line in (*lines, summary):
                out.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
