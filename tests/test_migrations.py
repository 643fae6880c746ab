"""Migrations build exactly the tables the code declares, on both dialects."""

from __future__ import annotations

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from scimward.store.database import MIGRATIONS, create_sync_engine, upgrade
from scimward.store.tables import metadata


def test_migrated_schema_matches_the_tables(database_url: str) -> None:
    engine = create_sync_engine(database_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
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
