"""A User's ``userType`` is promoted to an indexed column (migration 0024, issue 18: the NHI page's
service accounts on 100,000 users), kept with the document by every write, and searched there."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa

from scimward.policy import PolicyGate, identity_store
from scimward.scim.filter import parse_filter
from scimward.scim.patch import PATCH_OP_SCHEMA
from scimward.scim.resource import normalize
from scimward.scim.resource_types import USER_SCHEMA, USER_TYPE
from scimward.store.database import Database
from scimward.store.filter_sql import FilterCompiler
from scimward.store.identity import SearchQuery
from scimward.store.tables import identities


def test_user_type_is_compared_on_its_lower_cased_column() -> None:
    for dialect in ("sqlite", "postgresql"):
        condition = FilterCompiler(USER_TYPE, dialect).compile(parse_filter('userType eq "ServiceAccount"'))
        text = str(sa.select(identities.c.id).where(condition).compile(compile_kwargs={"literal_binds": True}))
        assert "identities.user_type_lower = 'serviceaccount'" in text and "doc" not in text


async def _follow(url: str) -> list[tuple[list[str], str | None]]:
    """After each write: the userNames a search for service accounts finds, and the column as stored."""
    db = Database(url)
    try:
        store = identity_store(db, PolicyGate(db, refresh_seconds=0))
        seen: list[tuple[list[str], str | None]] = []

        async def look(user_id: str) -> None:
            found = await store.search(USER_TYPE, SearchQuery(filter=parse_filter('userType eq "serviceACCOUNT"')))
            async with db.read() as conn:
                column = (
                    await conn.execute(sa.select(identities.c.user_type_lower).where(identities.c.id == user_id))
                ).scalar_one()
            seen.append((sorted(str(i.doc["userName"]) for i in found.items), column))

        body = {"schemas": [USER_SCHEMA], "userName": "svc-build", "userType": "ServiceAccount"}
        user = await store.create(USER_TYPE, normalize(body, USER_TYPE), "scim:okta", "okta")
        person = {"schemas": [USER_SCHEMA], "userName": "ada", "userType": "Employee"}
        await store.create(USER_TYPE, normalize(person, USER_TYPE), "scim:okta", "okta")
        await look(user.id)
        patch = {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "replace", "path": "userType", "value": "Bot"}]}
        await store.patch(USER_TYPE, user.id, patch, source="scim:okta", actor="okta")
        await look(user.id)
        again = {"schemas": [USER_SCHEMA], "userName": "svc-build", "userType": "SERVICEACCOUNT"}
        await store.put(USER_TYPE, user.id, normalize(again, USER_TYPE), source="scim:okta", actor="okta")
        await look(user.id)
        await store.put(USER_TYPE, user.id, normalize({"schemas": [USER_SCHEMA], "userName": "svc-build"}, USER_TYPE))
        await look(user.id)
        return seen
    finally:
        await db.dispose()


def test_every_write_keeps_the_column_with_the_document(hub_url: str) -> None:
    assert asyncio.run(_follow(hub_url)) == [
        (["svc-build"], "serviceaccount"),
        ([], "bot"),
        (["svc-build"], "serviceaccount"),
        ([], None),
    ]
