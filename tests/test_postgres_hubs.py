"""``tests.postgres_hubs``: a reused PostgreSQL hub database is in the template's state again, down to
its seeded rows, sequences and statistics, and one whose schema a test changed is not reused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from scimward.policy import identity_store
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.auth import TokenStore
from scimward.store.database import Database
from tests.conftest import POSTGRES_URL
from tests.postgres_hubs import WRITTEN, Hubs, connect

pytestmark = pytest.mark.postgres


@pytest.fixture
def hubs(postgres_template: str) -> Iterator[Hubs]:
    made = Hubs(POSTGRES_URL, postgres_template)
    yield made
    made.close()


def state(url: str) -> dict[str, Any]:
    """What a test could see of a database's contents: every table's rows, sequences, statistics."""
    with connect(url) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        rows = {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"').fetchall())) for t in tables}
        sequences = conn.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public'")
        stats = conn.execute(
            "SELECT relname, relpages, reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        )
        return {"rows": rows, "sequences": sorted(sequences.fetchall()), "stats": sorted(stats.fetchall())}


def write_a_little_of_everything(url: str) -> None:
    async def inside() -> None:
        database = Database(url)
        try:
            store = identity_store(database)
            for name in ("ada", "bob"):
                doc = normalize({"schemas": [USER_SCHEMA], "userName": name, "emails": [{"value": name}]}, USER_TYPE)
                await store.create(USER_TYPE, doc, source="tests")
            await TokenStore(database).create("ci", created_by="tests")
        finally:
            await database.dispose()

    asyncio.run(inside())
    with connect(url) as conn:
        conn.execute("ANALYZE identities")


def test_a_database_given_back_is_taken_again_in_the_templates_state(hubs: Hubs) -> None:
    url = hubs.take()
    fresh = state(url)
    write_a_little_of_everything(url)
    used = state(url)
    assert used != fresh and used["rows"]["identities"] and used["rows"]["audit_events"]
    hubs.give_back(url)
    again = hubs.take()
    assert again == url, "the emptied database is handed out again"
    assert state(again) == fresh
    with connect(again) as conn:
        assert {r[0] for r in conn.execute(WRITTEN)} == {"alembic_version", "audit_head"}


def test_a_database_whose_schema_a_test_changed_is_dropped_not_reused(hubs: Hubs) -> None:
    url = hubs.take()
    with connect(url) as conn:
        conn.execute("CREATE INDEX ix_left_behind ON identities (created)")
    hubs.give_back(url)
    again = hubs.take()
    assert again != url
    with connect(POSTGRES_URL) as admin:
        names = {r[0] for r in admin.execute("SELECT datname FROM pg_database")}
    assert sa.make_url(url).database not in names
