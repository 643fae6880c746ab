#!/usr/bin/env python3
"""Benchmark ``scimward audit verify`` over a trail of N events (issue 16: 1,000,000 in <= 30 s).

    .venv/bin/python bench/audit_verify.py --events 1000000 --dialect sqlite
    .venv/bin/python bench/audit_verify.py --events 1000000 --dialect postgresql

It makes a fresh database (``scimward db upgrade``), writes N chained events straight into
``audit_events`` (change events of the size the write path appends, spread over the lanes the
dialect uses: 0 on SQLite, 16 on PostgreSQL) with their heads, then times the command line as a user
runs it, checks that it says the trail is intact, breaks one event and times the failing run too.
Results are appended as JSON lines to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "src"))

from scimward.store.chain import chain_hash  # noqa: E402
from scimward.store.database import upgrade  # noqa: E402
from scimward.store.governance.audit import GENESIS, LANES, canonical_data, event_prefix  # noqa: E402


def events(count: int, lanes: int) -> tuple[list[tuple[object, ...]], dict[int, tuple[int, str, str]]]:
    heads = {lane: (0, GENESIS, GENESIS) for lane in range(lanes)}
    rows: list[tuple[object, ...]] = []
    start = datetime(2026, 12, 1)
    for n in range(count):
        lane = n % lanes
        seq, _prev, last = heads[lane]
        moment = start + timedelta(microseconds=n * 137)
        subject = f"User:0192a4c1-{n:012x}"
        data = canonical_data({"change": f"0192a4c1-7e3b-7000-{n:016x}", "op": "update", "status": "applied",
                               "decision": "allow", "source": "scim:okta", "changed": ["title"]})
        digest = chain_hash(lane, seq + 1, last, event_prefix(moment, "change", "okta", subject), data)
        rows.append((lane, seq + 1, moment, "change", "okta", subject, data, last, digest))
        heads[lane] = (seq + 1, last, digest)
    return rows, heads


def fill_sqlite(path: str, rows: list[tuple[object, ...]], heads: dict[int, tuple[int, str, str]]) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    conn.executemany("INSERT INTO audit_events (lane, seq, time, kind, actor, subject, data, prev_hash, hash) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     ((r[0], r[1], r[2].isoformat(" ", "microseconds"), *r[3:]) for r in rows))  # type: ignore[attr-defined]
    conn.executemany("UPDATE audit_head SET seq = ?, prev_hash = ?, hash = ? WHERE lane = ?",
                     [(s, p, h, lane) for lane, (s, p, h) in heads.items()])
    conn.commit()
    conn.close()


def fill_postgres(url: str, rows: list[tuple[object, ...]], heads: dict[int, tuple[int, str, str]]) -> None:
    import psycopg

    with psycopg.connect(url) as conn:
        with conn.cursor() as cur, cur.copy("COPY audit_events (lane, seq, time, kind, actor, subject, data, "
                                            "prev_hash, hash) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        with conn.cursor() as cur:
            cur.executemany("UPDATE audit_head SET seq = %s, prev_hash = %s, hash = %s WHERE lane = %s",
                            [(s, p, h, lane) for lane, (s, p, h) in heads.items()])
        conn.execute("ANALYZE audit_events")


def run_verify(url: str) -> tuple[float, float, subprocess.CompletedProcess[str]]:
    """Wall seconds, CPU seconds (user + system) of the command, and its result."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([str(Path(sys.executable).parent / "scimward"), "audit", "verify", "--json",
                             "--database-url", url], capture_output=True, text=True, timeout=900,
                            env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--dialect", choices=("sqlite", "postgresql"), default="sqlite")
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/")
    p.add_argument("--pg-admin-db", default="test")
    p.add_argument("--pg-db", default="scimward_bench_audit")
    p.add_argument("--out", default=str(HERE / "results" / f"audit-verify-{time.strftime('%Y%m%d')}.jsonl"))
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="audit-verify-")
    if a.dialect == "sqlite":
        path = f"{work}/hub.db"
        url = f"sqlite:///{path}"
    else:
        import psycopg

        with psycopg.connect(a.pg_url + a.pg_admin_db, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}"')
            admin.execute(f'CREATE DATABASE "{a.pg_db}"')
        url = "postgresql+psycopg://" + a.pg_url.split("://", 1)[1] + a.pg_db
    upgrade(url)
    lanes = 1 if a.dialect == "sqlite" else LANES
    made = time.perf_counter()
    rows, heads = events(a.events, lanes)
    if a.dialect == "sqlite":
        fill_sqlite(path, rows, heads)
    else:
        fill_postgres(a.pg_url + a.pg_db, rows, heads)
    filled = time.perf_counter() - made
    del rows
    load = os.getloadavg()
    seconds, cpu, result = run_verify(url)
    verdict = json.loads(result.stdout) if result.stdout.strip() else {}
    print(f"{a.dialect}: {a.events:,} events written in {filled:.1f} s; audit verify {seconds:.1f} s wall, "
          f"{cpu:.1f} s CPU, exit {result.returncode}, intact {verdict.get('intact')}, events {verdict.get('events')}, "
          f"load average {load[0]:.1f} on {os.cpu_count()} CPUs")
    record = {"op": "audit_verify", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "dialect": a.dialect,
              "events": a.events, "seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "exit": result.returncode,
              "intact": verdict.get("intact"), "checked": verdict.get("events"),
              "command": " ".join([".venv/bin/python bench/audit_verify.py", *sys.argv[1:]]),
              "load_before": load, "load_after": os.getloadavg()}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as f:
        f.write(json.dumps(record) + "\n")
    ok = result.returncode == 0 and verdict.get("intact") is True and verdict.get("events") == a.events
    if a.dialect == "postgresql":
        import psycopg

        with psycopg.connect(a.pg_url + a.pg_admin_db, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}"')
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
