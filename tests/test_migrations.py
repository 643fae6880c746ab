"""Migrations build exactly the tables the code declares, on both dialects."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from scimward.store.database import MIGRATIONS, create_sync_engine, upgrade
from scimward.store.tables import metadata


def _declared_for(dialect: str) -> Callable[..., bool]:
    """Leave out what the tables declare for the other dialect only (``Index(...).ddl_if(dialect=...)``)."""

    def include(item: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
        only = getattr(item, "_ddl_if", None)
        return only is None or only.dialect is None or only.dialect == dialect

    return include


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": _declared_for(conn.dialect.name)})
            diff = compare_metadata(context, metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_upgrade_is_idempotent(database_url: str) -> None:
    upgrade(database_url)
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            version = conn.execute(sa.text("select version_num from alembic_version")).scalar_one()
    finally:
        engine.dispose()
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    assert version == ScriptDirectory.from_config(config).get_current_head()
