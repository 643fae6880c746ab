#!/usr/bin/env python3
"""Provisioning benchmark: how fast a change reaches downstream scimward targets (issue 5).

    .venv/bin/python bench/propagation.py                 # the three measurements at the issue's sizes
    .venv/bin/python bench/propagation.py --quick         # small numbers, to check the harness (about a minute)
    .venv/bin/python bench/propagation.py --hub sqlite --phases latency fanout

Three phases, each on a fresh hub database, every server on 127.0.0.1:

latency  The hub (``scimward serve``, its in-process worker on) pinned to the hub CPU; one target, a second
         ``scimward serve --no-worker`` on its own database, pinned to the target CPU and added with
         ``scimward target add``.  Seed users through the hub's SCIM API, wait until the target has them all,
         then send one PATCH (``title``) per user at a steady rate from this script (pinned to the target CPU)
         and wait for the outbox to drain.  Per change: target ``meta.lastModified`` minus the moment this
         script received the hub's 2xx answer (same machine, same clock), and the hub's push log
         (``finished - enqueued``) for exactly those changes, and ``scimward target status --json``.
sync     The hub holds N users and G groups (5-50 members each), seeded through its SCIM API at concurrency 8
         with no target defined; then the hub server is stopped, an empty target started and added, and
         ``scimward sync NAME`` (pinned to the hub CPU) is timed, wall clock from start to exit.
fanout   T targets (``scimward serve --no-worker`` on SQLite each, ports from 9100 up, all on the target CPU);
         one change at a time, the next only after all T acknowledged it (push log); per change the time until
         the last of the T targets had it, from the push log and from the targets' ``meta.lastModified``.

Standard library plus the project's venv (psycopg to read the hub's PostgreSQL); helpers from ``bench/run.py``.
Every process it starts is stopped by PID on exit (Ctrl-C included) and the databases it made are dropped.
See docs/benchmarks.md, section "Propagation".
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import importlib.util
import io
import json
import os
import platform
import random
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_spec = importlib.util.spec_from_file_location("bench_run", HERE / "run.py")
assert _spec is not None and _spec.loader is not None
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

# The targets.
LATENCY_P50_MS, LATENCY_P99_MS = 100.0, 1000.0
SYNC_USERS_PER_S = 500.0
FANOUT_P99_MS = 2000.0
DISTURBED = harness.DISTURBED  # other processes' CPUs above which a phase's figures are marked †

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


# --------------------------------------------------------------------------
# Small pieces: percentiles, time, SCIM over http.client, the hub's database
# --------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float | None:
    """Percentile q (0..100): the value at rank round(q/100 * n + 0.5), Python's rounding; of 1,000 values p99 is the
    990th, of 100 values p99 is the largest (a rank up from nearest-rank's 99th, on the safe side)."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def dist(values_s: list[float]) -> dict[str, Any]:
    ms = [v * 1000 for v in values_s]
    return {"n": len(ms), "p50_ms": r1(pct(ms, 50)), "p90_ms": r1(pct(ms, 90)), "p99_ms": r1(pct(ms, 99)),
            "max_ms": r1(max(ms) if ms else None), "min_ms": r1(min(ms) if ms else None),
            "mean_ms": r1(statistics.fmean(ms) if ms else None)}


def r1(v: float | None) -> float | None:
    return None if v is None else round(v, 1)


def epoch(value: Any) -> float:
    """A SCIM ``meta.lastModified`` (``…Z``), or a naive-UTC datetime / string from the store, as epoch seconds."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.rstrip("Z"))
    return float(value.replace(tzinfo=UTC).timestamp())


class Scim:
    """A SCIM client on http.client: one keep-alive connection per thread."""

    def __init__(self, base: str, token: str):
        host_port = base.split("//", 1)[1].split("/", 1)
        self.host, port = host_port[0].split(":")
        self.port = int(port)
        self.prefix = "/" + host_port[1] if len(host_port) > 1 else ""
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json",
                        "Content-Type": "application/scim+json"}
        self.local = threading.local()

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (1, 2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                conn.request(method, self.prefix + path, body=data, headers=self.headers)
                resp = conn.getresponse()
                raw = resp.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 2:
                    raise
                continue
            return resp.status, (json.loads(raw) if raw.strip() else None)
        raise AssertionError("unreachable")

    def list_all(self, resource: str, page: int = 1000) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 1
        while True:
            status, body = self.request("GET", f"/{resource}?startIndex={start}&count={page}")
            if status != 200:
                raise RuntimeError(f"GET /{resource} answered {status}: {str(body)[:300]}")
            items = body.get("Resources", [])
            out += items
            if len(items) < page or len(out) >= body.get("totalResults", 0):
                return out
            start += len(items)

    def total(self, resource: str) -> int:
        status, body = self.request("GET", f"/{resource}?count=0")
        if status != 200:
            raise RuntimeError(f"GET /{resource}?count=0 answered {status}")
        return int(body["totalResults"])


class HubDb:
    """Read-only SQL on the hub's database (outbox and push_log), from this process."""

    def __init__(self, url: str):
        self.pg = not url.startswith("sqlite")
        if self.pg:
            import psycopg  # the project's own driver, in its venv

            libpq = url.replace("postgresql+psycopg://", "postgresql://", 1)
            self.conn: Any = psycopg.connect(libpq, autocommit=True)
        else:
            self.conn = sqlite3.connect(url.split("sqlite:///", 1)[1], timeout=30, isolation_level=None)

    def rows(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        if self.pg:
            sql = sql.replace("?", "%s")
        return list(self.conn.execute(sql, params).fetchall())

    def scalar(self, sql: str, *params: Any) -> Any:
        return self.rows(sql, *params)[0][0]

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()


def parallel(fn: Callable[[Any], Any], items: Iterable[Any], workers: int) -> list[Any]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(fn, items))


def user_doc(i: int, tag: str) -> dict[str, Any]:
    name = f"{tag}.user{i:06d}"
    return {"schemas": [USER_SCHEMA], "userName": f"{name}@example.com", "externalId": f"src-{tag}-{i}",
            "name": {"givenName": "Bench", "familyName": f"User{i:06d}"}, "displayName": f"Bench User {i}",
            "emails": [{"value": f"{name}@example.com", "type": "work", "primary": True}],
            "title": "seeded", "active": True}


def title_patch(value: str) -> dict[str, Any]:
    return {"schemas": [PATCH_SCHEMA], "Operations": [{"op": "replace", "path": "title", "value": value}]}


# --------------------------------------------------------------------------
# CPU accounting for one measured window
# --------------------------------------------------------------------------


class CpuWindow:
    """CPU used, in CPUs, by: the hub process tree, the target trees, PostgreSQL backends of the bench
    databases, this script (the client), and everything else on the machine ("other")."""

    def __init__(self, trees: dict[str, list[int]], pg: list[Any]):
        self.trees = {name: harness.TreeCpu(*pids) for name, pids in trees.items()}
        self.pg = pg
        self.lock = threading.Lock()
        self.stop_scan = threading.Event()
        self.scanner = threading.Thread(target=self._scan, daemon=True)

    def _pg_seconds(self) -> float:
        with self.lock:
            for backends in self.pg:
                backends.scan()
            return sum(b.seconds() for b in self.pg)

    def _scan(self) -> None:
        while not self.stop_scan.wait(0.5):
            with self.lock:
                for backends in self.pg:
                    backends.scan()
                    backends.seconds()  # read the CPU of backends now: they may be gone by the end

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.procs0 = all_processes()
        self.irq0 = irq_seconds()
        self.busy0 = harness.machine_busy()
        self.own0 = harness.own_seconds()
        self.tree0 = {name: t.seconds() for name, t in self.trees.items()}
        self.pg0 = self._pg_seconds()
        self.scanner.start()

    def stop(self, extra: dict[str, float] | None = None) -> dict[str, Any]:
        """``extra``: CPU seconds of processes that ran and exited within the window (``sync``)."""
        self.stop_scan.set()
        self.scanner.join()
        wall = time.monotonic() - self.t0
        busy = harness.machine_busy() - self.busy0
        own = harness.own_seconds() - self.own0
        trees = {name: t.seconds() - self.tree0[name] for name, t in self.trees.items()}
        pg = self._pg_seconds() - self.pg0
        irq = irq_seconds() - self.irq0
        procs = all_processes()
        extra = extra or {}
        ours = own + sum(trees.values()) + pg + sum(extra.values())
        out: dict[str, Any] = {"wall_s": round(wall, 2)}
        for name, s in [*trees.items(), *extra.items()]:
            out[f"{name}_cpu"] = round(s / wall, 2)
        out["pg_cpu"] = round(pg / wall, 2) if self.pg else None
        out["client_cpu"] = round(own / wall, 2)
        out["other_cpu"] = round(max(0.0, busy - ours) / wall, 2)
        out["disturbed"] = out["other_cpu"] > DISTURBED
        # Who the others were: interrupts (loopback traffic, disk), and the busiest processes outside the run,
        # so that a machine busy with our own PostgreSQL's background writers is told from another workload.
        mine = {os.getpid()}
        for t in self.trees.values():
            mine.update(t.last)
        for b in self.pg:
            mine.update(b.last)
        by_name: dict[str, float] = {}
        for pid, (name, ticks) in procs.items():
            if pid in mine:
                continue
            before = self.procs0.get(pid)
            used = ticks - (before[1] if before is not None else 0)
            by_name[name] = by_name.get(name, 0.0) + used / harness.TCK
        top = sorted(by_name.items(), key=lambda kv: -kv[1])[:6]
        out["other_irq_cpu"] = round(irq / wall, 2)
        out["other_top"] = [[name, round(sec / wall, 3)] for name, sec in top if sec / wall >= 0.005]
        return out


def irq_seconds() -> float:
    """CPU seconds the machine spent in hard and soft interrupts (not charged to any process)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:8]]
    return (v[5] + v[6]) / harness.TCK


def all_processes() -> dict[int, tuple[str, int]]:
    """pid -> (a short name, CPU ticks) of every process on the machine; PostgreSQL's by their title."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2:].split()
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        if name.startswith("kworker/"):
            name = "kworker (kernel)"
        if argv and argv[0].startswith(b"postgres:"):
            title = argv[0].decode(errors="replace").split()
            name = " ".join(title[:3]) if len(title) > 2 and title[2].endswith(":") else " ".join(title[:4])
        elif len(argv) > 1 and argv[0]:
            name = " ".join(Path(a.decode(errors="replace")).name for a in argv[:2])[:60]
        out[int(d)] = (name, int(rest[11]) + int(rest[12]))
    return out


# --------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------


class Bench:
    def __init__(self, a: argparse.Namespace):
        self.a = a
        self.children = harness.Children()
        self.work = Path(tempfile.mkdtemp(prefix="scimward-propagation."))
        self.bin = Path(a.venv) / "bin"
        self.python = str(self.bin / "python")
        self.scimward = str(self.bin / "scimward")
        self.src: Path | None = None
        self.secret_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.pg_hub = harness.Postgres(a.pg_url, a.pg_admin_db, a.pg_db_hub, self.python)
        self.pg_target = harness.Postgres(a.pg_url, a.pg_admin_db, a.pg_db_target, self.python)
        self.made_dbs: set[str] = set()
        self.invocation = time.strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(2)
        self.outf = open(a.out, "a")  # noqa: SIM115 - held open for the whole benchmark
        self.records: list[dict[str, Any]] = []
        self.failed = False
        self.next_port = a.port

    # -- plumbing ---------------------------------------------------------------------------------

    def emit(self, rec: dict[str, Any]) -> None:
        rec.setdefault("invocation", self.invocation)
        self.records.append(rec)
        self.outf.write(json.dumps(rec) + "\n")
        self.outf.flush()

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMWARD_")}
        env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
        env["SCIMWARD_SECRET_KEY"] = self.secret_key  # one key for the hub, its CLI calls and sync
        if self.src is not None:
            env["PYTHONPATH"] = str(self.src)
        env.update(more)
        return env

    def snapshot(self, code: str) -> None:
        """Run one copy of the code for the whole benchmark, whatever happens to the working tree meanwhile:
        the working tree's src/ as it is now, or src/ of a commit (``git archive``)."""
        src = self.work / "src"
        if code == "worktree":
            shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            rev = "HEAD" if code == "head" else code
            tar = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev, "src"],
                                 capture_output=True, check=True).stdout
            with tarfile.open(fileobj=io.BytesIO(tar)) as t:
                t.extractall(self.work, filter="data")
        self.src = src
        where = harness.run_quiet([self.python, "-c", "import scimward.cli.main, scimward; print(scimward.__file__)"],
                                  env=self.env()).strip()
        if not where.startswith(str(src)):
            raise RuntimeError(f"the copy of src/ is not the scimward that gets imported ({where})")

    def cli(self, *args: str, timeout: float = 300, **env: str) -> str:
        return harness.run_quiet([self.scimward, *args], timeout=timeout, env=self.env(**env))

    def port(self, start: int | None = None) -> int:
        p = harness.free_port(start if start is not None else self.next_port)
        if start is None:
            self.next_port = p + 1
        return p

    def database(self, role: str, kind: str, name: str) -> str:
        """A fresh, migrated database: PostgreSQL (dropped and created) or a new SQLite file."""
        if kind == "pg":
            pg = self.pg_hub if role == "hub" else self.pg_target
            pg.recreate()
            self.made_dbs.add(role)
            url = pg.url
        else:
            path = self.work / f"{name}.db"
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            url = f"sqlite:///{path}"
        self.cli("db", "upgrade", "--database-url", url)
        return url

    def drop(self, role: str) -> None:
        if role in self.made_dbs:
            (self.pg_hub if role == "hub" else self.pg_target).drop()
            self.made_dbs.discard(role)

    def token(self, url: str, name: str, patch_response: str) -> str:
        out = self.cli("token", "create", "--name", name, "--patch-response", patch_response, "--database-url", url)
        return [line for line in out.splitlines() if line.strip()][-1].strip()

    def serve(self, name: str, url: str, port: int, cpu: int, worker: bool) -> subprocess.Popen[bytes]:
        argv = ["taskset", "-c", str(cpu), self.scimward, "serve", "--port", str(port), "--database-url", url,
                "--log-level", "warning", *([] if worker else ["--no-worker"])]
        log = self.work / f"{name}.log"
        proc = self.children.start(argv, log, env=self.env(), cwd=self.work)
        proc.argv = argv  # type: ignore[attr-defined]
        proc.log = log  # type: ignore[attr-defined]
        return proc

    def ready(self, proc: subprocess.Popen[bytes], port: int) -> None:
        harness.wait_ready(proc, f"http://127.0.0.1:{port}/healthz", None, proc.log)  # type: ignore[attr-defined]

    def add_target(self, hub_url: str, name: str, port: int, token: str) -> None:
        self.cli("target", "add", name, "--url", f"http://127.0.0.1:{port}/scim/v2", "--token-env",
                 "BENCH_TARGET_TOKEN", "--database-url", hub_url, BENCH_TARGET_TOKEN=token)

    def status(self, hub_url: str, name: str) -> dict[str, Any]:
        return dict(json.loads(self.cli("target", "status", name, "--json", "--database-url", hub_url)))

    def pg_backends(self, *roles_kinds: tuple[str, str]) -> list[Any]:
        cpus = {"target": {self.a.target_cpu}, "hub": {self.a.hub_cpu}, "none": None}[self.a.pg_cpu]
        out = []
        for role, kind in roles_kinds:
            if kind == "pg":
                out.append(harness.PgBackends((self.pg_hub if role == "hub" else self.pg_target).db, cpus))
        return out

    def quiet(self) -> float | None:
        if self.a.wait_quiet <= 0:
            return None
        return round(harness.wait_quiet(self.a.wait_quiet, self.a.quiet_threshold), 2)

    def wait_drained(self, db: HubDb, expect_ok: int, since_id: int, timeout: float, what: str) -> float:
        """Wait until the outbox is empty and the push log holds ``expect_ok`` successful pushes after
        ``since_id``; the seconds waited.  Fails loudly on a quarantine or a timeout."""
        t0 = time.monotonic()
        last_print = t0
        while True:
            pending = db.scalar("SELECT count(*) FROM outbox")
            ok = db.scalar("SELECT count(*) FROM push_log WHERE id > ? AND outcome = 'ok'", since_id)
            if pending == 0 and ok >= expect_ok:
                return time.monotonic() - t0
            now = time.monotonic()
            if now - t0 > timeout:
                errors = db.rows("SELECT last_error FROM outbox WHERE last_error IS NOT NULL LIMIT 3")
                quarantined = db.rows("SELECT name, quarantine_reason FROM targets WHERE quarantined IS NOT NULL")
                raise RuntimeError(f"{what}: not drained after {timeout:.0f} s: {pending} rows pending, {ok} of "
                                   f"{expect_ok} pushes logged; errors {errors}; quarantined {quarantined}")
            if now - last_print > 10:
                print(f"   {what}: {pending} rows pending, {ok}/{expect_ok} pushed", flush=True)
                last_print = now
            time.sleep(0.05)

    def seed_users(self, hub: Scim, n: int, tag: str) -> list[dict[str, Any]]:
        def one(i: int) -> dict[str, Any]:
            status, body = hub.request("POST", "/Users", user_doc(i, tag))
            if status != 201:
                raise RuntimeError(f"POST /Users answered {status}: {str(body)[:300]}")
            return dict(body)

        return parallel(one, range(n), self.a.seed_concurrency)

    # -- phase 1: latency -------------------------------------------------------------------------

    def latency(self) -> None:
        a = self.a
        n, changes, rate = a.latency_users, a.changes, a.rate
        changes = min(changes, n)
        print(f"\n== latency: hub {a.hub} (CPU {a.hub_cpu}), one target {a.target_db} (CPU {a.target_cpu}); "
              f"{n:,} users seeded, {changes:,} PATCHes at {rate:g}/s", flush=True)
        hub_url = self.database("hub", a.hub, "latency-hub")
        target_url = self.database("target", a.target_db, "latency-target")
        hub_token = self.token(hub_url, "bench", "no_content")
        target_token = self.token(target_url, "hub", "resource")
        tport, hport = self.port(a.target_port), self.port()
        target = self.serve("latency-target", target_url, tport, a.target_cpu, worker=False)
        hubp = self.serve("latency-hub", hub_url, hport, a.hub_cpu, worker=True)
        self.ready(target, tport)
        self.ready(hubp, hport)
        self.add_target(hub_url, "t1", tport, target_token)
        hub = Scim(f"http://127.0.0.1:{hport}/scim/v2", hub_token)
        tgt = Scim(f"http://127.0.0.1:{tport}/scim/v2", target_token)
        db = HubDb(hub_url)
        try:
            t0 = time.monotonic()
            users = self.seed_users(hub, n, "lat")
            seeded = time.monotonic() - t0
            drained = self.wait_drained(db, n, 0, 120 + n / 20, "seed")
            print(f"   seeded {n:,} users in {seeded:.1f} s; target had them all {drained:.1f} s later", flush=True)
            other_before = self.quiet()
            base_id = db.scalar("SELECT coalesce(max(id), 0) FROM push_log")
            cpu = CpuWindow({"hub": [hubp.pid], "target": [target.pid]}, self.pg_backends(("hub", a.hub),
                                                                                          ("target", a.target_db)))
            sent: list[dict[str, Any]] = [{} for _ in range(changes)]
            cpu.start()
            start = time.monotonic() + 0.2
            wall0 = time.time() - time.monotonic()  # monotonic -> epoch

            def one(i: int) -> None:
                due = start + i / rate
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t_send = time.monotonic()
                status, body = hub.request("PATCH", f"/Users/{users[i]['id']}", title_patch(f"change-{i}"))
                t_answer = time.monotonic()
                sent[i] = {"id": users[i]["id"], "status": status, "lag_s": t_send - due,
                           "send": wall0 + t_send, "answer": wall0 + t_answer,
                           "error": None if status in (200, 204) else str(body)[:200]}

            parallel(one, range(changes), 8)
            send_s = time.monotonic() - start
            drain = self.wait_drained(db, changes, base_id, 120 + changes / 10, "changes")
            window = cpu.stop()
            print(f"   sent {changes:,} PATCHes in {send_s:.1f} s ({changes / send_s:.1f}/s); outbox drained "
                  f"{drain:.2f} s after the last answer", flush=True)
            # The hub's own record of exactly these changes.
            log_rows = db.rows("SELECT identity_id, enqueued, finished, action, outcome FROM push_log WHERE id > ?",
                               base_id)
            status = self.status(hub_url, "t1")
            # The target's own record: when it wrote each account (meta.lastModified), and what it holds.
            on_target = {u.get("externalId"): u for u in tgt.list_all("Users")}
            on_hub = {u["id"]: u for u in hub.list_all("Users")}
        finally:
            db.close()
        rss = harness.rss_kib(harness.tree_pids(hubp.pid))
        self.children.stop(hubp)
        self.children.stop(target)
        self.drop("hub")
        self.drop("target")

        errors = [s for s in sent if s.get("error")]
        e2e, e2e_send, hub_write, wrong = [], [], [], 0
        for i, s in enumerate(sent):
            u = on_target.get(s["id"])
            if u is None or u.get("title") != f"change-{i}":
                wrong += 1
                continue
            t_target = epoch(u["meta"]["lastModified"])
            e2e.append(t_target - s["answer"])
            e2e_send.append(t_target - s["send"])
            hub_write.append(t_target - epoch(on_hub[s["id"]]["meta"]["lastModified"]))
        ok_rows = [r for r in log_rows if r[4] == "ok"]
        push_log = [epoch(r[2]) - epoch(r[1]) for r in ok_rows]
        lags = [s["lag_s"] for s in sent if s]
        rec = {
            "op": "latency", "hub_db": a.hub, "target_db": a.target_db, "users": n, "changes": changes,
            "rate_asked": rate, "rate_sent": round(changes / send_s, 1), "send_lag": dist(lags),
            "patch_errors": len(errors), "error_samples": [e["error"] for e in errors[:3]],
            "not_on_target": wrong, "seed_s": round(seeded, 2), "seed_drain_s": round(drained, 2),
            "drain_after_last_answer_s": round(drain, 2),
            "e2e_from_answer": dist(e2e), "e2e_from_send": dist(e2e_send), "hub_write_to_target_write": dist(hub_write),
            "push_log": dist(push_log), "push_log_rows": len(log_rows), "push_log_failed": len(log_rows) - len(ok_rows),
            "push_log_actions": sorted({r[3] for r in log_rows}),
            "target_status": {k: status.get(k) for k in ("latency_p50_ms", "latency_p99_ms", "latency_samples",
                                                          "pending", "retrying", "failed", "linked_users")},
            "cpu": window, "other_cpu_before": other_before, "hub_rss_kib": rss,
            "hub_argv": hubp.argv, "target_argv": target.argv,  # type: ignore[attr-defined]
            "samples_e2e_ms": [round(v * 1000, 1) for v in e2e],
            "samples_push_log_ms": [round(v * 1000, 1) for v in push_log],
        }
        self.emit(rec)
        print(f"   e2e p50 {rec['e2e_from_answer']['p50_ms']} ms, p99 {rec['e2e_from_answer']['p99_ms']} ms; "
              f"push log p50 {rec['push_log']['p50_ms']} / p99 {rec['push_log']['p99_ms']} ms; CPU {window}",
              flush=True)

    # -- phase 2: initial sync --------------------------------------------------------------------

    def sync(self) -> None:
        a = self.a
        n, g = a.sync_users, a.sync_groups
        print(f"\n== sync: hub {a.hub} with {n:,} users and {g} groups, empty target {a.target_db} "
              f"(CPU {a.target_cpu}), `scimward sync` on CPU {a.hub_cpu}", flush=True)
        hub_url = self.database("hub", a.hub, "sync-hub")
        hub_token = self.token(hub_url, "bench", "no_content")
        hport = self.port()
        hubp = self.serve("sync-hub", hub_url, hport, a.hub_cpu, worker=False)
        self.ready(hubp, hport)
        hub = Scim(f"http://127.0.0.1:{hport}/scim/v2", hub_token)
        t0 = time.monotonic()
        users = self.seed_users(hub, n, "sync")
        rng = random.Random(5)
        ids = [u["id"] for u in users]
        sizes = [rng.randint(5, min(50, n)) for _ in range(g)]

        rng_members = [rng.sample(ids, size) for size in sizes]

        def group(k: int) -> int:
            members = rng_members[k]
            doc = {"schemas": [GROUP_SCHEMA], "displayName": f"sync-group-{k:03d}",
                   "members": [{"value": m} for m in members]}
            status, body = hub.request("POST", "/Groups", doc)
            if status != 201:
                raise RuntimeError(f"POST /Groups answered {status}: {str(body)[:300]}")
            return len(members)

        memberships = sum(parallel(group, range(g), a.seed_concurrency))
        seeded = time.monotonic() - t0
        print(f"   seeded {n:,} users and {g} groups ({memberships:,} memberships) in {seeded:.1f} s", flush=True)
        self.children.stop(hubp)

        target_url = self.database("target", a.target_db, "sync-target")
        target_token = self.token(target_url, "hub", "resource")
        tport = self.port(a.target_port)
        target = self.serve("sync-target", target_url, tport, a.target_cpu, worker=False)
        self.ready(target, tport)
        self.add_target(hub_url, "t1", tport, target_token)
        other_before = self.quiet()
        cpu = CpuWindow({"target": [target.pid]}, self.pg_backends(("hub", a.hub), ("target", a.target_db)))
        argv = ["taskset", "-c", str(a.hub_cpu), self.scimward, "sync", "t1", "--database-url", hub_url]
        log = self.work / "sync.log"
        cpu.start()
        t_start = time.monotonic()
        proc = self.children.start(argv, log, env=self.env(), cwd=self.work)
        _, wstatus, usage = os.wait4(proc.pid, 0)  # its rusage: CPU of a process that is gone by the end
        seconds = time.monotonic() - t_start
        proc.returncode = os.waitstatus_to_exitcode(wstatus)
        window = cpu.stop({"sync": usage.ru_utime + usage.ru_stime})
        self.children.stop(proc)
        sync_out = harness.tail(log, 3)
        db = HubDb(hub_url)
        try:
            rows = db.rows("SELECT p.action, p.outcome, p.finished FROM push_log p")
            status = self.status(hub_url, "t1")
        finally:
            db.close()
        tgt = Scim(f"http://127.0.0.1:{tport}/scim/v2", target_token)
        t_users, groups_on_target = tgt.total("Users"), tgt.list_all("Groups")
        t_members = sum(len(x.get("members", [])) for x in groups_on_target)
        self.children.stop(target)
        self.drop("hub")
        self.drop("target")

        finished = sorted(epoch(r[2]) for r in rows if r[1] == "ok")
        push_span = finished[-1] - finished[0] if len(finished) > 1 else None
        rec = {
            "op": "sync", "hub_db": a.hub, "target_db": a.target_db, "users": n, "groups": g,
            "memberships": memberships, "seed_s": round(seeded, 2), "sync_rc": proc.returncode,
            "sync_output": sync_out, "wall_s": round(seconds, 2), "users_per_s": round(n / seconds, 1),
            "identities_per_s": round((n + g) / seconds, 1),
            "push_span_s": r1(push_span), "pushes_ok": len(finished),
            "push_failed": sum(1 for r in rows if r[1] != "ok"),
            "actions": {act: sum(1 for r in rows if r[0] == act) for act in sorted({r[0] for r in rows})},
            "push_rate_per_s": round(len(finished) / push_span, 1) if push_span else None,
            "target_users": t_users, "target_groups": len(groups_on_target), "target_memberships": t_members,
            "complete": t_users == n and len(groups_on_target) == g and t_members == memberships,
            "target_status": {k: status.get(k) for k in ("linked_users", "linked_groups", "pending", "retrying",
                                                          "failed", "last_error")},
            "cpu": window, "other_cpu_before": other_before, "sync_argv": argv, "target_argv": target.argv,  # type: ignore[attr-defined]
        }
        self.emit(rec)
        print(f"   sync: {seconds:.1f} s wall, {rec['users_per_s']:,} users/s (exit {proc.returncode}); "
              f"target holds {t_users:,} users, {len(groups_on_target)} groups, {t_members:,} memberships; "
              f"CPU {window}", flush=True)

    # -- phase 3: fan-out -------------------------------------------------------------------------

    def fanout(self) -> None:
        a = self.a
        k, changes = a.fanout_targets, a.fanout_changes
        print(f"\n== fan-out: hub {a.hub} (CPU {a.hub_cpu}), {k} targets on SQLite (CPU {a.target_cpu}), "
              f"{changes} changes one at a time", flush=True)
        hub_url = self.database("hub", a.hub, "fanout-hub")
        hub_token = self.token(hub_url, "bench", "no_content")
        targets = []
        port = a.target_port
        for j in range(k):
            url = self.database("fan", "sqlite", f"fanout-target{j:02d}")
            tok = self.token(url, "hub", "resource")
            port = self.port(port)
            proc = self.serve(f"fanout-target{j:02d}", url, port, a.target_cpu, worker=False)
            targets.append((f"t{j:02d}", port, tok, proc))
            port += 1
        hport = self.port()
        hubp = self.serve("fanout-hub", hub_url, hport, a.hub_cpu, worker=True)
        for _, tport, _, proc in targets:
            self.ready(proc, tport)
        self.ready(hubp, hport)
        for name, tport, tok, _ in targets:
            self.add_target(hub_url, name, tport, tok)
        hub = Scim(f"http://127.0.0.1:{hport}/scim/v2", hub_token)
        db = HubDb(hub_url)
        try:
            users = self.seed_users(hub, changes, "fan")
            drained = self.wait_drained(db, changes * k, 0, 120 + changes * k / 20, "seed")
            print(f"   {changes} users on all {k} targets ({drained:.1f} s after seeding)", flush=True)
            other_before = self.quiet()
            base_id = db.scalar("SELECT coalesce(max(id), 0) FROM push_log")
            cpu = CpuWindow({"hub": [hubp.pid], "targets": [t[3].pid for t in targets]},
                            self.pg_backends(("hub", a.hub)))
            sent: list[dict[str, Any]] = []
            cpu.start()
            wall0 = time.time() - time.monotonic()
            for i in range(changes):
                uid = users[i]["id"]
                t_send = time.monotonic()
                status, body = hub.request("PATCH", f"/Users/{uid}", title_patch(f"fan-{i}"))
                t_answer = time.monotonic()
                deadline = t_answer + 30
                while True:  # all k acknowledged (the push log's ok rows for this identity)
                    acked = db.scalar("SELECT count(*) FROM push_log WHERE id > ? AND identity_id = ? "
                                      "AND outcome = 'ok'", base_id, uid)
                    if acked >= k or time.monotonic() > deadline:
                        break
                    time.sleep(0.005)
                t_seen = time.monotonic()
                sent.append({"id": uid, "status": status, "send": wall0 + t_send, "answer": wall0 + t_answer,
                             "seen_all": wall0 + t_seen, "acked": acked,
                             "error": None if status in (200, 204) else str(body)[:200]})
                time.sleep(a.fanout_gap)
            window = cpu.stop()
            log_rows = db.rows("SELECT identity_id, enqueued, finished, outcome, target_id FROM push_log WHERE id > ?",
                               base_id)
        finally:
            db.close()
        on_targets = []
        for _name, tport, tok, _ in targets:
            on_targets.append({u.get("externalId"): u for u in Scim(f"http://127.0.0.1:{tport}/scim/v2", tok)
                               .list_all("Users")})
        rss = harness.rss_kib(harness.tree_pids(hubp.pid))
        self.children.stop(hubp)
        for *_, proc in targets:
            self.children.stop(proc)
        self.drop("hub")

        by_id: dict[str, list[tuple[Any, ...]]] = {}
        for r in log_rows:
            if r[3] == "ok":
                by_id.setdefault(r[0], []).append(r)
        all_log, first_log, all_e2e, first_e2e, wrong = [], [], [], [], 0
        for i, s in enumerate(sent):
            rows = by_id.get(s["id"], [])
            if len(rows) == k:
                enq = epoch(rows[0][1])
                fins = [epoch(r[2]) for r in rows]
                all_log.append(max(fins) - enq)
                first_log.append(min(fins) - enq)
            stamps = []
            for t in on_targets:
                u = t.get(s["id"])
                if u is None or u.get("title") != f"fan-{i}":
                    wrong += 1
                else:
                    stamps.append(epoch(u["meta"]["lastModified"]))
            if len(stamps) == k:
                all_e2e.append(max(stamps) - s["answer"])
                first_e2e.append(min(stamps) - s["answer"])
        rec = {
            "op": "fanout", "hub_db": a.hub, "targets": k, "changes": changes, "gap_s": a.fanout_gap,
            "patch_errors": sum(1 for s in sent if s["error"]),
            "incomplete_acks": sum(1 for s in sent if s["acked"] < k),
            "missing_or_stale_on_targets": wrong,
            "all_acked_push_log": dist(all_log), "first_acked_push_log": dist(first_log),
            "all_e2e_from_answer": dist(all_e2e), "first_e2e_from_answer": dist(first_e2e),
            "seen_by_poll_from_answer": dist([s["seen_all"] - s["answer"] for s in sent]),
            "push_log_rows": len(log_rows), "push_log_failed": sum(1 for r in log_rows if r[3] != "ok"),
            "cpu": window, "other_cpu_before": other_before, "hub_rss_kib": rss,
            "hub_argv": hubp.argv,  # type: ignore[attr-defined]
            "samples_all_push_log_ms": [round(v * 1000, 1) for v in all_log],
            "samples_all_e2e_ms": [round(v * 1000, 1) for v in all_e2e],
        }
        self.emit(rec)
        print(f"   all {k} acknowledged: push log p50 {rec['all_acked_push_log']['p50_ms']} / p99 "
              f"{rec['all_acked_push_log']['p99_ms']} ms; e2e p50 {rec['all_e2e_from_answer']['p50_ms']} / p99 "
              f"{rec['all_e2e_from_answer']['p99_ms']} ms; CPU {window}", flush=True)

    def close(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        self.children.stop_all()
        for role in list(self.made_dbs):
            with contextlib.suppress(Exception):
                self.drop(role)
        self.outf.close()
        if self.failed or self.a.keep_work:
            print(f"logs kept in {self.work}", file=sys.stderr)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


# --------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def dagger(rec: dict[str, Any]) -> str:
    return " †" if rec["cpu"]["disturbed"] else ""


def report(records: list[dict[str, Any]]) -> str:
    rows: list[list[str]] = []
    for r in records:
        op, d = r.get("op"), dagger(r) if "cpu" in r else ""
        if op == "latency":
            e, p, ts = r["e2e_from_answer"], r["push_log"], r["target_status"]
            ok = (e["p50_ms"] is not None and e["p50_ms"] <= LATENCY_P50_MS and e["p99_ms"] <= LATENCY_P99_MS
                  and not r["patch_errors"] and not r["not_on_target"])
            what = (f"latency, {r['changes']:,} changes at {r['rate_sent']:g}/s, hub {r['hub_db']}, "
                    f"target {r['target_db']}")
            rows.append([what, "end to end: target lastModified - hub's answer", f"{e['p50_ms']}", f"{e['p99_ms']}",
                         f"{e['max_ms']}", "p50 ≤ 100, p99 ≤ 1,000 ms", verdict(ok) + d])
            rows.append(["", "hub push log: finished - enqueued (these changes)", f"{p['p50_ms']}", f"{p['p99_ms']}",
                         f"{p['max_ms']}", "", ""])
            rows.append(["", f"`target status --json` (last {ts['latency_samples']} pushes)",
                         f"{ts['latency_p50_ms']}", f"{ts['latency_p99_ms']}", "", "", ""])
        elif op == "sync":
            ok = r["users_per_s"] >= SYNC_USERS_PER_S and r["complete"] and r["sync_rc"] == 0
            what = f"sync {r['users']:,} users + {r['groups']} groups, hub {r['hub_db']}, target {r['target_db']}"
            rows.append([what, f"`scimward sync` wall clock {r['wall_s']} s", f"{r['users_per_s']:,} users/s", "", "",
                         f"≥ {SYNC_USERS_PER_S:g} users/s", verdict(ok) + d])
            rows.append(["", f"pushes in the push log: {r['pushes_ok']:,} in {r['push_span_s']} s "
                         f"(first to last acknowledged)", f"{r['push_rate_per_s']}/s", "", "", "", ""])
        elif op == "fanout":
            e, p = r["all_e2e_from_answer"], r["all_acked_push_log"]
            ok = (p["p99_ms"] is not None and p["p99_ms"] <= FANOUT_P99_MS and e["p99_ms"] is not None
                  and e["p99_ms"] <= FANOUT_P99_MS and not r["incomplete_acks"] and not r["patch_errors"])
            what = f"fan-out, {r['changes']} changes x {r['targets']} targets, hub {r['hub_db']}"
            rows.append([what, "all acknowledged, push log: max(finished) - enqueued", f"{p['p50_ms']}",
                         f"{p['p99_ms']}", f"{p['max_ms']}", "p99 ≤ 2,000 ms", verdict(ok) + d])
            rows.append(["", "all written, end to end: max(target lastModified) - hub's answer", f"{e['p50_ms']}",
                         f"{e['p99_ms']}", f"{e['max_ms']}", "", ""])
    head = ["phase", "measure", "p50 ms / rate", "p99 ms", "max ms", "target", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * len(head)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    cpu_lines = ["", f"CPU during each measured window, in CPUs (other > {DISTURBED} marks the figures †):", ""]
    for r in records:
        if "cpu" in r:
            c = r["cpu"]
            parts = ", ".join(f"{k.removesuffix('_cpu')} {v}" for k, v in c.items()
                              if k.endswith("_cpu") and v is not None)
            who = "; ".join(f"{name} {cpu}" for name, cpu in c.get("other_top", []))
            cpu_lines.append(f"- {r['op']}: {c['wall_s']} s; {parts}"
                             + (f" (of the others: {who})" if who and c["other_cpu"] > DISTURBED else ""))
    return "\n".join(lines + cpu_lines)


def machine(bench: Bench, a: argparse.Namespace) -> dict[str, Any]:
    info: dict[str, Any] = {"nproc": os.cpu_count(), "kernel": platform.release(), "loadavg": os.getloadavg()}
    with contextlib.suppress(Exception):
        fields = dict(line.split(":", 1) for line in harness.run_quiet(["lscpu"]).splitlines() if ":" in line)
        info["cpu"] = fields.get("Model name", "?").strip()
    with contextlib.suppress(Exception):
        info["postgresql"] = bench.pg_hub.version()
    rev = a.code if a.code not in ("worktree", "live", "head") else "HEAD"
    with contextlib.suppress(Exception):
        info["scimward_commit"] = harness.run_quiet(["git", "-C", str(ROOT), "rev-parse", "--short", rev]).strip()
    if a.code in ("worktree", "live"):
        dirty = harness.run_quiet(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"]).splitlines()
        info["scimward_src_uncommitted"] = ", ".join(d[3:] for d in dirty if d.strip()) or "none"
    info["scimward_code"] = {"worktree": "copy of the working tree's src/ taken at the start",
                             "live": "the live src/"}.get(a.code, "src/ of the commit above (git archive)")
    info["pinning"] = (f"hub serve (API + in-process worker) and `scimward sync` on CPU {a.hub_cpu}; targets and this "
                       f"client on CPU {a.target_cpu}; PostgreSQL backends: "
                       + {"target": f"CPU {a.target_cpu}", "hub": f"CPU {a.hub_cpu}", "none": "not pinned"}[a.pg_cpu])
    return info


# --------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------


def _on_signal(signum: int, _frame: Any) -> None:
    # KeyboardInterrupt, not an Exception: no ``except Exception`` on the way (ours or a library's) may swallow it.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def other_benchmarks() -> list[str]:
    """Other benchmarks running on this machine: scimload.py, bench/run.py, bench/reconcile.py, another of us."""
    names = (b"scimload.py", b"run.py", b"reconcile.py", b"propagation.py")
    found = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) in (os.getpid(), os.getppid()):
            continue
        with contextlib.suppress(OSError), open(f"/proc/{d}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
            if any(x.endswith(n) for x in argv[1:3] for n in names) and b"python" in argv[0]:
                found.append(f"{d}: {b' '.join(argv).decode(errors='replace')[:120]}")
    return found


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--phases", nargs="+", choices=("latency", "sync", "fanout"), default=["latency", "sync", "fanout"])
    p.add_argument("--hub", choices=("pg", "sqlite"), default="pg", help="the hub's database")
    p.add_argument("--target-db", choices=("sqlite", "pg"), default="sqlite",
                   help="the database of the latency and sync target (fan-out targets are always SQLite)")
    p.add_argument("--latency-users", type=int, default=1000, help="users seeded before the latency run")
    p.add_argument("--changes", type=int, default=1000, help="PATCHes measured in the latency run")
    p.add_argument("--rate", type=float, default=100.0, help="PATCHes per second in the latency run")
    p.add_argument("--sync-users", type=int, default=10_000)
    p.add_argument("--sync-groups", type=int, default=100)
    p.add_argument("--fanout-targets", type=int, default=10)
    p.add_argument("--fanout-changes", type=int, default=100)
    p.add_argument("--fanout-gap", type=float, default=0.05, help="pause after all targets acknowledged a change")
    p.add_argument("--seed-concurrency", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="small numbers, to check the harness")
    p.add_argument("--out", help="JSON lines (appended); default bench/results/propagation-<time>.jsonl")
    p.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/")
    p.add_argument("--pg-admin-db", default="test")
    p.add_argument("--pg-db-hub", default="scimward_bench_hub")
    p.add_argument("--pg-db-target", default="scimward_bench_target")
    p.add_argument("--pg-cpu", choices=("none", "target", "hub"), default="none",
                   help="pin the bench databases' PostgreSQL backends to the target CPU, the hub CPU, or not")
    p.add_argument("--hub-cpu", type=int, default=1)
    p.add_argument("--target-cpu", type=int, default=0)
    p.add_argument("--port", type=int, default=9000, help="first port tried for the hub")
    p.add_argument("--target-port", type=int, default=9100, help="first port tried for targets")
    p.add_argument("--venv", default=str(ROOT / ".venv"))
    p.add_argument("--wait-quiet", type=float, default=300.0,
                   help="before each measured window wait up to this many seconds for other processes to go idle")
    p.add_argument("--quiet-threshold", type=float, default=DISTURBED)
    p.add_argument("--code", default="worktree",
                   help="scimward code to run: 'worktree' (a copy of src/ taken at the start), 'head' or any commit "
                   "(its src/, via git archive), or 'live' (the live src/)")
    p.add_argument("--keep-work", action="store_true", help="keep server logs and SQLite files")
    p.add_argument("--force", action="store_true", help="run even if another scimload.py is running")
    a = p.parse_args(argv)
    if a.quick:
        a.latency_users, a.changes, a.sync_users, a.sync_groups, a.fanout_changes = 100, 100, 1000, 10, 10
        a.wait_quiet = min(a.wait_quiet, 30.0)
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    busy = other_benchmarks()
    if busy and not a.force:
        print("another benchmark is running; one benchmark at a time on this machine:\n  " + "\n  ".join(busy),
              file=sys.stderr)
        return 2
    ncpu = os.cpu_count() or 1
    if max(a.hub_cpu, a.target_cpu) >= ncpu or a.hub_cpu == a.target_cpu:
        print(f"--hub-cpu and --target-cpu must be two different CPUs below {ncpu}", file=sys.stderr)
        return 2
    if not shutil.which("taskset"):
        print("taskset (util-linux) is needed", file=sys.stderr)
        return 2
    if not a.out:
        a.out = str(HERE / "results" / f"propagation-{time.strftime('%Y%m%d-%H%M%S')}.jsonl")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {a.target_cpu})  # the client shares the target's core, off the hub's
    bench = Bench(a)
    status = 0
    try:
        if a.code != "live":
            bench.snapshot(a.code)
        command = " ".join([".venv/bin/python bench/propagation.py", *(argv if argv is not None else sys.argv[1:])])
        bench.emit({"op": "bench_meta", "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": command,
                    "machine": machine(bench, a), "args": vars(a)})
        print(f"results -> {a.out}", flush=True)
        for phase in a.phases:
            getattr(bench, phase)()
    except KeyboardInterrupt as e:
        print(f"\ninterrupted ({e or 'SIGINT'}); stopping everything this script started", file=sys.stderr)
        bench.failed, status = True, 130
    except Exception as e:
        print(f"\nerror: {type(e).__name__}: {e}", file=sys.stderr)
        bench.failed, status = True, 1
    finally:
        bench.close()
    print("\n" + report(bench.records))
    print(f"\nJSON lines: {a.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
