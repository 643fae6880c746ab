#!/usr/bin/env python3
"""Where the audit event's cost in a fused PostgreSQL POST goes: variants of its CTEs, round by round.

    .venv/bin/python bench/audit_head_probe.py --rounds 12 --writes 2000 --variants none head_bare head_only main

One process, one database, the gated store (``policy.identity_store``, 8 creates in flight, as
``bench/audit_cost.py``); each round writes ``--writes`` Users with one variant of the fused POST's audit
CTEs (``_fused._audited`` swapped in this process only), the variants in turn, so they share the process,
its connections and the machine. Each round prints the backends' CPU per create (``/proc``, every
process whose command line names the database), the ``audit_head`` updates and HOT updates it made
(``pg_stat_user_tables``, read after ``pg_stat_clear_snapshot``), and what a sampler connection saw the
other backends wait on (``--waits``: ``pg_stat_activity`` every 2 ms, its own backend left out of the
CPU). A diagnostic, not a test: the variants without the event's INSERT or its ordering conditions
write a trail ``audit verify`` would reject. ``--help`` lists the variants.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import audit_cost  # noqa: E402 (bench/ on the path above)

SAMPLER_PID: list[int] = []


def backends_cpu(database: str) -> float:
    """CPU seconds of the backends serving ``database`` (``bench/audit_cost.py``'s), the sampler's own left out."""
    return audit_cost.backends_cpu(database, SAMPLER_PID)


CONCURRENCY = 8


def variants() -> dict[str, tuple[str, Any]]:
    """Each variant: what it is, and the ``_fused._audited`` that builds the fused POST with it."""
    import sqlalchemy as sa

    from scimward.store.governance import audit
    from scimward.store.identity import _fused
    from scimward.store.tables import audit_events, audit_head

    _h = audit_head.c
    bare_events = sa.Table("audit_events_bare", sa.MetaData(), *(sa.Column(c.name, c.type) for c in audit_events.c))

    def head_cte(where: list[Any], *, hashed: bool = True, lane: Any = None) -> Any:
        digest = (
            audit._chain_hash(_h.lane, _h.seq + 1, _h.hash, audit._param("a_prefix"), audit._param("a_data"))
            if hashed
            else _h.hash
        )
        return (
            audit_head.update()
            .where(_h.lane == (sa.bindparam("a_lane") if lane is None else lane), *where)
            .values(seq=_h.seq + 1, prev_hash=_h.hash, hash=digest)
            .returning(_h.lane, _h.seq, _h.prev_hash, _h.hash)
            .cte("audit_advanced")
        )

    def event_from(head: Any, table: Any = audit_events) -> Any:
        typed = [sa.cast(audit._param(f"a_{name}"), audit_events.c[name].type) for name in audit._FIELDS]
        return (
            table.insert()
            .from_select(
                ["lane", "seq", *audit._FIELDS, "prev_hash", "hash"],
                sa.select(head.c.lane, head.c.seq, *typed, head.c.prev_hash, head.c.hash),
            )
            .returning(table.c.seq)
            .cte("audit_appended")
        )

    def gates(changed: Any, first: Any) -> list[Any]:
        """``fused_append``'s ordering conditions: an EXISTS on ``changed``, a count of each CTE in ``first``."""
        ran = [sa.select(sa.func.count()).select_from(cte).scalar_subquery() >= 0 for cte in first]
        return [sa.exists(sa.select(sa.literal(1)).select_from(changed)), *ran]

    def one_drain(changed: Any, first: Any) -> list[Any]:
        drained = sa.union_all(*(sa.select(sa.literal(1)).select_from(cte) for cte in first)).subquery()
        ran = sa.select(sa.func.count()).select_from(drained).scalar_subquery() >= 0
        return [sa.exists(sa.select(sa.literal(1)).select_from(changed)), ran]

    def seq_only() -> Any:
        return (
            audit_head.update()
            .where(_h.lane == sa.bindparam("a_lane"))
            .values(seq=_h.seq + 1)
            .returning(_h.lane)
            .cte("audit_advanced")
        )

    def backend_lane() -> Any:
        return sa.cast(sa.func.pg_backend_pid() % audit.LANES, sa.SmallInteger)

    return {
        "none": ("no audit CTEs (bench/no_audit.py's arm)", lambda st, _c, *_f: st),
        "main": ("the code as it is (audit.fused_append)", _fused._audited),
        "head_only": (
            "fused_append's head UPDATE with its conditions, no event INSERT",
            lambda st, c, *f: st.add_cte(audit.fused_append(c, *f)[0]),
        ),
        "head_bare": (
            "the head UPDATE with its hash, no conditions, no event",
            lambda st, c, *f: st.add_cte(head_cte([])),
        ),
        "head_nohash": (
            "head_bare with hash = hash (no sha256)",
            lambda st, c, *f: st.add_cte(head_cte([], hashed=False)),
        ),
        "head_seq_only": ("UPDATE audit_head SET seq = seq + 1 alone", lambda st, c, *f: st.add_cte(seq_only())),
        "event_bare": (
            "main with the event into a copy of audit_events without indexes",
            lambda st, c, *f: st.add_cte(h := head_cte(gates(c, f))).add_cte(event_from(h, bare_events)),
        ),
        "one_drain": (
            "main with one count over a UNION ALL of the CTEs, not a count each",
            lambda st, c, *f: st.add_cte(h := head_cte(one_drain(c, f))).add_cte(event_from(h)),
        ),
        "backend_lane": (
            "main with lane = pg_backend_pid() % LANES (a lane per connection, not in turn)",
            lambda st, c, *f: st.add_cte(h := head_cte(gates(c, f), lane=backend_lane())).add_cte(event_from(h)),
        ),
    }


class Sampler(threading.Thread):
    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn, self.counts, self.samples, self.stop = dsn, collections.Counter[str](), 0, threading.Event()
        self.active = threading.Event()

    def run(self) -> None:
        import psycopg

        with psycopg.connect(self.dsn, autocommit=True) as conn:
            me = conn.info.backend_pid
            SAMPLER_PID.append(me)
            while not self.stop.is_set():
                if self.active.is_set():
                    rows = conn.execute(
                        "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> %s AND state = 'active' "
                        "AND backend_type = 'client backend'",
                        (me,),
                    ).fetchall()
                    self.samples += 1
                    self.counts.update(r[0] for r in rows)
                time.sleep(0.002)


def pin(database: str, cpu: int) -> None:
    """This process and every backend serving ``database`` on CPU ``cpu``."""
    os.sched_setaffinity(0, {cpu})
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if pid.isdigit() and database.encode() in f.read():
                    os.sched_setaffinity(int(pid), {cpu})
        except OSError:
            continue


def head_stats(dsn: str) -> tuple[int, int, int]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT n_tup_upd, n_tup_hot_upd, pg_relation_size('audit_head') / 8192 FROM pg_stat_user_tables "
            "WHERE relname = 'audit_head'"
        ).fetchone()
        assert row is not None
        return int(row[0]), int(row[1]), int(row[2])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--writes", type=int, default=1000)
    p.add_argument(
        "--variants",
        nargs="+",
        default=["none", "head_bare", "head_only", "main"],
        help="of: " + ", ".join(f"{k} ({v[0]})" for k, v in variants().items()).replace("%", "%%"),
    )
    p.add_argument(
        "--waits",
        action="store_true",
        help="sample pg_stat_activity every 2 ms (its own backend is left out of the CPU figures, "
        "but it takes CPU from the others on a small machine)",
    )
    p.add_argument(
        "--pin",
        type=int,
        metavar="CPU",
        help="pin this process and the database's backends to one CPU (as bench/run.py pins the "
        "backends with its load generator)",
    )
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/")
    p.add_argument("--pg-db", default="auditpg_probe")
    a = p.parse_args()

    import psycopg

    with psycopg.connect(a.pg_url + "test", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{a.pg_db}"')
        admin.execute(f'CREATE DATABASE "{a.pg_db}"')
    dsn = a.pg_url + a.pg_db
    url = "postgresql+psycopg://" + dsn.split("://", 1)[1]

    from scimward.policy import identity_store
    from scimward.scim.resource_types import USER_TYPE
    from scimward.store.database import Database, upgrade
    from scimward.store.identity import _fused

    upgrade(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE audit_events_bare (LIKE audit_events)")  # no indexes: the variant event_bare
    shapes = variants()
    sampler = Sampler(dsn)
    if a.waits:
        sampler.start()
    cpu: dict[str, list[float]] = collections.defaultdict(list)

    async def run() -> None:
        db = Database(url)
        store = identity_store(db)
        made = [0]

        async def create() -> None:
            n = made[0]
            made[0] += 1
            await store.create(USER_TYPE, audit_cost.bench_user(n, "Probe"), source="scim:bench")

        await create()
        for r in range(a.rounds):
            for name in a.variants:
                _fused._audited = shapes[name][1]
                _fused.insert_row.cache_clear()
                for _ in range(CONCURRENCY):  # warm: the new statement prepared on the pool's connections
                    await create()
                if a.pin is not None:
                    pin(a.pg_db, a.pin)
                upd0, hot0, _ = head_stats(dsn)
                sampler.counts.clear()
                sampler.samples = 0
                sampler.active.set()
                wall, server = time.perf_counter(), backends_cpu(a.pg_db)
                for _ in range(0, a.writes, CONCURRENCY):
                    await asyncio.gather(*(create() for _ in range(CONCURRENCY)))
                server = backends_cpu(a.pg_db) - server
                wall = time.perf_counter() - wall
                sampler.active.clear()
                upd1, hot1, pages = head_stats(dsn)
                per = 1000 * server / a.writes
                cpu[name].append(per)
                waits = (
                    ", ".join(f"{k} {v / max(sampler.samples, 1):.2f}" for k, v in sampler.counts.most_common(5)) or "-"
                )
                print(
                    f"round {r} {name:>13}: backends {per:.3f} ms/create, {a.writes / wall:6.0f}/s, "
                    f"head updates {upd1 - upd0} (HOT {hot1 - hot0}), head pages {pages}, "
                    f"load {os.getloadavg()[0]:.1f}; active backends by wait: {waits}",
                    flush=True,
                )
        await db.dispose()

    asyncio.run(run())
    sampler.stop.set()
    for name in a.variants:
        median = statistics.median(cpu[name])
        beside = (
            f", {1000 * (median - statistics.median(cpu['none'])):+.0f} us against none"
            if "none" in cpu and name != "none"
            else ""
        )
        print(f"{name:>13}: median {median:.3f} ms/create{beside}  ({', '.join(f'{x:.3f}' for x in cpu[name])})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
