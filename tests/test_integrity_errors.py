"""A unique constraint broken by a concurrent change is named by the constraint, on both dialects.

The rows are written straight to the tables, past the checks the stores make before a write, as two
writers that both passed those checks would; what the client is told must follow the constraint's
name, whatever words the driver uses. Each test has a database of its own (``hub_url``): rows written
past the stores leave the maintained counts behind, which the tests sharing ``database_url`` check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from scimward.scim.errors import InvalidValue, ScimError, UniquenessError
from scimward.store import Direct
from scimward.store.database import Database
from scimward.store.failures import UNIQUE, constraint_name
from scimward.store.tables import identities, targets, tokens
from scimward.store.timeutil import utcnow

pytestmark = pytest.mark.anyio


def _token(name: str) -> dict[str, Any]:
    return {"name": name, "token_hash": uuid.uuid4().hex, "created_by": "test", "created": utcnow()}


def _target(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "base_url": "http://127.0.0.1:9/scim/v2",
        "token_encrypted": "x",
        "config": {},
        "created": utcnow(),
    }


def _user(user_name: str) -> dict[str, Any]:
    now = utcnow()
    return {
        "id": str(uuid.uuid4()),
        "resource_type": "User",
        "user_name": user_name,
        "user_name_lower": user_name.lower(),
        "doc": {"userName": user_name},
        "created": now,
        "last_modified": now,
        "version": 1,
    }


CASES: list[tuple[str, sa.Table, Callable[[str], dict[str, Any]]]] = [
    ("uq_tokens_name", tokens, _token),
    ("uq_targets_name", targets, _target),
    ("uq_identities_user_name", identities, _user),
]


async def _broken(database: Database, table: sa.Table, row: Callable[[str], dict[str, Any]]) -> ScimError:
    name = f"dup-{uuid.uuid4().hex[:8]}"
    async with database.write() as conn:
        await conn.execute(table.insert(), row(name))
    with pytest.raises(ScimError) as raised:
        async with database.write() as conn:
            await conn.execute(table.insert(), row(name.upper() if table is identities else name))
    return raised.value


@pytest.mark.parametrize(("constraint", "table", "row"), CASES, ids=[case[0] for case in CASES])
async def test_a_broken_unique_constraint_is_named(
    hub_url: str, constraint: str, table: sa.Table, row: Callable[[str], dict[str, Any]]
) -> None:
    database = Database(hub_url)
    try:
        error = await _broken(database, table, row)
    finally:
        await database.dispose()
    assert isinstance(error, UniquenessError) and error.detail == UNIQUE[constraint]
    assert constraint_name(error.__cause__ or error) == constraint


async def test_the_driver_path_names_the_constraint_too(hub_url: str) -> None:
    """The write pipeline's transactions (``store._direct``) translate the same way as the engine's."""
    database = Database(hub_url)
    direct = Direct(database)
    name = f"dup-{uuid.uuid4().hex[:8]}"
    try:
        async with direct.transaction() as tx:
            await tx.run(tokens.insert().values(_token(name)), dynamic=True)
        with pytest.raises(UniquenessError, match="a token with that name already exists"):
            async with direct.transaction() as tx:
                await tx.run(tokens.insert().values(_token(name)), dynamic=True)
    finally:
        await database.dispose()


async def test_an_unnamed_conflict_is_a_retry_not_a_uniqueness_error(hub_url: str) -> None:
    """Two rows with one primary key (two creates racing on one id) name no unique constraint of ours."""
    database = Database(hub_url)
    row = _user(f"pk-{uuid.uuid4().hex[:8]}")
    try:
        async with database.write() as conn:
            await conn.execute(identities.insert(), row)
        with pytest.raises(InvalidValue, match="conflicts with another change"):
            async with database.write() as conn:
                await conn.execute(identities.insert(), {**row, "user_name": "other", "user_name_lower": "other"})
    finally:
        await database.dispose()
