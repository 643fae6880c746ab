"""The HR import benchmark (issue 17: 100,000 rows in <= 60 s and <= 300 MB).

    .venv/bin/python bench/hr_import.py [--rows 100000] [--dialect sqlite|postgresql] [--pg-url URL]

Seeds a fresh hub with ``--rows`` Users as an IdP would have provisioned them (employeeNumber and
e-mail set, nothing HR owns yet), writes an HR export of the same people, and times
``scimward import`` three times, each in its own process, with its peak RSS from ``wait4``:

1. ``first``: every row correlates and sets what HR owns (title, department, cost centre, manager):
   one gated change per row;
2. ``again``: the same file: every row correlates and nothing changes;
3. ``delta``: a day's export: 1 % of the rows change title, 0.1 % are terminations past their grace.

Seeding runs in a child process too (``seed``), so the measured processes start small. Prints one
JSON object per run; docs/benchmarks.md has the figures and the machine.
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
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SCIMWARD = str(Path(sys.executable).parent / "scimward")
HEADER = ("employee_id,user_name,given_name,family_name,email,status,hire_date,termination_date,manager_id,"
          "department,title,cost_center\n")
POLICY = "attributes:\n  active: hr\n  manager: hr\n  department: hr\n  title: hr\n  costCenter: hr\n" \
         "  userName: idp\n  emails: idp\nsources:\n  workday:\n    grace: 1d\n"


def employee(i: int) -> str:
    return f"E{i:07d}"


def write_export(path: Path, rows: int, *, title_every: int = 0, terminate_every: int = 0) -> None:
    """The export: employee i reports to employee i // 10 (the first ten to nobody)."""
    hired = (date.today() - timedelta(days=800)).isoformat()
    left = (date.today() - timedelta(days=5)).isoformat()
    with path.open("w", encoding="utf-8") as out:
        out.write(HEADER)
        for i in range(rows):
            name = f"user{i:07d}@example.com"
            terminated = terminate_every and i % terminate_every == 1
            title = "Senior Engineer" if title_every and i % title_every == 0 else "Engineer"
            manager = employee(i // 10) if i >= 10 else ""
            out.write(f"{employee(i)},{name},Given{i},Family{i},{name},{'terminated' if terminated else 'active'},"
                      f"{hired},{left if terminated else ''},{manager},Dept{i % 50},{title},CC-{i % 20}\n")


async def seed(url: str, rows: int) -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from reconcile_data import insert_identities

    from scimward.policy import policies
    from scimward.scim.resource import normalize
    from scimward.scim.resource_types import ENTERPRISE_USER_SCHEMA, USER_SCHEMA, USER_TYPE
    from scimward.store.database import Database, upgrade
    from scimward.store.governance import SourceRepository

    upgrade(url)
    db = Database(url)
    try:
        docs = []
        for i in range(rows):
            name = f"user{i:07d}@example.com"
            docs.append((str(uuid.uuid4()), normalize({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER_SCHEMA], "userName": name, "active": True,
                "emails": [{"value": name, "type": "work", "primary": True}],
                ENTERPRISE_USER_SCHEMA: {"employeeNumber": employee(i)}}, USER_TYPE)))
        await insert_identities(db, USER_TYPE, docs)
        await policies.apply(db, POLICY, "bench")
        await SourceRepository(db).add("workday", "csv", created_by="bench")
    finally:
        await db.dispose()


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float, int, int, str]:
    """Wall seconds, CPU seconds (user + system), peak RSS in MiB, exit code and what it printed of one
    child process. CPU seconds tell more than wall seconds on a machine that is not idle."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        printed = out.read().decode(errors="replace").strip()
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss // 1024, child.returncode, printed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "seed"])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dialect", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/scimward_bench_hr")
    parser.add_argument("--url", help="(seed) the database")
    args = parser.parse_args()
    if args.command == "seed":
        asyncio.run(seed(args.url, args.rows))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if args.dialect == "sqlite":
            url = f"sqlite:///{tmp}/hub.db"
        else:
            url = args.pg_url
            recreate(url)
        env = {**os.environ, "SCIMWARD_DATABASE_URL": url, "SCIMWARD_ACTOR": "bench"}
        seconds, _, _, code, _ = run_child([sys.executable, __file__, "seed", "--url", url, "--rows",
                                            str(args.rows)], env)
        print(json.dumps({"run": "seed", "rows": args.rows, "seconds": round(seconds, 1), "exit": code}), flush=True)
        full, delta = Path(tmp) / "full.csv", Path(tmp) / "delta.csv"
        write_export(full, args.rows)
        write_export(delta, args.rows, title_every=100, terminate_every=1000)
        for name, path in (("first", full), ("again", full), ("delta", delta)):
            seconds, cpu, rss, code, printed = run_child([SCIMWARD, "import", "workday", str(path), "--json"], env)
            result: dict[str, Any] = {"run": name, "dialect": args.dialect, "rows": args.rows,
                                      "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                                      "peak_rss_mib": rss, "exit": code,
                                      "report": {k: v for k, v in json.loads(printed or "{}").items()
                                                 if k != "rejected"},
                                      "load_average": round(os.getloadavg()[0], 1)}
            print(json.dumps(result), flush=True)


def recreate(url: str) -> None:
    import sqlalchemy as sa

    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


if __name__ == "__main__":
    main()
