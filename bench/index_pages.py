"""Index pages on the store, in one process: random deep pages, userName lookups, a filtered page.

    .venv/bin/python bench/index_pages.py URL --users 20000 [--out FILE.jsonl]

Seeds URL (a migrated database) with N users through the gate if it holds fewer, then times each
shape of list request on ``IdentityStore.search`` one after another (latency, not throughput), with
wall and CPU (process_time) per request and the load average. Run it against an older tree with
``PYTHONPATH=OLD/src`` to compare the same database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scimward.policy import identity_store
from scimward.scim.filter import parse_filter
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.identity import SearchQuery


async def seed(store: Any, n: int) -> None:
    have = (await store.search(USER_TYPE, SearchQuery(count=0))).total
    for start in range(have, n, 50):
        await asyncio.gather(*(store.create(USER_TYPE, normalize(
            {"schemas": [USER_SCHEMA], "userName": f"u{i}@example.com"}, USER_TYPE))
            for i in range(start, min(n, start + 50))))


async def timed(name: str, count: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, Any]:
    for i in range(min(50, count)):  # warm: statements prepared, anchors built
        await call(i)
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(count):
        await call(i)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"op": name, "n": count, "wall_ms": round(wall / count * 1000, 3), "cpu_ms": round(cpu / count * 1000, 3),
            "load": os.getloadavg()[0]}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--out")
    args = parser.parse_args()
    db = Database(args.url)
    store = identity_store(db)
    rng = random.Random(7)
    try:
        await seed(store, args.users)
        starts = [rng.randrange(1, args.users - 100) for _ in range(2000)]
        names = [f"u{rng.randrange(args.users)}@example.com" for _ in range(2000)]
        by_name = [parse_filter(f'userName eq "{name}"') for name in names]
        prefix = parse_filter('userName sw "u1"')
        results = [
            await timed("deep_page (count=100, random startIndex)", 1000,
                        lambda i: store.search(USER_TYPE, SearchQuery(start_index=starts[i], count=100))),
            await timed("userName eq", 2000, lambda i: store.search(USER_TYPE, SearchQuery(filter=by_name[i]))),
            await timed("filtered page (userName sw, count=100, startIndex=1001)", 300,
                        lambda i: store.search(USER_TYPE, SearchQuery(filter=prefix, start_index=1001, count=100))),
        ]
    finally:
        await db.dispose()
    for row in results:
        row["dialect"] = db.dialect
        row["users"] = args.users
        print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as out:
            for row in results:
                out.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
