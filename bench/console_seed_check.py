#!/usr/bin/env python3
"""Check that ``bench/console_pages.py``'s batched PostgreSQL seed writes the rows the store writes one by one.

    .venv/bin/python bench/console_seed_check.py [--users 500]
                                                 [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

Seeds the bench's data set twice in two fresh databases: once with every create through ``store.create``
one at a time (as the bench did before), once as the bench does now (``create_all``: the store's fused
statements run by one ``executemany`` per batch). Then compares every table's rows as multisets, with
what differs between any two seeds taken out of each value: ids, times, hashes, the audit lane and
sequence, and the secrets; the identity counts by their sums per type (each write adds to a shard
row picked at random). Runs ``scimward audit verify`` on both, prints one line per table and drops both databases.
Exit status 1 if a table differs or a chain does not verify.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import console_pages as bench
import sqlalchemy as sa

from scimward.scim.schema import ResourceType
from scimward.store.database import create_sync_engine, upgrade
from scimward.store.identity import IdentityStore
from scimward.sync.secrets import generate_key

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)?")
HEX = re.compile(r"\b[0-9a-f]{64}\b")
#: Columns whose values differ between any two seeds (random or secret); every other column is compared.
SKIP = {"lane", "seq", "password_hash", "token_encrypted"}
SCIMWARD = str(Path(sys.executable).parent / "scimward")


async def one_by_one(store: IdentityStore, rt: ResourceType, docs: list[dict[str, Any]], *, source: str,
                     actor: str) -> list[str]:
    return [(await store.create(rt, doc, source=source, actor=actor)).id for doc in docs]


def _value(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, dict | list) else str(value)
    return HEX.sub("<hash>", TIME.sub("<time>", UUID.sub("<id>", text)))


def tables(url: str) -> dict[str, collections.Counter[str]]:
    engine = create_sync_engine(url)
    out: dict[str, collections.Counter[str]] = {}
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                if table == "identity_counts":  # a row per shard written, picked at random: their sums below
                    continue
                rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).mappings()
                out[table] = collections.Counter(
                    json.dumps({k: _value(v) for k, v in row.items() if k not in SKIP}, sort_keys=True) for row in rows)
            sums = conn.execute(sa.text(
                "SELECT resource_type, sum(count), sum(removed) FROM identity_counts GROUP BY resource_type"))
            out["identity_counts (sums per type)"] = collections.Counter(str(tuple(row)) for row in sums)
    finally:
        engine.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    batched = bench.create_all
    made: list[tuple[str, str]] = []
    try:
        for create_all in (one_by_one, batched):
            url, name = bench.database_for("postgresql", args.pg_url, "")
            assert name is not None
            made.append((url, name))
            upgrade(url)
            bench.create_all = create_all
            asyncio.run(bench.seed(url, args.users, generate_key()))
        (plain_url, _), (batched_url, _) = made
        plain, fast = tables(plain_url), tables(batched_url)
        differ = 0
        for table in sorted(plain.keys() | fast.keys()):
            same = plain.get(table) == fast.get(table)
            differ += not same
            print(f"{table:34} {sum(plain.get(table, {}).values()):7} {sum(fast.get(table, {}).values()):7} "
                  f"{'same' if same else 'DIFFERENT'}")
        verified = [subprocess.run([SCIMWARD, "audit", "verify", "--database-url", url], check=False).returncode == 0
                    for url, _ in made]
        print(json.dumps({"users": args.users, "tables_differing": differ, "audit_verified": verified}))
        sys.exit(0 if differ == 0 and all(verified) else 1)
    finally:
        for _, name in made:
            bench.drop(args.pg_url, name)


if __name__ == "__main__":
    main()
