#!/usr/bin/env python3
"""What the audit trail costs a write (issue 16: <= 10 % of SCIM write throughput), in alternating pairs.

    .venv/bin/python bench/audit_cost.py --pairs 3 --writes 2000 --dialect sqlite
    .venv/bin/python bench/audit_cost.py --pairs 3 --writes 2000 --dialect postgresql

Each run is a child process on a fresh database that writes ``--writes`` Users through the gated
store (``policy.identity_store``: the pipeline every SCIM write takes, without HTTP, so the audit's
share is if anything larger than at the SCIM edge), 8 at a time, then PATCHes each of them once.
Both arms run this working tree's ``src/`` (one copy taken at the start): ``audit`` as it is, and
``no-audit`` with the audit append taken out of the write path *in the child only* (``audit.append``
answers without writing, and the fused PostgreSQL statements are built without their two audit
CTEs), so the arms differ in the audit event and nothing else. The runs alternate (audit,
no-audit, audit, ...), so the noise of a loaded machine shows as the spread within each arm. Each
phase prints writes per second and the CPU each write cost: the child's own, plus on PostgreSQL
its server backends' (from /proc), which depends much less than wall time on what the other
processes on the machine take.

``--interleave`` runs both arms in one child instead, on one database: each pair is a round of
``--writes`` creates and PATCHes with the audit event, then one without it (``bench/no_audit.py``
switched on and off in the process), so the arms share the process, its connections and its place
on the machine; the database grows by both arms' users as the rounds go.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONCURRENCY = 8


def bench_user(n: int, family: str = "Bench") -> dict[str, Any]:
    """The ``n``-th User the benchmarks create, normalised as the SCIM edge would."""
    from scimward.scim.resource import normalize  # src/ is on the path only once main() has set it
    from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE

    doc = {
        "schemas": [USER_SCHEMA],
        "userName": f"user{n:07d}@example.com",
        "active": True,
        "title": "Engineer",
        "name": {"givenName": f"G{n}", "familyName": family},
    }
    return normalize(doc, USER_TYPE)


def backends_cpu(database: str, leave_out: Collection[int] = ()) -> float:
    """CPU seconds used so far by the PostgreSQL backends serving ``database`` (the server is local),
    but those whose pids are in ``leave_out``."""
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in leave_out:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if database.encode() not in f.read():
                    continue
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return total / os.sysconf("SC_CLK_TCK")


def child(url: str, writes: int, database: str, arm: str, rounds: int = 1) -> None:
    """One run, on the code in ``sys.path`` (the parent sets PYTHONPATH to its snapshot of src/);
    ``arm`` "interleaved": ``rounds`` pairs of rounds, audit then no-audit, in this process."""
    import asyncio

    from no_audit import without_audit  # bench/no_audit.py (this script's folder is on sys.path)

    from scimward.policy import identity_store
    from scimward.scim.resource_types import USER_TYPE
    from scimward.store.database import Database, upgrade

    upgrade(url)
    if arm == "no-audit":
        without_audit()

    async def run() -> list[dict[str, Any]]:
        db = Database(url)
        store = identity_store(db)
        out = []
        made = [0]

        async def create(n: int) -> str:
            return (await store.create(USER_TYPE, bench_user(n), source="scim:bench")).id

        async def patch(identity_id: str) -> None:
            await store.patch(
                USER_TYPE,
                identity_id,
                {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "title", "value": "Manager"}],
                },
                source="scim:bench",
            )

        async def phases(extra: dict[str, Any]) -> None:
            ids: list[str] = []
            first = made[0]
            made[0] += writes
            for phase in ("create", "patch"):
                wall, cpu, server = time.perf_counter(), time.process_time(), backends_cpu(database)
                for start in range(0, writes, CONCURRENCY):
                    batch = range(start, min(start + CONCURRENCY, writes))
                    if phase == "create":
                        ids += await asyncio.gather(*(create(first + n) for n in batch))
                    else:
                        await asyncio.gather(*(patch(ids[n]) for n in batch))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                server = backends_cpu(database) - server if database else 0.0
                out.append(
                    {
                        **extra,
                        "phase": phase,
                        "writes": writes,
                        "seconds": round(wall, 3),
                        "per_second": round(writes / wall, 1),
                        "cpu_ms_per_write": round(1000 * cpu / writes, 3),
                        "server_cpu_ms_per_write": round(1000 * server / writes, 3),
                        "load": round(os.getloadavg()[0], 1),
                    }
                )

        await create(10 * writes * max(rounds, 1) + 1)  # the first write warms the connection pool and the policy
        if arm != "interleaved":
            await phases({})
        for pair in range(rounds if arm == "interleaved" else 0):
            await phases({"pair": pair, "arm": "audit"})
            restore = without_audit()
            await phases({"pair": pair, "arm": "no-audit"})
            restore()
        await db.dispose()
        return out

    print(json.dumps(asyncio.run(run())))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--writes", type=int, default=2000)
    p.add_argument("--dialect", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/")
    p.add_argument("--pg-admin-db", default="test")
    p.add_argument("--pg-db", default="scimward_bench_audit_cost")
    p.add_argument("--out", default=str(HERE / "results" / f"audit-cost-{time.strftime('%Y%m%d')}.jsonl"))
    p.add_argument(
        "--interleave",
        action="store_true",
        help="both arms in one process on one database, alternating round by round (--pairs rounds each)",
    )
    p.add_argument("--child", nargs=5, metavar=("URL", "WRITES", "DATABASE", "ARM", "ROUNDS"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), a.child[2], a.child[3], int(a.child[4]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="audit-cost-"))
    head = work / "head"
    head.mkdir()
    subprocess.run(["cp", "-r", str(ROOT / "src"), str(head)], check=True)  # the working tree, as it is now
    src = head / "src"
    results = []
    runs = [(0, "interleaved")] if a.interleave else [(p, arm) for p in range(a.pairs) for arm in ("audit", "no-audit")]
    for pair, arm in runs:
        if a.dialect == "sqlite":
            url, database = f"sqlite:///{work}/hub-{pair}-{len(results)}.db", ""
        else:
            import psycopg

            with psycopg.connect(a.pg_url + a.pg_admin_db, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}"')
                admin.execute(f'CREATE DATABASE "{a.pg_db}"')
            url, database = "postgresql+psycopg://" + a.pg_url.split("://", 1)[1] + a.pg_db, a.pg_db
        load = os.getloadavg()[0]
        done = subprocess.run(
            [sys.executable, __file__, "--child", url, str(a.writes), database, arm, str(a.pairs)],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(src)},
            cwd=str(work),
            timeout=1800,
        )
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        for phase in json.loads(done.stdout.strip().splitlines()[-1]):
            at_end = phase.pop("load", None)  # --interleave: the load at the end of that phase
            record = {
                "op": "audit_cost",
                "dialect": a.dialect,
                "pair": pair,
                "arm": arm,
                **phase,
                "interleaved": a.interleave,
                "load_before": round(load, 1),
                "load_after": at_end if at_end is not None else round(os.getloadavg()[0], 1),
                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "command": " ".join([".venv/bin/python bench/audit_cost.py", *sys.argv[1:]]),
            }
            results.append(record)
            print(
                f"pair {record['pair']} {record['arm']:>8} {phase['phase']:>6}: {phase['per_second']:7.1f}/s, "
                f"CPU {phase['cpu_ms_per_write']:.2f} ms/write + server {phase['server_cpu_ms_per_write']:.2f}, "
                f"load {record['load_after']:.1f}",
                flush=True,
            )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as f:
        for record in results:
            f.write(json.dumps(record) + "\n")
    if a.dialect == "postgresql":
        import psycopg

        with psycopg.connect(a.pg_url + a.pg_admin_db, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
