#!/usr/bin/env python3
"""The fused POST's audit CTEs without Python: two pgbench scripts at once, each variant's backends' CPU.

    .venv/bin/python bench/audit_head_pgbench/ab.py DB 2000 none:main headseq:headplain

``DB`` is a database ``scimward db upgrade`` made (``bench/audit_head_probe.py`` leaves ``auditpg_probe``).
Each ``A:B`` runs pgbench with script A (4 clients, lanes 0-3 and 8-11) and script B (4 clients, lanes
4-7 and 12-15) at the same time, then again with A and B swapped, ``REPS`` times (default 3): both
variants share the machine's state second by second, and no two clients ever share a lane. A
variant's figure is its backends' CPU (``/proc``, polled every 20 ms; a backend's variant from its
``application_name``) over its transactions. The scripts are the fused POST written by hand (no
targets, no e-mails, as ``bench/audit_cost.py``'s users): ``none`` without the audit CTEs, ``main``
with them as ``audit.fused_append`` builds them, ``headplain`` the head's UPDATE alone (with its
hash, no conditions, no event), ``headseq`` an UPDATE of ``seq`` alone, ``headht`` headplain with a
built-in hash in place of sha256, ``nohash`` main with ``hash = hash``, ``noran`` main without the
counts of the CTEs before it, ``union`` main with one count over them all.
"""

from __future__ import annotations

import collections
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
TICK = os.sysconf("SC_CLK_TCK")


def run(db: str, tx: int, a: str, b: str) -> dict[str, float]:
    procs = {}
    for name, off in ((a, 0), (b, 4)):
        env = {**os.environ, "PGAPPNAME": "ab_" + name}
        procs[name] = subprocess.Popen(
            ["pgbench", "-h", "127.0.0.1", "-U", "postgres", "-n", "-M", "prepared", "-c", "4", "-j", "1",
             "-t", str(tx), "-D", f"off={off}", "-f", str(HERE / f"{name}.sql"), db],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        )  # fmt: skip
    owner: dict[str, str] = {}
    cpu: dict[str, int] = {}
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}", autocommit=True) as conn:
        while any(p.poll() is None for p in procs.values()):
            sql = "SELECT pid, application_name FROM pg_stat_activity WHERE application_name LIKE 'ab\\_%'"
            for pid, app in conn.execute(sql):
                owner[str(pid)] = app[3:]
            for pid in list(owner):
                try:
                    with open(f"/proc/{pid}/stat") as f:
                        fields = f.read().rsplit(")", 1)[1].split()
                    cpu[pid] = int(fields[11]) + int(fields[12])
                except OSError:
                    pass
            time.sleep(0.02)
    for name, p in procs.items():
        out = p.stdout.read() if p.stdout else ""
        if p.returncode != 0 or "actually processed: " + str(4 * tx) not in out:
            raise SystemExit(f"pgbench {name} failed:\n{out[-2000:]}")
    return {name: 1e6 * sum(c for pid, c in cpu.items() if owner.get(pid) == name) / TICK / (4 * tx) for name in (a, b)}


def main() -> int:
    db, tx, pairs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    res: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
    for _ in range(int(os.environ.get("REPS", "3"))):
        for pair in pairs:
            a, b = pair.split(":")
            for x, y in ((a, b), (b, a)):
                r = run(db, tx, x, y)
                for k, v in r.items():
                    res[(pair, k)].append(v)
                print(f"{x} {r[x]:.1f} | {y} {r[y]:.1f} us/tx, load {os.getloadavg()[0]:.1f}", flush=True)
    for (pair, k), v in res.items():
        print(f"{pair:>24} {k:>10}: median {statistics.median(v):6.1f} us/tx  {[round(x) for x in v]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
