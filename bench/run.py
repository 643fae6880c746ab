#!/usr/bin/env python3
"""Benchmark scimward (PostgreSQL and SQLite) next to scim2-server with one command.

    .venv/bin/python bench/run.py                      # the full benchmark (N=10,000 and 100,000, M=100,000)
    .venv/bin/python bench/run.py --quick              # a short smoke run (N=2,000, 5 s phases)
    .venv/bin/python bench/run.py --users 10000 --targets scimward-pg scim2-server --max-seconds 30
    .venv/bin/python bench/run.py --report bench/results/run-20261129-101500.jsonl   # tables only

For each target and each N it starts a fresh server on 127.0.0.1 pinned to the server core, runs
``bench/scimload.py`` (the validating load generator) pinned to the load core, and stops the server by
its PID.  Then one more run per target with M + 100 users builds a group of exactly M members (scimload
clamps a big group to N - 100 - deletes members, so a run with N = M could not reach M).  It prints
markdown tables and writes every JSON line to ``--out`` and a summary next to it
(``<out>.summary.json``).  Standard library only; every process it starts is stopped on exit,
Ctrl-C included.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import ipaddress
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, cast

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCIMLOAD = HERE / "scimload.py"
PEERS = HERE / "peers"

TARGETS = ("scimward-pg", "scimward-sqlite", "scim2-server")
SCIMWARD_TARGETS = ("scimward-pg", "scimward-sqlite")
AGENT_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Agent"
NO_POLICY = "-nopolicy"  # the label suffix of --policy-ab's runs without the policy
NO_AUDIT = "-noaudit"  # the label suffix of --audit-ab's runs without the audit event
NO_AUDIT_HOOK = HERE / "noaudit"  # its sitecustomize takes the audit append out of that server (bench/no_audit.py)
NO_AUDIT_MARK = "bench/no_audit: the audit append is taken out"  # what that server logs as it starts (no_audit.MARK)

# The targets for scimward on PostgreSQL: one server process on one core, 8 connections, N=100,000.
TARGET_N = 100_000
RATE_TARGETS = [  # (op, what, minimum req/s)
    ("seed_users", "POST /Users", 2000),
    ("get_user", "GET /Users/{id}", 5000),
    ("filter_user", 'GET /Users?filter=userName eq "…"', 4000),
    ("list_page", "GET /Users page of 100", 400),
    ("patch_user", "PATCH /Users/{id} active=false", 3000),
]
GROUP_P99_MS = 10.0
SAME_TOLERANCE = 0.8  # "the same at 10k and 100k" / "no slower": within 20 %, the run-to-run noise of one run
RSS_LIMIT_MB = 200
SQLITE_FACTOR = 2.0
DISTURBED = 0.15  # CPUs used by processes outside the run during a phase above which its figures are marked


# --------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def _on_signal(signum: int, _frame: Any) -> None:
    raise Interrupted(signal.Signals(signum).name)


class Children:
    """Every process this script starts, each in its own session, stopped by PID on the way out."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path, **kw: Any) -> subprocess.Popen[bytes]:
        with open(log, "ab") as f:
            p = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen[bytes], grace: float = 10.0) -> None:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(10)
        # Anything it forked into its own session (uvicorn workers, say): that session's group only.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for p in list(self.procs):
            self.stop(p, grace=5.0)


def run_quiet(argv: list[str], timeout: float = 300, env: dict[str, str] | None = None) -> str:
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} ... failed ({r.returncode}): {(r.stderr or r.stdout)[-800:]}")
    return r.stdout


