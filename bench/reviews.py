#!/usr/bin/env python3
"""Access reviews at scale (issue 15): starting a campaign over M memberships, deciding K items in one call.

    .venv/bin/python bench/reviews.py [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]
                                      [--users 10000] [--groups 10] [--decide 10000]

Seeds a fresh PostgreSQL database through the gated store (``--users`` users, ``--groups`` groups with
every user as a member: users x groups memberships), then runs each measured phase in a child process
of its own so that its peak RSS is its own: ``start`` (one campaign over every group) and ``decide``
(``--decide`` items revoked in one call, the remediation through the gate included). Prints one JSON
line per phase: wall seconds, this process's CPU seconds (imports included; the database server's not)
and peak RSS in MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
import uuid

import sqlalchemy as sa

from scimward.governance.reviews import Reviews
from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import GROUP_SCHEMA, GROUP_TYPE, USER_SCHEMA, USER_TYPE
from scimward.store.database import Database, upgrade

CAMPAIGN = "bench"


async def seed(url: str, users: int, groups: int) -> None:
    database = Database(url)
    store = identity_store(database)
    async def user(n: int) -> str:
        body = {"schemas": [USER_SCHEMA], "userName": f"user{n:06d}@example.com", "active": True}
        return (await store.create(USER_TYPE, normalize(body, USER_TYPE), source="bench")).id

    ids: list[str] = []
    for start in range(0, users, 64):  # 64 writers at a time
        ids += await asyncio.gather(*(user(n) for n in range(start, min(start + 64, users))))
    for g in range(groups):
        body = {"schemas": [GROUP_SCHEMA], "displayName": f"group{g:03d}", "members": [{"value": i} for i in ids]}
        await store.create(GROUP_TYPE, normalize(body, GROUP_TYPE), source="bench")
    await database.dispose()


async def phase(url: str, name: str, decide: int) -> None:
    database = Database(url)
    reviews = Reviews(database)
    started = time.perf_counter()
    if name == "start":
        campaign = await reviews.start(CAMPAIGN, groups='displayName sw "group"', actor="bench")
        count = campaign.items
    else:
        decided = await reviews.decide(CAMPAIGN, list(range(1, decide + 1)), "revoke", "reviewer")
        count = len(decided)
        assert all(d.outcome == "applied" for d in decided), {d.outcome for d in decided}
    seconds = time.perf_counter() - started
    await database.dispose()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"phase": name, "items": count, "seconds": round(seconds, 2),
                      "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
                      "peak_rss_mb": round(usage.ru_maxrss / 1024)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--decide", type=int, default=10_000)
    parser.add_argument("--phase", choices=("start", "decide"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--seed-only", action="store_true", help="Seed, print the database URL and keep it.")
    args = parser.parse_args()
    if args.phase:
        asyncio.run(phase(args.url, args.phase, args.decide))
        return
    name = f"scimward_bench_reviews_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.make_url(args.pg_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        started = time.perf_counter()
        asyncio.run(seed(url, args.users, args.groups))
        print(json.dumps({"phase": "seed", "memberships": args.users * args.groups,
                          "seconds": round(time.perf_counter() - started, 1)}), flush=True)
        if args.seed_only:
            print(url)
            name = ""
            return
        for name_ in ("start", "decide"):
            subprocess.run([sys.executable, __file__, "--phase", name_, "--url", url, "--decide", str(args.decide)],
                           check=True)
    finally:
        if name:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
