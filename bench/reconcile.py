#!/usr/bin/env python3
"""Benchmark a full reconcile: N users and G groups against a scimward target on loopback.

    .venv/bin/python bench/reconcile.py                   # 100,000 users, 1,000 groups (the issue's figures)
    .venv/bin/python bench/reconcile.py --users 10000     # the validation run
    .venv/bin/python bench/reconcile.py --hub-url postgresql+psycopg://postgres@127.0.0.1/reconcile_bench

What it does (this file is standard library only; ``reconcile_data.py``, run as a child, uses the
scimward package for the data):

1. Seeds two databases directly, in batches of 2,000 rows through the store's own insert statements
   (``store.identity.writes.INSERT_IDENTITY`` and the columns ``IdentityStore.create`` derives): the hub with N
   users (names, e-mails, title, enterprise department and employee number, a manager for 99 of every
   100) and G groups of N / G members each, one target, and the links and acknowledged memberships a
   complete push would have left (each link's state is the user's desired state, ``sync.mapping``);
   and a downstream scimward's database with exactly the accounts that push would have made. Plus
   L = max(N / 200, T / 8 + 1) leavers: deleted in the hub, their accounts deactivated on the target,
   their links deactivated, as propagate leaves a deprovisioned account. Then ``ANALYZE`` on both, the
   statistics PostgreSQL's autovacuum would gather after such a load (without them its planner joins
   a group's members through all 100,000 links: 0.2 s per group).
2. Serves the downstream with ``scimward serve --no-worker`` (pinned to CPU 1 by taskset).
3. Reconciles the untouched target once (``--skip-clean`` skips it): it must find nothing.
4. Tampers T = 1 % of N accounts through the target's SCIM API, in eight equal parts: title changed,
   account deactivated, account deleted, removed from its group, added to another group, an account
   added that nobody in the hub owns, a leaver's account reactivated, department changed.
5. Runs ``scimward reconcile app --json`` as a subprocess (pinned to CPU 0), reads its wall time and
   its peak RSS (``ru_maxrss`` of that child, from ``os.wait4``), and checks every tampering against
   the findings in the hub: found, and nothing else reported (the memberships a deleted account took
   with it are expected too).

Why two files: Linux starts a child's ``ru_maxrss`` at the RSS of the process it was forked from
(``exec`` keeps the old image's high-water mark), so the process that launches the measured reconcile
must stay small. Seeding 100,000 users in it would add its few hundred megabytes to the figure.

Prints a markdown table; appends a JSON line to ``--out``. Before measuring it waits for the machine to
be quiet (another benchmark's ``scimload.py`` running, or other processes using CPU).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BIN = Path(sys.executable).parent
DATA = HERE / "reconcile_data.py"
TIME_LIMIT_S, RSS_LIMIT_MB = 60.0, 300.0
DISTURBED = 0.15  # CPUs used by other processes during a measurement above which it is marked disturbed
KINDS = 8  # the kinds of tampering in reconcile_data.py


# -- processes ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pinned(cpu: int | None, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if cpu is not None else argv


def machine_busy() -> float:
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / os.sysconf("SC_CLK_TCK")


def wait_quiet(limit: float, threshold: float = 0.15) -> float:
    """Wait (at most ``limit`` s) until no other benchmark runs (scimload.py, bench/*.py) and other
    processes use less than ``threshold`` CPUs."""
    deadline = time.monotonic() + limit
    while True:
        found = subprocess.run(["pgrep", "-f", r"scimload|bench/[a-z_]+\.py"], capture_output=True, text=True)
        others = [pid for pid in found.stdout.split() if int(pid) not in (os.getpid(), os.getppid())]
        b0, t0 = machine_busy(), time.monotonic()
        time.sleep(3)
        busy = (machine_busy() - b0) / (time.monotonic() - t0)
        if (not others and busy < threshold) or time.monotonic() >= deadline:
            return busy
        print(f"   waiting for a quiet machine (other benchmarks: {len(others)}, busy {busy:.2f} CPUs)", flush=True)


def process_cpu(pid: int) -> float:
    """CPU seconds a running process has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def reconcile(hub_url: str, key: str, cpu: int | None, server: subprocess.Popen[bytes]) -> dict[str, Any]:
    """``scimward reconcile app --json`` in a child process: its report, wall time, peak RSS, CPU, and
    the CPU the target and everything else on the machine used meanwhile."""
    env = {**os.environ, "SCIMWARD_SECRET_KEY": key, "SCIMWARD_DATABASE_URL": hub_url}
    argv = pinned(cpu, [str(BIN / "scimward"), "reconcile", "app", "--json", "--limit", "1"])
    busy, server_cpu, started = machine_busy(), process_cpu(server.pid), time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - started
        busy, server_cpu = machine_busy() - busy, process_cpu(server.pid) - server_cpu
        out.seek(0)
        errors.seek(0)
        text, error_text = out.read().decode(), errors.read().decode()
    if process.returncode not in (0, 1) or not text.strip():
        raise RuntimeError(f"reconcile failed ({process.returncode}): {error_text[-3000:]}")
    report = json.loads(text)
    report.pop("findings", None)
    own = usage.ru_utime + usage.ru_stime
    return {"report": report, "wall_s": round(wall, 2), "rss_mb": round(usage.ru_maxrss / 1024, 1),
            "cpu_s": round(own, 2), "target_cpu_s": round(server_cpu, 2),
            "other_cpus": round(max(0.0, busy - own - server_cpu) / wall, 2)}


def serve(target_url: str, port: int, cpu: int | None, log: Path) -> subprocess.Popen[bytes]:
    argv = pinned(cpu, [str(BIN / "scimward"), "serve", "--no-worker", "--port", str(port), "--database-url",
                        target_url, "--log-level", "warning"])
    with open(log, "wb") as sink:
        process = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).status == 200:
                return process
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the target did not start; see {log}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# -- the run -----------------------------------------------------------------------------------------


def _terminate(signum: int, _frame: Any) -> None:
    raise SystemExit(128 + signum)  # run the finally blocks: stop the target, remove the files


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--tamper", type=float, default=0.01, help="share of accounts tampered (default 1 %%)")
    parser.add_argument("--hub-url", help="the hub's database (default: a new SQLite file); PostgreSQL: an empty "
                                          "database, dropped and made again is up to you")
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--reconcile-cpu", type=int, default=0)
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument("--skip-clean", action="store_true", help="skip the reconcile of the untouched target")
    parser.add_argument("--wait-quiet", type=float, default=600.0, help="seconds to wait for a quiet machine")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "reconcile.jsonl")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = parser.parse_args()
    pin = not a.no_pin and shutil.which("taskset") is not None
    server_cpu, reconcile_cpu = (a.server_cpu, a.reconcile_cpu) if pin else (None, None)
    work = Path(tempfile.mkdtemp(prefix="scimward-reconcile-bench-"))
    hub_url = a.hub_url or f"sqlite:///{work / 'hub.db'}"
    target_url = f"sqlite:///{work / 'target.db'}"
    tampered = max(KINDS, round(a.users * a.tamper))
    leavers = max(a.users // 200, tampered // KINDS + 1)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()  # a Fernet key
    port = free_port()
    base_url = f"http://127.0.0.1:{port}/scim/v2"
    common = ["--users", str(a.users), "--groups", str(a.groups), "--leavers", str(leavers), "--seed", str(a.seed),
              "--hub-url", hub_url, "--target-url", target_url, "--base-url", base_url]
    result: dict[str, Any] = {"users": a.users, "groups": a.groups, "leavers": leavers, "tampered": tampered,
                              "hub": hub_url.split(":")[0].split("+")[0], "pinned": pin,
                              "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "code": code_version()}
    server = None
    try:
        print(f"seeding {a.users:,} users, {a.groups:,} groups, {leavers:,} leavers into hub and target …", flush=True)
        started = time.monotonic()
        for url in (hub_url, target_url):
            subprocess.run([str(BIN / "scimward"), "db", "upgrade", "--database-url", url], check=True,
                           capture_output=True)
        token = data("seed", *common, "--key", key)
        result["seed_s"] = round(time.monotonic() - started, 1)
        print(f"   seeded in {result['seed_s']} s", flush=True)
        server = serve(target_url, port, server_cpu, work / "target.log")
        if not a.skip_clean:
            result["quiet_cpus_before_clean"] = round(wait_quiet(a.wait_quiet), 2)
            clean = reconcile(hub_url, key, reconcile_cpu, server)
            result["clean"] = clean
            print(f"   untouched target: {clean['report']['open']} findings, {clean['wall_s']} s, "
                  f"{clean['rss_mb']} MB", flush=True)
        expected = work / "expected.json"
        expected.write_text(data("tamper", *common, "--token", token, "--count", str(tampered)))
        result["made"] = json.loads(expected.read_text())["made"]
        print(f"   tampered {tampered:,} accounts: {result['made']}", flush=True)
        result["quiet_cpus_before_run"] = round(wait_quiet(a.wait_quiet), 2)
        run = reconcile(hub_url, key, reconcile_cpu, server)
        result["run"] = run
        result.update(json.loads(data("check", "--hub-url", hub_url, "--expected", str(expected))))
    finally:
        if server is not None:
            stop(server)
        if not a.keep:
            shutil.rmtree(work, ignore_errors=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    with open(a.out, "a") as sink:
        sink.write(json.dumps(result) + "\n")
    print_table(result)
    ok = (result["found"] == result["expected"] and not result["unexpected_count"]
          and run["wall_s"] <= TIME_LIMIT_S and run["rss_mb"] <= RSS_LIMIT_MB
          and (a.skip_clean or result["clean"]["report"]["open"] == 0))
    return 0 if ok else 1


def code_version() -> str:
    """The commit of the measured code, and whether src/ had uncommitted changes (the live tree runs)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + (" + uncommitted src/" if git("status", "--porcelain", "src") else "")


def data(*args: str) -> str:
    """A phase of ``reconcile_data.py`` in a child process; what it printed."""
    done = subprocess.run([sys.executable, str(DATA), *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"reconcile_data.py {args[0]} failed: {done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def print_table(result: dict[str, Any]) -> None:
    run = result["run"]
    report = run["report"]
    print()
    title = f"reconcile of {result['users']:,} users, {result['groups']:,} groups ({result['hub']} hub)"
    print(f"| {title} | figure | limit |")
    print("|---|---:|---:|")
    print(f"| wall time of `scimward reconcile` (process start to exit) | {run['wall_s']} s | {TIME_LIMIT_S:.0f} s |")
    print(f"| the run itself (report `seconds`) | {report['seconds']} s | |")
    print(f"| peak RSS of the reconciling process | {run['rss_mb']} MB | {RSS_LIMIT_MB:.0f} MB |")
    print(f"| CPU time of the reconciling process; of the target | {run['cpu_s']} s; {run['target_cpu_s']} s | |")
    print(f"| other processes meanwhile (CPUs; above {DISTURBED}: disturbed) | {run['other_cpus']} | |")
    print(f"| accounts read | {report['users_read']:,} users, {report['groups_read']:,} groups | |")
    print(f"| tampered accounts found | {result['found']:,} of {result['expected']:,} | all |")
    print(f"| findings no tampering explains | {result['unexpected_count']} | 0 |")
    if "clean" in result:
        clean = result["clean"]
        print(f"| untouched target: findings, wall time, peak RSS, other CPUs | {clean['report']['open']}, "
              f"{clean['wall_s']} s, {clean['rss_mb']} MB, {clean['other_cpus']} | 0 |")
    print(f"| seeding (both databases, direct) | {result['seed_s']} s | |")


if __name__ == "__main__":
    sys.exit(main())