def tree_pids(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for tid in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
    return out


def rss_kib(pids: list[int]) -> int:
    total = 0
    for p in pids:
        with contextlib.suppress(OSError), open(f"/proc/{p}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def cpu_ticks(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])


TCK = os.sysconf("SC_CLK_TCK")


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all cores; idle, iowait and steal excluded)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / TCK


class TreeCpu:
    """CPU seconds of process trees, remembering processes that have exited since they were last seen."""

    def __init__(self, *roots: int):
        self.roots = roots
        self.last: dict[int, int] = {}

    def seconds(self) -> float:
        for root in self.roots:
            for p in tree_pids(root):
                t = cpu_ticks(p)
                if t is not None:
                    self.last[p] = t
        return sum(self.last.values()) / TCK


def own_seconds() -> float:
    t = os.times()
    return t.user + t.system


def wait_quiet(limit: float, threshold: float) -> float:
    """Wait (at most limit seconds) until the machine is nearly idle; returns the last busy level seen."""
    deadline = time.monotonic() + limit
    warned = False
    while True:
        b0, o0, t0 = machine_busy(), own_seconds(), time.monotonic()
        time.sleep(5)
        busy = (machine_busy() - b0 - (own_seconds() - o0)) / (time.monotonic() - t0)
        if busy < threshold or time.monotonic() >= deadline:
            if busy >= threshold:
                print(f"   the machine is still busy ({busy:.2f} CPUs used by other processes); running anyway",
                      flush=True)
            return busy
        if not warned:
            print(f"   other processes use {busy:.2f} CPUs; waiting up to {limit:.0f} s for a quiet machine",
                  flush=True)
            warned = True


def other_scimloads() -> list[str]:
    mine = {os.getpid()}
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in mine:
            continue
        with contextlib.suppress(OSError), open(f"/proc/{d}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
            if any(a.endswith(b"scimload.py") for a in argv):
                found.append(f"{d}: {b' '.join(argv).decode(errors='replace')[:120]}")
    return found


class PgBackends:
    """The PostgreSQL backends serving one database: pinned to a CPU set, CPU time summed."""

    def __init__(self, dbname: str, cpus: set[int] | None):
        self.db = dbname
        self.cpus = cpus
        self.last: dict[int, int] = {}  # pid -> last CPU ticks seen (kept after the backend exits)
        self.pinned: set[int] = set()
        self.pin_error: str | None = None
        self.tck = os.sysconf("SC_CLK_TCK")

    def scan(self) -> None:
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            pid = int(d)
            if pid in self.last:
                continue
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    words = f.read().replace(b"\0", b" ").split()
            except OSError:
                continue
            if not words or words[0] != b"postgres:" or self.db.encode() not in words:
                continue
            t = cpu_ticks(pid)
            if t is None:
                continue
            self.last[pid] = t
            if self.cpus is not None and pid not in self.pinned:
                try:
                    os.sched_setaffinity(pid, self.cpus)
                    self.pinned.add(pid)
                except OSError as e:
                    self.pin_error = f"cannot pin PostgreSQL backend {pid}: {e}"

    def seconds(self) -> float:
        for pid in self.last:
            t = cpu_ticks(pid)
            if t is not None:
                self.last[pid] = t
        return sum(self.last.values()) / self.tck


# --------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------


def loopback_host(url: str) -> str:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host != "localhost":
        try:
            ok = ipaddress.ip_address(host).is_loopback
        except ValueError:
            ok = False
        if not ok:
            raise SystemExit(f"refusing non-loopback PostgreSQL server {host!r}")
    return host


class Postgres:
    def __init__(self, server_url: str, admin_db: str, dbname: str, python: str):
        loopback_host(server_url)
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", dbname):
            raise SystemExit(f"--pg-db {dbname!r}: use lowercase letters, digits and _")
        self.sa_base = server_url if server_url.endswith("/") else server_url + "/"
        self.libpq_base = re.sub(r"^postgresql\+\w+://", "postgresql://", self.sa_base)
        self.admin = self.libpq_base + admin_db
        self.db = dbname
        self.url = self.sa_base + dbname
        self.python = python

    def sql(self, statement: str) -> str:
        if shutil.which("psql"):
            return run_quiet(["psql", self.admin, "-X", "-v", "ON_ERROR_STOP=1", "-Atc", statement], timeout=120)
        code = ("import psycopg,sys\nwith psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
                " r=c.execute(sys.argv[2])\n"
                " print('\\n'.join(str(x[0]) for x in r.fetchall()) if r.description else '')")
        return run_quiet([self.python, "-c", code, self.admin, statement], timeout=120)

    def recreate(self) -> None:
        self.drop()
        self.sql(f"CREATE DATABASE {self.db}")

    def drop(self) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)")

    def version(self) -> str:
        return self.sql("SHOW server_version").strip()


def free_port(start: int) -> int:
    for port in range(start, start + 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {start}..{start + 199}")


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_ready(proc: subprocess.Popen[bytes], url: str, token: str | None, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before it was ready; log:\n{tail(log)}")
        try:
            with NO_PROXY.open(urllib.request.Request(url, headers=headers), timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"server not ready at {url} after {timeout:.0f} s; log:\n{tail(log)}")


def tail(path: Path, n: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------
# One run: a fresh server, scimload against it
# --------------------------------------------------------------------------


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.children = Children()
        self.work = Path(tempfile.mkdtemp(prefix="scimward-bench."))
        self.venv_bin = Path(a.venv) / "bin"
        self.python = str(self.venv_bin / "python")
        self.scimward = str(self.venv_bin / "scimward")
        self.port = a.port
        uses_pg = "scimward-pg" in a.targets or (a.big_group and "scimward-pg" in a.big_group_targets)
        self.pg = Postgres(a.pg_url, a.pg_admin_db, a.pg_db, self.python) if uses_pg else None
        self.invocation = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
        self.records: list[dict[str, Any]] = []
        self.outf = open(a.out, "a")  # noqa: SIM115 - held open for the whole benchmark
        self.failed = False
        self.src: Path | None = None
        self.serial = 0

    def snapshot(self, code: str, name: str = "src") -> None:
        """One consistent copy of the code for the whole benchmark, however src/ changes meanwhile:
        the working tree's src/ as it is now, or src/ of a commit (``git archive``). ``name``: the
        folder under the work directory (``--baseline-code`` takes a second one)."""
        src = self.work / name
        if code != "worktree":
            rev = "HEAD" if code == "head" else code
            tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
                                 capture_output=True, check=True).stdout
            unpacked = self.work / f"{name}.archive"
            with tarfile.open(fileobj=io.BytesIO(tar)) as t:
                t.extractall(unpacked, filter="data")
            (unpacked / "src").rename(src)
        else:
            shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        self.src = src
        where = run_quiet([self.python, "-c", "import scimward.cli.main, scimward.api.app, scimward; "
                           "print(scimward.__file__)"], env=self.scimward_env()).strip()
        if not where.startswith(str(src)):
            raise RuntimeError(f"the copy of src/ is not the scimward that gets imported ({where})")

    def close(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second Ctrl-C must not cut the cleanup short
            signal.signal(sig, signal.SIG_IGN)
        self.children.stop_all()
        if self.pg is not None:
            with contextlib.suppress(Exception):
                self.pg.drop()
        self.outf.close()
        if self.failed or self.a.keep_work:
            print(f"logs kept in {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def emit(self, rec: dict[str, Any]) -> None:
        rec.setdefault("invocation", self.invocation)
        self.records.append(rec)
        self.outf.write(json.dumps(rec) + "\n")
        self.outf.flush()

    def scimward_env(self, no_audit: bool = False) -> dict[str, str]:
        """The environment of scimward's processes; ``no_audit``: the ``--audit-ab`` control arm's server,
        with ``bench/noaudit/`` on its path (its ``sitecustomize`` takes the audit append out)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMWARD_")}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        path = [str(self.src)] if self.src is not None else []
        if no_audit:
            path.append(str(NO_AUDIT_HOOK))
        if path:
            env["PYTHONPATH"] = os.pathsep.join(path)
        return env

    def prepare_scimward(self, target: str, run_id: str, patch_response: str,
                         policy: str | None) -> tuple[str, str, str | None]:
        if target == "scimward-pg":
            assert self.pg is not None
            self.pg.recreate()
            url = self.pg.url
        else:
            path = self.work / f"{run_id}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        env = self.scimward_env()
        run_quiet([self.scimward, "db", "upgrade", "--database-url", url], env=env)
        if policy:
            run_quiet([self.scimward, "policy", "apply", policy, "--as", "bench", "--database-url", url], env=env)
        out = run_quiet([self.scimward, "token", "create", "--name", "bench", "--patch-response", patch_response,
                         "--database-url", url], env=env)
        token = [line for line in out.splitlines() if line.strip()][-1].strip()
        return url, token, (self.pg.db if target == "scimward-pg" else None)

    def run(self, target: str, patch_response: str, kind: str, users: int, extra: list[str],
            suffix: str = "", policy: str | None = None, no_audit: bool = False) -> None:
        """One server and one scimload run; ``suffix`` marks the label of a ``--baseline-code`` run or of
        the policy-less half of ``--policy-ab``; ``policy`` is applied before seeding (default ``--policy``);
        ``no_audit``: the server runs without its audit event (``--audit-ab``'s control arm)."""
        a = self.a
        policy = a.policy if policy is None else policy or None
        label = target if target not in SCIMWARD_TARGETS or patch_response == "no_content" else f"{target}-resource"
        label += suffix
        run_id = f"{label}-{kind}-n{users}"
        if a.policy_ab or a.audit_ab:  # several runs of one label: each its own id, so that the report keeps them all
            self.serial += 1
            run_id += f"-{self.serial}"
        log = self.work / f"{run_id}.server.log"
        genlog = self.work / f"{run_id}.scimload.log"
        jsonl = self.work / f"{run_id}.jsonl"
        self.port = port = free_port(self.port)
        self.port += 1
        print(f"\n== {label}  {kind}  N={users:,}  port {port}", flush=True)
        busy_before = wait_quiet(a.wait_quiet, a.quiet_threshold) if a.wait_quiet > 0 else None
        pgdb = None
        pin = ["taskset", "-c", str(a.server_cpu)]
        if target in SCIMWARD_TARGETS:
            url, token, pgdb = self.prepare_scimward(target, run_id, patch_response, policy)
            argv = [*pin, self.scimward, "serve", "--port", str(port), "--database-url", url, "--log-level", "warning",
                    *a.serve_args.split()]
            server = self.children.start(argv, log, env=self.scimward_env(no_audit))
            base = f"http://127.0.0.1:{port}/scim/v2"
            wait_ready(server, f"http://127.0.0.1:{port}/healthz", None, log)
            if no_audit and NO_AUDIT_MARK not in log.read_text(errors="replace"):
                raise RuntimeError(f"the no-audit server did not take its audit append out; log:\n{tail(log)}")
        else:
            token = "bench-" + secrets.token_hex(16)
            env = dict(os.environ, SCIM2_TOKEN=token)
            argv = [*pin, self.python, "-m", "uvicorn", "scim2_server_asgi:app", "--host", "127.0.0.1",
                    "--port", str(port), "--workers", "1", "--log-level", "warning", "--no-access-log"]
            server = self.children.start(argv, log, env=env, cwd=PEERS)
            base = f"http://127.0.0.1:{port}/v2"
            wait_ready(server, f"{base}/ServiceProviderConfig", token, log)

        pg_cpus = {"load": {a.gen_cpu}, "server": {a.server_cpu}, "none": None}[a.pg_cpu]
        pg = PgBackends(pgdb, pg_cpus) if pgdb else None
        common = {"label": label, "target": target, "kind": kind, "users": users, "run_id": run_id,
                  "patch_response": patch_response if target in SCIMWARD_TARGETS else "no_content (204)",
                  "pg_cpu_mode": a.pg_cpu if pg else None, "policy": policy, "audit": not no_audit}
        gen_argv = ["taskset", "-c", str(a.gen_cpu), self.python, str(SCIMLOAD), "--base-url", base,
                    "--token", token, "--users", str(users), "--label", label, "--server-pid", str(server.pid),
                    "--out", str(jsonl), "--max-seconds", str(a.max_seconds),
                    "--seed-max-seconds", str(a.seed_max_seconds), *extra]
        self.emit({**common, "op": "run_start", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                   "server_argv": argv, "scimload_argv": gen_argv[3:], "server_pid": server.pid,
                   "other_cpu_before": None if busy_before is None else round(busy_before, 2)})
        gen = self.children.start(gen_argv, genlog, env=dict(os.environ, NO_PROXY="127.0.0.1,localhost"))

        offset, buf = 0, b""
        peak = 0
        tracked = TreeCpu(server.pid, gen.pid)

        def ours() -> float:
            return tracked.seconds() + own_seconds()

        last_t, last_pg = time.monotonic(), (pg.seconds() if pg else 0.0)
        last_busy, last_ours = machine_busy(), ours()
        next_scan = 0.0
        phase_count = 0

        def take(line: bytes) -> None:
            nonlocal last_t, last_pg, last_busy, last_ours, phase_count
            rec = json.loads(line)
            now = time.monotonic()
            prev_pg = last_pg
            if pg is not None:
                pg.scan()
                s = pg.seconds()
                rec["pg_cpu"] = round((s - last_pg) / (now - last_t), 2) if now > last_t else None
                rec["pg_backends"] = len(pg.last)
                last_pg = s
            busy, mine = machine_busy(), ours()
            pg_d = last_pg - prev_pg
            if now > last_t:
                # CPU used by processes that are not part of this run (another benchmark, a test suite...)
                rec["other_cpu"] = round(max(0.0, (busy - last_busy) - (mine - last_ours) - pg_d) / (now - last_t), 2)
            last_busy, last_ours = busy, mine
            last_t = now
            rec.update(common)
            self.emit(rec)
            if "rps" in rec:
                phase_count += 1
                print("   " + phase_line(rec), flush=True)
            elif rec.get("op") == "check" and not rec["pass"]:
                print(f"   check {rec['check']}: FAIL {rec['detail']}", flush=True)
            elif rec.get("op") == "note":
                print(f"   note: {rec['note']}", flush=True)

        while True:
            done = gen.poll() is not None
            now = time.monotonic()
            if now >= next_scan:
                next_scan = now + 0.25
                if pg is not None:
                    pg.scan()
                peak = max(peak, rss_kib(tree_pids(server.pid)))
                if server.poll() is not None and not done:
                    print(f"   server exited ({server.returncode}) during the run", flush=True)
            with contextlib.suppress(FileNotFoundError), open(jsonl, "rb") as f:
                f.seek(offset)
                chunk = f.read()
                offset += len(chunk)
                buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.strip():
                    take(line)
            if done:
                break
            time.sleep(0.02)

        alive = server.poll() is None
        end = rss_kib(tree_pids(server.pid)) if alive else 0
        peak = max(peak, end)
        self.emit({**common, "op": "server_rss_kib", "rss_kib": end, "peak_rss_kib": peak,
                   "server_alive_at_end": alive, "scimload_rc": gen.returncode,
                   "pg_backends_pinned": len(pg.pinned) if pg else None,
                   "pg_pin_error": pg.pin_error if pg else None})
        print(f"   server RSS at end {end / 1024:.0f} MB (peak {peak / 1024:.0f} MB)"
              + ("" if gen.returncode == 0 else f"; scimload exited {gen.returncode}")
              + ("" if alive else "; the SERVER HAD EXITED"), flush=True)
        if pg is not None and pg.pin_error:
            print(f"   {pg.pin_error}", flush=True)
        if gen.returncode != 0 or not alive or phase_count == 0:
            self.failed = True
            print(f"   scimload log:\n{tail(genlog)}\n   server log:\n{tail(log)}", flush=True)
        elif a.agents and kind == "main" and target in SCIMWARD_TARGETS:
            self.agents_against_users(base, token, server.pid, common)
        self.children.stop(gen)
        self.children.stop(server)
        if pgdb is not None:
            assert self.pg is not None
            self.pg.drop()


    def agents_against_users(self, base: str, token: str, pid: int, common: dict[str, Any]) -> None:
        """``--agents M``: on the same server, after the workload, M Agents created over SCIM, then
        ``GET /Users/{id}`` and ``GET /Agents/{id}``, ``userName eq`` and ``name eq``, each hammered by
        scimload's ``--raw-get`` (8 connections) in turn, ``--agents-rounds`` times (issue 14: within 10 %)."""
        a = self.a
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/scim+json"}

        def call(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
            with urllib.request.urlopen(request, timeout=30) as response:
                return cast(dict[str, Any], json.loads(response.read() or b"{}"))

        print(f"   agents: creating {a.agents:,} Agents", flush=True)
        ids = [call("POST", "/Agents", {"schemas": [AGENT_SCHEMA], "name": f"agent{i}", "displayName": f"Agent {i}",
                                         "active": True, "agentType": "Assistant"})["id"] for i in range(a.agents)]
        agent_id, agent_name = ids[len(ids) // 2], f"agent{len(ids) // 2}"
        some = call("GET", "/Users?count=1&startIndex=" + str(max(1, len(ids) // 2)) + "&attributes=userName")
        user = some["Resources"][0]
        paths = {
            "get_user_by_id": f"/Users/{user['id']}",
            "get_agent_by_id": f"/Agents/{agent_id}",
            "filter_user_by_name": "/Users?filter=" + urllib.parse.quote(f'userName eq "{user["userName"]}"'),
            "filter_agent_by_name": "/Agents?filter=" + urllib.parse.quote(f'name eq "{agent_name}"'),
        }
        out = self.work / f"{common['run_id']}.agents.jsonl"
        for round_ in range(a.agents_rounds):
            for op, path in paths.items():
                argv = ["taskset", "-c", str(a.gen_cpu), self.python, str(SCIMLOAD), "--base-url", base,
                        "--token", token, "--raw-get", path, "--requests", "5000", "--max-seconds", "8",
                        "--server-pid", str(pid), "--label", op, "--out", str(out)]
                subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                               env=dict(os.environ, NO_PROXY="127.0.0.1,localhost"))
                found = next(json.loads(line) for line in reversed(out.read_text().splitlines())
                             if '"raw_get"' in line and f'"label": "{op}"' in line)
                found.update(common)
                found.update({"op": f"agents:{op}", "round": round_, "loadavg": os.getloadavg()[0]})
                self.emit(found)
                print("   " + phase_line(found), flush=True)


def agents_table(runs_records: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """``--agents``: per target, the Agents' figures against the Users' (best round by server CPU per request)."""
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for r in runs_records:
        if str(r.get("op", "")).startswith("agents:") and r.get("requests") and not r.get("errors"):
            key = (r["label"], r["op"].removeprefix("agents:"))
            r = {**r, "cpu_us": r["server_cpu"] * r["wall_s"] / r["requests"] * 1e6}
            if key not in best or r["cpu_us"] < best[key]["cpu_us"]:
                best[key] = r
    rows, results = [], []
    for label in sorted({k[0] for k in best}):
        for users, agents in (("get_user_by_id", "get_agent_by_id"), ("filter_user_by_name", "filter_agent_by_name")):
            u, g = best.get((label, users)), best.get((label, agents))
            if u is None or g is None:
                continue
            cpu, rps = g["cpu_us"] / u["cpu_us"], g["rps"] / u["rps"]
            rows.append([label, f"{users} / {agents}", fmt_rps(u["rps"]), fmt_rps(g["rps"]), f"{rps:.2f}",
                         f"{u['cpu_us']:,.0f} / {g['cpu_us']:,.0f} µs", f"{cpu:.2f}"])
            results.append({"target": label, "users_op": users, "agents_op": agents, "rps_ratio": round(rps, 3),
                            "cpu_ratio": round(cpu, 3), "users_cpu_us": u["cpu_us"], "agents_cpu_us": g["cpu_us"]})
    if not rows:
        return [], []
    return ["### Agents against Users on the same server (best round by server CPU per request; target: within "
            "10 %)", "", *md_table(["target", "ops", "Users req/s", "Agents req/s", "req/s ratio",
                                    "server CPU/req Users / Agents", "CPU ratio"], rows), ""], results


def phase_line(r: dict[str, Any]) -> str:
    s = (f"{r['op']:<26} {r['rps']:>9,.1f}/s  p50 {fmt_ms(r['p50_ms']):>6}  p99 {fmt_ms(r['p99_ms']):>6} ms"
         f"  n={r['requests']}  srv_cpu {r['server_cpu']}  gen_cpu {r['gen_cpu']}")
    if r.get("pg_cpu") is not None:
        s += f"  pg_cpu {r['pg_cpu']}"
    if (r.get("other_cpu") or 0) > 0.1:
        s += f"  OTHER PROCESSES {r['other_cpu']} CPU"
    if r.get("truncated_by_time"):
        s += "  (time-bound)"
    if r["errors"]:
        s += f"  ERRORS {r['errors']}: {json.dumps(r['error_samples'])[:200]}"
    return s


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def fmt_ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else f"{v:.1f}" if v < 100 else f"{v:.0f}"


def fmt_rps(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def cell(r: dict[str, Any] | None) -> str:
    if r is None:
        return "-"
    s = f"{fmt_rps(r['rps'])}/s · {fmt_ms(r['p50_ms'])} / {fmt_ms(r['p99_ms'])} ms"
    if r.get("truncated_by_time"):
        s += f" (time-bound, {r['requests']})"
    if r["errors"]:
        s += f" · **{r['errors']} errors**"
    return s + dagger(r)


def collect(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Runs from the records: the latest run per (label, kind, users)."""
    runs: dict[str, dict[str, Any]] = {}
    for r in records:
        rid = r.get("run_id")
        if rid is None:
            continue
        if r.get("op") == "run_start" or rid not in runs:
            runs[rid] = {"label": r["label"], "target": r["target"], "kind": r["kind"], "users": r["users"],
                         "ops": {}, "checks": {}, "notes": [], "rss": None, "start": r.get("time"),
                         "server_argv": r.get("server_argv"), "scimload_argv": r.get("scimload_argv"),
                         "pg_cpu_mode": r.get("pg_cpu_mode"), "patch_response": r.get("patch_response")}
        run = runs[rid]
        if "rps" in r:
            run["ops"][r["op"]] = r
        elif r.get("op") == "check":
            run["checks"][r["check"]] = r
        elif r.get("op") == "note":
            run["notes"].append(r["note"])
        elif r.get("op") == "server_rss_kib":
            run["rss"] = r
    return list(runs.values())


def ordered_ops(runs: list[dict[str, Any]]) -> list[str]:
    ops: list[str] = []
    for run in runs:
        for op in run["ops"]:
            if op not in ops:
                ops.append(op)
    return ops


def rss_cell(run: dict[str, Any]) -> str:
    r = run["rss"]
    if not r:
        return "-"
    return f"{r['rss_kib'] / 1024:.0f} MB (peak {r['peak_rss_kib'] / 1024:.0f} MB)"


def md_table(header: list[str], rows: list[list[str]], align: str | None = None) -> list[str]:
    align = align or "l" + "r" * (len(header) - 1)
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if c == "r" else "---" for c in align) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return out


def comparison(runs: list[dict[str, Any]], title: str) -> list[str]:
    labels = [r["label"] for r in runs]
    rows = [[op, *(cell(r["ops"].get(op)) for r in runs)] for op in ordered_ops(runs)]
    rows.append(["server RSS at end", *(rss_cell(r) for r in runs)])
    legend = "cells: completed req/s · p50 / p99 latency"
    if any((r.get("other_cpu") or 0) > DISTURBED for run in runs for r in run["ops"].values()):
        legend += f"; † = other processes used > {DISTURBED} CPU during that phase"
    return [f"### {title}", "", legend, "", *md_table(["op", *labels], rows), ""]


def details(run: dict[str, Any]) -> list[str]:
    rows = []
    for r in run["ops"].values():
        pgc = r.get("pg_cpu")
        rows.append([r["op"] + (" *" if r.get("truncated_by_time") else ""), str(r["requests"]), str(r["errors"]),
                     str(r["concurrency"]), fmt_rps(r["rps"]), fmt_ms(r["p50_ms"]), fmt_ms(r["p90_ms"]),
                     fmt_ms(r["p99_ms"]), fmt_ms(r["max_ms"]), str(r["server_cpu"]),
                     "-" if pgc is None else str(pgc), str(r["gen_cpu"]), str(r.get("other_cpu", "-"))])
    head = [f"{run['label']} {run['kind']} N={run['users']:,} (started {run['start']})", ""]
    return head + md_table(["op", "requests", "errors", "conc", "req/s", "p50 ms", "p90 ms", "p99 ms", "max ms",
                            "server CPU", "PG CPU", "gen CPU", "other CPU"], rows) + [""]


VACUOUS_IN_BIGGROUP = ("patch_user_persisted", "deleted_user_is_404")  # that run patches and deletes no users


def checks_table(runs: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for c in run["checks"]:
            if run["kind"] == "biggroup" and c in VACUOUS_IN_BIGGROUP:
                continue
            if c not in names:
                names.append(c)
    if not names:
        return []
    rows = []
    for c in names:
        cells = []
        for run in runs:
            hit = run["checks"].get(c)
            cells.append("-" if hit is None else "PASS" if hit["pass"] else "FAIL: " + hit["detail"][:70])
        rows.append([c, *cells])
    return [*md_table(["check", *(r["label"] for r in runs)], rows, "l" + "l" * len(runs)), ""]


def errors_list(runs: list[dict[str, Any]]) -> list[str]:
    out = []
    for run in runs:
        for r in run["ops"].values():
            if r["errors"]:
                out.append(f"- {run['label']} N={run['users']:,} {r['op']}: {r['errors']} errors, "
                           f"e.g. {json.dumps(r['error_samples'])[:300]}")
        busy = [f"{r['op']} {r['other_cpu']}" for r in run["ops"].values() if (r.get("other_cpu") or 0) > DISTURBED]
        if busy:
            out.append(f"- {run['label']} N={run['users']:,}: other processes used CPU during: {', '.join(busy)} "
                       "(CPUs); those figures are disturbed")
        for note in run["notes"]:
            out.append(f"- {run['label']} N={run['users']:,}: {note}")
        rs = run["rss"]
        if rs and (rs.get("scimload_rc") or not rs.get("server_alive_at_end", True)):
            out.append(f"- {run['label']} N={run['users']:,}: scimload exit {rs.get('scimload_rc')}, "
                       f"server alive at end: {rs.get('server_alive_at_end')}")
    return out


def dagger(r: dict[str, Any]) -> str:
    return " †" if (r.get("other_cpu") or 0) > DISTURBED else ""


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else "PASS" if ok else "**FAIL**"


def targets_table(runs: list[dict[str, Any]], label: str) -> tuple[list[str], list[dict[str, Any]]]:
    main = sorted((r for r in runs if r["label"] == label and r["kind"] == "main"), key=lambda r: r["users"])
    big = [r for r in runs if r["label"] == label and r["kind"] == "biggroup"]
    if not main and not big:
        return [], []
    ns = [r["users"] for r in main]
    out_rows, results = [], []
    for op, what, minimum in RATE_TARGETS:
        cells, oks = [], {}
        for r in main:
            rec = r["ops"].get(op)
            ok = None if rec is None else (rec["rps"] >= minimum and rec["errors"] == 0)
            oks[r["users"]] = ok
            cells.append("-" if rec is None else f"{fmt_rps(rec['rps'])}/s {verdict(ok)}{dagger(rec)}")
        extra = ""
        if op == "filter_user" and len(main) >= 2:
            lo, hi = main[0]["ops"].get(op), main[-1]["ops"].get(op)
            if lo and hi and lo["rps"]:
                ratio = hi["rps"] / lo["rps"]
                same = ratio >= SAME_TOLERANCE
                extra = f"; N={ns[-1]:,} ÷ N={ns[0]:,} = {ratio:.2f} {verdict(same)}"
                if TARGET_N in oks and oks[TARGET_N] is not None:
                    oks[TARGET_N] = oks[TARGET_N] and same
        at = oks.get(TARGET_N)
        results.append({"target": what, "op": op, "min_rps": minimum, "by_n": {
            str(r["users"]): (r["ops"][op]["rps"] if op in r["ops"] else None) for r in main}, "pass_at_100k": at,
            "disturbed_at": [r["users"] for r in main if op in r["ops"] and dagger(r["ops"][op])]})
        out_rows.append([f"{what} ≥ {minimum:,}/s" + (" (same at 10k and 100k)" if op == "filter_user" else ""),
                         *cells, verdict(at) + extra])
    # the big group: each N run's largest group for information; the verdict from the M=100,000 run
    def group_figures(run: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        ms = sorted(int(op[len("patch_group_add_m"):]) for op in run["ops"] if op.startswith("patch_group_add_m"))
        if not ms:
            return None
        rb, rs = run["ops"][f"patch_group_add_m{ms[-1]}"], run["ops"][f"patch_group_add_m{ms[0]}"]
        p99_ok = rb["p99_ms"] is not None and rb["p99_ms"] <= GROUP_P99_MS and rb["errors"] == 0
        flat_ok = None if len(ms) < 2 or rb["p50_ms"] is None or rs["p50_ms"] is None else (
            rs["p50_ms"] >= SAME_TOLERANCE * rb["p50_ms"])
        text = f"M={ms[-1]:,}: {fmt_ms(rb['p50_ms'])} / {fmt_ms(rb['p99_ms'])} ms{dagger(rb)}"
        if len(ms) > 1:
            text += f", M={ms[0]:,}: {fmt_ms(rs['p50_ms'])} / {fmt_ms(rs['p99_ms'])} ms{dagger(rs)}"
        res = {"m": ms[-1], "m_small": ms[0], "users": run["users"], "p50_ms": rb["p50_ms"], "p99_ms": rb["p99_ms"],
               "p50_ms_small": rs["p50_ms"], "p99_ms_small": rs["p99_ms"], "p99_ok": p99_ok, "no_slower": flat_ok,
               "errors": rb["errors"] + rs["errors"], "disturbed": bool(dagger(rb) or dagger(rs))}
        return text, res

    gcells = []
    for r in main:
        g = group_figures(r)
        gcells.append("-" if g is None else g[0])
    gverdict, gres = "- (no big-group run)", None
    if big:
        g = group_figures(big[0])
        if g is not None:
            gres = g[1]
            ok = gres["p99_ok"] and bool(gres["no_slower"]) if gres["m"] >= TARGET_N else None
            gverdict = (f"{verdict(ok) if ok is not None else 'M=100,000 not run'}: big-group run N={gres['users']:,}, "
                        f"{g[0]} (p50 / p99); p99 ≤ {GROUP_P99_MS:g} ms "
                        f"{verdict(gres['p99_ok'])}, no slower {verdict(gres['no_slower'])}")
            gres["pass"] = ok
    results.append({"target": "PATCH add 1 member to a 100,000-member group", "big_group_run": gres})
    out_rows.append([f"PATCH /Groups add 1 member, M={TARGET_N:,}: p99 ≤ {GROUP_P99_MS:g} ms and no slower "
                     "than at M=1,000 (c=1; p50 / p99)", *gcells, gverdict])
    rcells, rok = [], {}
    for r in main:
        rs_ = r["rss"]
        ok = None if not rs_ else rs_["rss_kib"] / 1024 <= RSS_LIMIT_MB
        rok[r["users"]] = ok
        rcells.append("-" if not rs_ else f"{rs_['rss_kib'] / 1024:.0f} MB {verdict(ok)}")
    results.append({"target": f"server RSS ≤ {RSS_LIMIT_MB} MB", "pass_at_100k": rok.get(TARGET_N)})
    if main:
        out_rows.append([f"server RSS at end ≤ {RSS_LIMIT_MB} MB", *rcells, verdict(rok.get(TARGET_N))])
    head = ["target", *(f"N={n:,}" for n in ns), f"verdict at N={TARGET_N:,}"] if main else ["target", "", "verdict"]
    lines = [f"### Targets: {label} (defined at N={TARGET_N:,}, 8 connections, one server core; "
             f"† = other processes used > {DISTURBED} CPU)", "",
             *md_table(head, out_rows, "l" * len(head)), ""]
    return lines, results


def ratio_table(runs: list[dict[str, Any]], title: str) -> tuple[list[str], list[dict[str, Any]]]:
    by = {r["label"]: r for r in runs}
    peer = by.get("scim2-server")
    if peer is None:
        return [], []
    ours = [lab for lab in by if lab.startswith("scimward")]
    if not ours:
        return [], []
    rows, results = [], []
    for op in ordered_ops(runs):
        p = peer["ops"].get(op)
        cells = []
        for lab in ours:
            o = by[lab]["ops"].get(op)
            if o is None or p is None or not p["rps"]:
                cells.append("-")
                continue
            ratio = o["rps"] / p["rps"]
            errs = o["errors"] or p["errors"]
            ok = ratio >= SQLITE_FACTOR and not o["errors"]
            mark = f" {verdict(ok)}" if lab == "scimward-sqlite" else ""
            cells.append(f"{ratio:,.1f}x{mark}" + (" (errors)" if errs else ""))
            results.append({"op": op, "label": lab, "ratio": round(ratio, 2), "ours_rps": o["rps"],
                            "peer_rps": p["rps"], "pass_2x": ok if lab == "scimward-sqlite" else None})
        rows.append([op, *cells])
    return [f"### {title}: req/s ÷ scim2-server's (SQLite target: ≥ {SQLITE_FACTOR:g}x on every op)", "",
            *md_table(["op", *(f"{lab} ÷ scim2-server" for lab in ours)], rows), ""], results


def policy_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """``--policy-ab``: per target and write op, the median req/s and server CPU per request with the
    policy and without it over the pairs, and their ratio (issue 10: >= 80 %)."""
    return ab_table(runs, NO_POLICY, "The gate's cost: with the policy against the same build without it "
                    "(medians over the pairs; target ≥ 80 %)")


def audit_table(runs: list[dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """``--audit-ab``: the same with and without the audit event (issue 16: it costs ≤ 10 %, ratio ≥ 90 %)."""
    return ab_table(runs, NO_AUDIT, "The audit event's cost: the same build with it and without it "
                    "(medians over the pairs; target: it costs ≤ 10 %)")


def ab_table(runs: list[dict[str, Any]], suffix: str, title: str) -> tuple[list[str], list[dict[str, Any]]]:
    """Per target and op, the median req/s, server CPU and (PostgreSQL) backends' CPU per request of the
    runs labelled ``TARGET`` and ``TARGET{suffix}`` over the pairs, and their ratios (with / without)."""
    rows, results = [], []
    for label in sorted({r["label"] for r in runs if r["label"].endswith(suffix)}):
        base = label[: -len(suffix)]
        with_p = [r for r in runs if r["label"] == base and r["kind"] == "main"]
        without = [r for r in runs if r["label"] == label and r["kind"] == "main"]
        for op in ("seed_users", "patch_user", "get_user"):
            def figures(rs: list[dict[str, Any]], op: str = op) -> tuple[float | None, float | None,
                                                                          float | None, int]:
                got = [r["ops"][op] for r in rs if op in r["ops"] and not r["ops"][op]["errors"]]
                rps = [o["rps"] for o in got if o["rps"]]
                cpu = [o["server_cpu"] / o["rps"] * 1e6 for o in got if o["rps"] and o.get("server_cpu") is not None]
                pgc = [o["pg_cpu"] / o["rps"] * 1e6 for o in got if o["rps"] and o.get("pg_cpu") is not None]
                return (statistics.median(rps) if rps else None, statistics.median(cpu) if cpu else None,
                        statistics.median(pgc) if pgc else None,
                        sum(1 for o in got if (o.get("other_cpu") or 0) > DISTURBED))
            rp, cp, gp, dp = figures(with_p)
            rn, cn, gn, dn = figures(without)
            if rp is None or rn is None:
                continue
            ratio = rp / rn
            cpu_ratio = cn / cp if cp and cn else None
            both_ratio = (cn + gn) / (cp + gp) if cp and cn and gp and gn else None
            rows.append([base, op, str(len(with_p)), fmt_rps(rn), fmt_rps(rp), f"{ratio:.0%}",
                         f"{cn:,.0f} / {cp:,.0f} µs" if cp and cn else "-",
                         f"{cpu_ratio:.0%}" if cpu_ratio else "-",
                         f"{gn:,.0f} / {gp:,.0f} µs" if gp and gn else "-",
                         f"{both_ratio:.0%}" if both_ratio else "-", str(dp + dn)])
            results.append({"target": base, "op": op, "pairs": len(with_p), "rps_without": rn, "rps_with": rp,
                            "ratio": round(ratio, 3), "cpu_us_without": cn, "cpu_us_with": cp,
                            "cpu_ratio": round(cpu_ratio, 3) if cpu_ratio else None,
                            "pg_cpu_us_without": gn, "pg_cpu_us_with": gp,
                            "server_and_pg_cpu_ratio": round(both_ratio, 3) if both_ratio else None,
                            "disturbed_phases": dp + dn})
    if not rows:
        return [], []
    return [f"### {title}", "",
            *md_table(["target", "op", "pairs", "req/s without", "req/s with", "ratio",
                       "server CPU/req without / with", "CPU ratio", "PostgreSQL CPU/req without / with",
                       "server + PostgreSQL CPU ratio", "disturbed phases"], rows), "",
            "Ratios are without ÷ with: 100 % means the same, 90 % that it costs 10 %.", ""], results


def report(records: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    runs = collect(records)
    lines: list[str] = []
    summary: dict[str, Any] = {"runs": [], "targets": {}, "ratios": {}}
    metas = [r for r in records if r.get("op") == "bench_meta"]
    if metas:
        m = metas[-1]
        skip = ("scimward_commit", "scimward_code", "scimward_src_uncommitted", "scimward_src_diff_sha256")
        lines += ["## Machine", "", *(f"- {k}: {v}" for k, v in m["machine"].items() if k not in skip), "",
                  "## Commands", ""]
        for m in metas:
            code = m["machine"].get("scimward_code", "?")
            lines.append(f"- {m['time']}: `{m['command']}` (scimward {m['machine'].get('scimward_commit', '?')}, "
                         f"{code}; uncommitted in src/: {m['machine'].get('scimward_src_uncommitted', '-')})")
        lines.append("")
        summary["machine"] = metas[-1]["machine"]
        summary["commands"] = [{"time": m["time"], "command": m["command"], "machine": m["machine"]} for m in metas]
    lines += ["## Per run", ""]
    for run in runs:
        lines += details(run)
    for kind in ("main", "biggroup"):
        for n in sorted({r["users"] for r in runs if r["kind"] == kind}):
            group = [r for r in runs if r["kind"] == kind and r["users"] == n]
            what = f"N = {n:,} users" if kind == "main" else f"big group run, N = {n:,} users"
            lines += comparison(group, what)
            rl, rres = ratio_table(group, what)
            lines += rl
            summary["ratios"][f"{kind}-n{n}"] = rres
            lines += [f"Checks, {what}:", "", *checks_table(group)]
    pl, pres = policy_table(runs)
    lines += pl
    summary["policy_ab"] = pres
    aul, aures = audit_table(runs)
    lines += aul
    summary["audit_ab"] = aures
    al, ares = agents_table(records)
    lines += al
    summary["agents"] = ares
    for label in sorted({r["label"] for r in runs if r["target"] == "scimward-pg"}):
        tl, tres = targets_table(runs, label)
        lines += tl
        summary["targets"][label] = tres
    errs = errors_list(runs)
    if errs:
        lines += ["### Errors and notes", "", *errs, ""]
    for run in runs:
        summary["runs"].append({
            "label": run["label"], "kind": run["kind"], "users": run["users"], "start": run["start"],
            "patch_response": run["patch_response"], "pg_cpu_mode": run["pg_cpu_mode"],
            "server_argv": run["server_argv"], "scimload_argv": run["scimload_argv"],
            "ops": {op: {k: r.get(k) for k in ("requests", "errors", "concurrency", "rps", "p50_ms", "p90_ms",
                                                "p99_ms", "max_ms", "truncated_by_time", "server_cpu", "pg_cpu",
                                                "gen_cpu", "error_samples")} for op, r in run["ops"].items()},
            "checks": {c: {"pass": r["pass"], "detail": r["detail"]} for c, r in run["checks"].items()},
            "rss_kib": run["rss"]["rss_kib"] if run["rss"] else None,
            "peak_rss_kib": run["rss"]["peak_rss_kib"] if run["rss"] else None,
            "notes": run["notes"]})
    return "\n".join(lines), summary


# --------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------


def machine_info(bench: Bench | None, a: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {}
    with contextlib.suppress(Exception):
        lscpu = run_quiet(["lscpu"])
        fields = dict(line.split(":", 1) for line in lscpu.splitlines() if ":" in line)
        vendor = fields.get("Hypervisor vendor", "bare metal").strip()
        info["cpu"] = f"{fields.get('Model name', '?').strip()} ({vendor})"
    info["nproc"] = os.cpu_count()
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        info["memory"] = f"{int(f.readline().split()[1]) / 1024 / 1024:.1f} GiB"
    info["kernel"] = platform.release()
    with contextlib.suppress(OSError):
        info["os"] = Path("/etc/os-release").read_text().split('PRETTY_NAME="', 1)[1].split('"', 1)[0]
    info["python"] = run_quiet([str(Path(a.venv) / "bin" / "python"), "-c",
                                "import sys; print(sys.version.split()[0])"]).strip()
    if bench is not None and bench.pg is not None:
        with contextlib.suppress(Exception):
            info["postgresql"] = bench.pg.version()
    code = ("import importlib.metadata as m\nfor p in ('scimward','scim2-server','uvicorn','uvloop','starlette',"
            "'sqlalchemy','psycopg','aiosqlite'):\n try: print(p, m.version(p))\n except Exception: pass")
    with contextlib.suppress(Exception):
        info["packages"] = ", ".join(run_quiet([str(Path(a.venv) / "bin" / "python"), "-c", code]).split("\n")[:-1])
    with contextlib.suppress(Exception):
        rev = a.code if a.code not in ("worktree", "live") else "HEAD"
        info["scimward_commit"] = run_quiet(["git", "-C", str(ROOT), "rev-parse", "--short", rev]).strip()
    if a.code in ("worktree", "live"):
        dirty = run_quiet(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"]).split("\n")
        dirty = [d[3:] for d in dirty if d.strip()]
        info["scimward_src_uncommitted"] = ", ".join(dirty) if dirty else "none"
        if dirty:
            diff = subprocess.run(["git", "-C", str(ROOT), "diff", "HEAD", "--", "src"], capture_output=True).stdout
            info["scimward_src_diff_sha256"] = hashlib.sha256(diff).hexdigest()[:16]
    info["scimward_code"] = {"worktree": "copy of the working tree's src/ taken at the start",
                             "live": "the live src/ (--code live)"}.get(
        a.code, "src/ of the commit above (git archive), uncommitted changes not run")
    pg_where = {"load": f"CPU {a.gen_cpu}", "server": f"CPU {a.server_cpu}", "none": "not pinned"}[a.pg_cpu]
    info["pinning"] = (f"server on CPU {a.server_cpu}, load generator on CPU {a.gen_cpu}, "
                       f"PostgreSQL backends of the bench database: {pg_where}")
    return info


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--users", "-N", type=int, nargs="+", default=[10_000, 100_000], help="N values (users seeded)")
    p.add_argument("--targets", nargs="+", choices=TARGETS, default=list(TARGETS))
    p.add_argument("--max-seconds", type=float, default=30.0, help="time bound of each measured phase")
    p.add_argument("--seed-max-seconds", type=float, default=1200.0, help="time bound of each seeding/fill phase")
    p.add_argument("--big-groups", default="1000,10000",
                   help="scimload --big-groups for the N runs (each M is clamped to N - 1,100)")
    p.add_argument("--big-group", type=int, default=100_000,
                   help="M of the extra big-group run (N = M + 100 users, group phases only); 0: no such run")
    p.add_argument("--big-group-only", action="store_true", help="skip the N runs, do only the big-group run")
    p.add_argument("--big-group-targets", nargs="+", choices=TARGETS, default=None,
                   help="targets of the big-group run (default: --targets)")
    p.add_argument("--patch-response", nargs="+", choices=("no_content", "resource"), default=["no_content"],
                   help="scimward token's PATCH answer: 204 (IdP style) and/or 200 with the resource")
    p.add_argument("--policy", help="a policy file applied to each scimward before seeding "
                                    "(e.g. bench/policy-20-rules.yaml)")
    p.add_argument("--serve-args", default="", help="more `scimward serve` arguments, e.g. '--no-worker'")
    p.add_argument("--scimload-args", default="", help="more scimload.py arguments, e.g. '--concurrency 16'")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: N=2,000, 5 s phases, big-group run with M=3,000")
    p.add_argument("--out", help="JSON lines file (appended); default bench/results/run-<time>.jsonl")
    p.add_argument("--report", metavar="JSONL", nargs="+", help="only print the tables of earlier runs")
    p.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/",
                   help="PostgreSQL server (loopback only), without the database")
    p.add_argument("--pg-admin-db", default="test", help="database to connect to for CREATE/DROP DATABASE")
    p.add_argument("--pg-db", default="scimward_bench", help="database dropped and created for each run")
    p.add_argument("--pg-cpu", choices=("load", "server", "none"), default="load",
                   help="pin the bench database's PostgreSQL backends to the load core, the server core, or not")
    p.add_argument("--server-cpu", type=int, default=1)
    p.add_argument("--gen-cpu", type=int, default=0)
    p.add_argument("--port", type=int, default=8900, help="first port tried")
    p.add_argument("--venv", default=str(ROOT / ".venv"))
    p.add_argument("--wait-quiet", type=float, default=300.0,
                   help="before each run wait up to this many seconds for other processes to go idle (0: don't)")
    p.add_argument("--quiet-threshold", type=float, default=DISTURBED, help="CPUs used by others that count as idle")
    p.add_argument("--code", default="worktree",
                   help="scimward code to run: 'worktree' (a copy of src/ taken at the start), 'head' or any "
                   "commit (its src/, via git archive), or 'live' (the live src/, which may change under a run)")
    p.add_argument("--baseline-code", help="after the runs, the scimward targets' N runs again on this commit's "
                                        "src/, labelled TARGET@COMMIT (an A/B in one run)")
    p.add_argument("--policy-ab", type=int, default=0, metavar="PAIRS",
                   help="with --policy: PAIRS times over, each scimward target's N run with the policy and then "
                   f"the same without it (labelled TARGET{NO_POLICY}); the policy table gives the medians' ratio")
    p.add_argument("--audit-ab", type=int, default=0, metavar="PAIRS",
                   help="PAIRS times over, each scimward target's N run as it is and then the same build with the "
                   f"audit append taken out of the server (labelled TARGET{NO_AUDIT}; bench/no_audit.py, benchmarks "
                   "only); the audit table gives the medians' ratio (issue 16: the event costs <= 10 %%)")
    p.add_argument("--agents", type=int, default=0, metavar="M",
                   help="after each scimward N run, M Agents created, then GET by id and name eq on Agents against "
                   "the same on Users on that server (issue 14)")
    p.add_argument("--agents-rounds", type=int, default=3, help="rounds of the --agents comparison")
    p.add_argument("--keep-work", action="store_true", help="keep server and scimload logs")
    p.add_argument("--force", action="store_true", help="run even if another scimload.py is running")
    a = p.parse_args(argv)
    if a.policy_ab and not a.policy:
        p.error("--policy-ab needs --policy")
    if a.policy_ab and a.audit_ab:
        p.error("--policy-ab and --audit-ab are two A/Bs: run them one at a time")
    if a.audit_ab and a.code == "live":
        p.error("--audit-ab needs a copy of the code (not --code live)")
    if a.quick:
        a.users, a.max_seconds, a.seed_max_seconds = [2000], 5.0, 300.0
        if a.big_group:
            a.big_group = 3000
    a.big_group_targets = a.big_group_targets or a.targets
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    if a.report:
        records = []
        for path in a.report:
            with open(path) as f:
                records += [json.loads(line) for line in f if line.strip()]
        text, _ = report(records)
        print(text)
        return 0
    busy = other_scimloads()
    if busy and not a.force:
        print("another scimload.py is running; only one benchmark at a time on this machine:\n  "
              + "\n  ".join(busy), file=sys.stderr)
        return 2
    ncpu = os.cpu_count() or 1
    if max(a.server_cpu, a.gen_cpu) >= ncpu or a.server_cpu == a.gen_cpu:
        print(f"--server-cpu and --gen-cpu must be two different CPUs below {ncpu}", file=sys.stderr)
        return 2
    if not shutil.which("taskset"):
        print("taskset (util-linux) is needed", file=sys.stderr)
        return 2
    if not a.out:
        a.out = str(HERE / "results" / f"run-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a background job starts with it ignored
        signal.signal(sig, _on_signal)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {a.gen_cpu})  # this script's own polling stays off the server core
    extra = a.scimload_args.split()
    bench = Bench(a)
    status = 0
    try:
        if a.code != "live":
            bench.snapshot(a.code)
        command = " ".join([".venv/bin/python bench/run.py", *(argv if argv is not None else sys.argv[1:])])
        bench.emit({"op": "bench_meta", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
                    "machine": machine_info(bench, a)})
        print(f"results -> {a.out}")
        for n in [] if a.big_group_only else a.users:
            for target in a.targets:
                for pr in (a.patch_response if target in SCIMWARD_TARGETS else ["no_content"]):
                    pairs = max(1, a.policy_ab, a.audit_ab) if target in SCIMWARD_TARGETS else 1
                    for _ in range(pairs):
                        bench.run(target, pr, "main", n, ["--big-groups", a.big_groups, *extra])
                        if a.policy_ab and target in SCIMWARD_TARGETS:
                            # the same build without the policy, right after: both halves meet the same machine
                            bench.run(target, pr, "main", n, ["--big-groups", a.big_groups, *extra],
                                      suffix=NO_POLICY, policy="")
                        if a.audit_ab and target in SCIMWARD_TARGETS:
                            # the same build without the audit event, right after
                            bench.run(target, pr, "main", n, ["--big-groups", a.big_groups, *extra],
                                      suffix=NO_AUDIT, no_audit=True)
        if a.baseline_code:
            # The same runs on other code, in the same invocation: an A/B of one change (e.g. the audit trail).
            tested = bench.src
            bench.snapshot(a.baseline_code, "src-baseline")
            for n in a.users:
                for target in (t for t in a.targets if t in SCIMWARD_TARGETS):
                    for pr in a.patch_response:
                        bench.run(target, pr, "main", n, ["--big-groups", a.big_groups, *extra],
                                  suffix=f"@{a.baseline_code}")
            bench.src = tested
        if a.big_group:
            m = a.big_group
            only_groups = ["--groups", "0", "--reads", "0", "--pages", "0", "--writes", "0", "--deletes", "0",
                           "--big-groups", f"1000,{m}"]
            for target in a.big_group_targets:
                for pr in (a.patch_response if target in SCIMWARD_TARGETS else ["no_content"]):
                    bench.run(target, pr, "biggroup", m + 100, [*only_groups, *extra])
    except (KeyboardInterrupt, Interrupted) as e:
        print(f"\ninterrupted ({e or 'SIGINT'}); stopping everything this script started", file=sys.stderr)
        bench.failed = True
        status = 130
    except Exception as e:
        print(f"\nerror: {e}", file=sys.stderr)
        bench.failed = True
        status = 1
    finally:
        bench.close()
    mine = bench.records
    text, summary = report(mine)
    print("\n" + text)
    summary["invocation"] = bench.invocation
    summary["jsonl"] = a.out
    summary_path = Path(a.out).with_suffix("").as_posix() + ".summary.json"
    with open(summary_path, "w") as f:
        json.dump(summary, f, indent=1)
    print(f"\nJSON lines: {a.out}\nsummary:    {summary_path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
