"""Which schema a database is at, and whether this scimward can use it, without loading Alembic.

Every command but ``db upgrade`` and ``serve`` checks rather than migrates: migrating is a step an
operator takes on purpose (after a backup, once for all processes). The revisions this scimward
ships are read from the migration files' ``revision`` and ``down_revision`` lines with ``ast``,
not by importing Alembic (a quarter of a second per command); ``tests/test_schema_version.py``
checks that the heads found so are Alembic's own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa

from scimward.store.database import MIGRATIONS, create_sync_engine, shown_url, unavailable, upgrade
from scimward.store.errors import SchemaMismatch

VERSIONS = MIGRATIONS / "versions"


def _assignments(path: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in {"revision", "down_revision"} and node.value:
                    found[target.id] = ast.literal_eval(node.value)
    return found


def shipped_revisions() -> tuple[set[str], set[str]]:
    """Every revision the migrations define, and the heads among them (those nothing revises)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in sorted(VERSIONS.glob("*.py")):
        values = _assignments(path)
        revision = values.get("revision")
        if not isinstance(revision, str):
            continue
        revisions.add(revision)
        down = values.get("down_revision")
        parents |= {down} if isinstance(down, str) else set(down) if isinstance(down, tuple | list) else set()
    return revisions, revisions - parents


def database_revisions(url: str) -> tuple[set[str], bool]:
    """The revisions the database is at, and whether it holds no table at all."""
    engine = create_sync_engine(url)
    try:
        with engine.connect() as connection:
            tables = sa.inspect(connection).get_table_names()
            if "alembic_version" not in tables:
                return set(), not tables
            rows = connection.execute(sa.text("SELECT version_num FROM alembic_version"))
            return {str(row[0]) for row in rows}, False
    except sa.exc.OperationalError as exc:
        raise unavailable(url, exc) from exc
    finally:
        engine.dispose()


def check_schema(url: str) -> bool:
    """Make sure the database at ``url`` has the schema this scimward expects, without migrating it.

    A database with no tables at all (a new SQLite file, a new PostgreSQL database) is given the
    schema: there is nothing to migrate, and a first ``scimward token create`` should just work.
    Returns whether it did that. A database at an older (or unknown) revision is refused with
    ``SchemaMismatch``, naming the command that migrates it.
    """
    current, empty = database_revisions(url)
    known, heads = shipped_revisions()
    if current == heads:
        return False
    if empty:
        upgrade(url)
        return True
    shown, needed = ", ".join(sorted(current)) or "none", ", ".join(sorted(heads))
    if current - known:
        raise SchemaMismatch(
            f"the database {shown_url(url)} is at schema revision {shown}, newer than this "
            f"scimward knows ({needed}): upgrade scimward"
        )
    raise SchemaMismatch(
        f"the database {shown_url(url)} is at schema revision {shown}; this scimward needs "
        f"{needed}: run `scimward db upgrade` (after a backup)"
    )
