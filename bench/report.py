#!/usr/bin/env python3
"""Benchmark ``scimward report`` on an estate of N users, G groups and T targets (issue 16: 100,000
users, 1,000 groups, 5 targets in <= 30 s).

    .venv/bin/python bench/report.py --users 100000 --groups 1000 --targets 5 --dialect sqlite
    .venv/bin/python bench/report.py --users 100000 --groups 1000 --targets 5 --dialect postgresql

It makes a fresh database (``scimward db upgrade``) and seeds it with the store's own insert statements
(``bench/reconcile_data.py``: what ``IdentityStore.create`` writes, 2,000 rows a transaction, bypassing
the gate as a restore would): every user in one group, with a manager for 99 in 100, every user and
group linked on every target with its memberships acknowledged, one reconcile run per target, and one
finding in 100 users. Then it times the command line as a user runs it, once per format, and appends
one JSON line per run to ``--out``: wall seconds, the command's CPU (user + system; the database
server's not) and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(HERE))

from reconcile_data import Seed, insert_identities, insert_rows  # noqa: E402

from scimward.scim.resource import normalize  # noqa: E402
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_TYPE  # noqa: E402
from scimward.store.database import Database, upgrade  # noqa: E402
from scimward.store.provisioning.targets import TargetRepository  # noqa: E402
from scimward.store.tables import findings, link_members, links, reconcile_runs  # noqa: E402
from scimward.store.timeutil import utcnow  # noqa: E402
from scimward.sync.secrets import SecretBox, generate_key  # noqa: E402


async def seed(url: str, users: int, groups: int, targets: int) -> None:
    plan = Seed(users, groups, 0, seed=16)
    hub = Database(url)
    box = SecretBox(key=generate_key())
    now = utcnow()
    try:
        user_rows = [(plan.hub_user[i], plan.user_doc(i)) for i in range(users)]
        group_rows = [(plan.hub_group[j], normalize({"schemas": [GROUP_SCHEMA], "displayName": f"group-{j:04d}"},
                                                    GROUP_TYPE)) for j in range(groups)]
        members = [{"group_id": plan.hub_group[plan.group_of(i)], "member_id": plan.hub_user[i],
                    "member_type": "User"} for i in range(users)]
        await insert_identities(hub, USER_TYPE, user_rows)
        await insert_identities(hub, GROUP_TYPE, group_rows, members)
        for t in range(targets):
            target = await TargetRepository(hub).add(f"app-{t}", f"http://127.0.0.1:9/app-{t}/scim/v2",
                                                     box.encrypt("token"), {"reconcile_every": "1d"})
            rows = [{"target_id": target.id, "identity_id": identity_id, "resource_type": rt, "remote_id": identity_id,
                     "state": {}, "status": "active", "acknowledged": now}
                    for rt, ids in (("User", plan.hub_user), ("Group", plan.hub_group)) for identity_id in ids]
            await insert_rows(hub, links, rows)
            await insert_rows(hub, link_members, [{"target_id": target.id, "group_id": m["group_id"],
                                                   "member_id": m["member_id"]} for m in members])
            await insert_rows(hub, reconcile_runs, [{"target_id": target.id, "trigger": "bench", "repair": False,
                                                     "status": "ok", "started": now, "finished": now,
                                                     "heartbeat": now, "users_read": users, "groups_read": groups}])
            await insert_rows(hub, findings, [
                {"target_id": target.id, "kind": "attribute_drift", "severity": "medium", "resource_type": "User",
                 "subject": plan.hub_user[i], "identity_id": plan.hub_user[i], "attribute": "title",
                 "status": "open", "first_seen": now, "last_seen": now} for i in range(t, users, 100 * targets)])
        async with hub.write() as conn:  # the statistics autovacuum would have gathered after such a load
            await conn.exec_driver_sql("ANALYZE")
    finally:
        await hub.dispose()


def run_report(url: str, fmt: str, out: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).parent / "scimward"), "report", "--format", fmt, "--out", out,
                             "--database-url", url], capture_output=True, text=True, timeout=1800,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=100_000)
    p.add_argument("--groups", type=int, default=1_000)
    p.add_argument("--targets", type=int, default=5)
    p.add_argument("--dialect", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/")
    p.add_argument("--pg-admin-db", default="test")
    p.add_argument("--pg-db", default="scimward_bench_report")
    p.add_argument("--out", default=str(HERE / "results" / f"report-{time.strftime('%Y%m%d')}.jsonl"))
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="report-bench-")
    if a.dialect == "sqlite":
        url = f"sqlite:///{work}/hub.db"
    else:
        import psycopg

        with psycopg.connect(a.pg_url + a.pg_admin_db, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}"')
            admin.execute(f'CREATE DATABASE "{a.pg_db}"')
        url = "postgresql+psycopg://" + a.pg_url.split("://", 1)[1] + a.pg_db
    upgrade(url)
    started = time.perf_counter()
    asyncio.run(seed(url, a.users, a.groups, a.targets))
    seeded = time.perf_counter() - started
    print(f"{a.dialect}: seeded {a.users:,} users, {a.groups:,} groups, {a.targets} targets in {seeded:.0f} s",
          flush=True)
    ok = True
    for fmt in ("json", "html"):
        load = os.getloadavg()
        seconds, cpu, result = run_report(url, fmt, f"{work}/report.{fmt}")
        size = os.path.getsize(f"{work}/report.{fmt}") if result.returncode == 0 else 0
        print(f"{a.dialect} report --format {fmt}: {seconds:.1f} s wall, {cpu:.1f} s CPU, exit {result.returncode}, "
              f"{size / 1e6:.1f} MB, load average {load[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
        if result.returncode != 0:
            print(result.stderr[-2000:], file=sys.stderr)
            ok = False
        record = {"op": "report", "format": fmt, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dialect": a.dialect,
                  "users": a.users, "groups": a.groups, "targets": a.targets, "seconds": round(seconds, 2),
                  "cpu_seconds": round(cpu, 2), "exit": result.returncode, "bytes": size,
                  "command": " ".join([".venv/bin/python bench/report.py", *sys.argv[1:]]),
                  "load_before": load, "load_after": os.getloadavg()}
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        with open(a.out, "a") as f:
            f.write(json.dumps(record) + "\n")
    if a.dialect == "postgresql":
        import psycopg

        with psycopg.connect(a.pg_url + a.pg_admin_db, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}"')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
