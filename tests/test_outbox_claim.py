"""Claiming outbox rows walks ``ix_outbox_claim`` instead of sorting every due row (both dialects)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from scimward.store.database import Database
from scimward.store.provisioning.outbox import Outbox
from scimward.store.provisioning.targets import TargetRepository
from scimward.store.timeutil import utcnow

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(hub_url: str) -> AsyncIterator[Database]:
    database = Database(hub_url)
    yield database
    await database.dispose()


async def test_a_large_outbox_is_claimed_users_first_along_the_index(db: Database) -> None:
    target = (await TargetRepository(db).add("app", "http://127.0.0.1:9/scim/v2", "x", {})).id
    outbox = Outbox(db)
    await outbox.enqueue_all(target, "Group", [f"g-{i:04d}" for i in range(50)])
    users = [f"u-{i:05d}" for i in range(20_000)]  # the size at which the plan matters
    await outbox.enqueue_all(target, "User", users)

    claimed = await outbox.claim(100, timedelta(minutes=2))
    assert len(claimed) == 100 and {item.resource_type for item in claimed} == {"User"}
    assert len({item.identity_id for item in claimed}) == 100

    statement = outbox.due_rows(utcnow(), 100)
    dialect = postgresql.dialect() if db.dialect == "postgresql" else sqlite.dialect()  # type: ignore[no-untyped-call]
    sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
    async with db.read() as conn:
        if db.dialect == "postgresql":
            # enqueue_all gave the planner statistics; without them it sorted every due row per claim.
            assert (
                await conn.execute(sa.text("select reltuples from pg_class where relname = 'outbox'"))
            ).scalar_one() >= len(users)
            plan = "\n".join(row[0] for row in await conn.execute(sa.text("explain " + sql)))
        else:
            plan = "\n".join(str(row[-1]) for row in await conn.execute(sa.text("explain query plan " + sql)))
    assert "ix_outbox_claim" in plan and "Sort" not in plan and "TEMP B-TREE" not in plan, plan


async def test_groups_are_claimed_when_no_user_is_due(db: Database) -> None:
    target = (await TargetRepository(db).add("app", "http://127.0.0.1:9/scim/v2", "x", {})).id
    outbox = Outbox(db)
    await outbox.enqueue_all(target, "User", ["u-1", "u-2"])
    await outbox.enqueue_all(target, "Group", ["g-1"])
    first = await outbox.claim(2, timedelta(minutes=2))
    second = await outbox.claim(2, timedelta(minutes=2))
    assert [i.resource_type for i in first] == ["User", "User"]
    assert [(i.resource_type, i.identity_id) for i in second] == [("Group", "g-1")]
