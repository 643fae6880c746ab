"""The PostgreSQL databases ``hub_url`` hands out: each test gets one in the migrated template's state.

Making one is ``CREATE DATABASE ... TEMPLATE`` and dropping it ``DROP DATABASE``: about a third of a
second a test together, on hundreds of tests. So a database a test is done with is emptied back to
the template's state instead, and handed to the next test of the same worker:

- every other session on it is ended (``pg_terminate_backend``), as ``DROP DATABASE ... WITH (FORCE)``
  would end them;
- the tables the test wrote (a heap file that is not empty) are truncated, which gives them a new,
  empty file and "never analysed" statistics, as in a database made from the template;
- the rows the migrations seeded (the audit trail's lane heads, the schema's version) are put back
  as the template has them, and every sequence is set back to the template's value.

The schema is compared with the template's first (tables, columns, indexes, constraints, triggers,
functions, extensions, database settings, the schema's version): a database whose schema a test
changed, or whose reset fails in any way, is dropped and a new one made from the template.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

#: One text for everything a test could change in a schema; equal texts, equal schemas.
FINGERPRINT = """
SELECT md5(string_agg(item, E'\\n' ORDER BY item)) FROM (
    SELECT format('column %s.%s %s %s %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE n.nspname = 'public' AND a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'v', 'm', 'p')
    UNION ALL SELECT format('index %s %s', indexname, indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL SELECT format('constraint %s %s', conname, pg_get_constraintdef(c.oid))
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = 'public'
    UNION ALL SELECT format('trigger %s', tgname) FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL SELECT format('function %s', p.oid::regprocedure)
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
    UNION ALL SELECT format('extension %s %s', extname, extversion) FROM pg_extension
    UNION ALL SELECT format('setting %s', s.setconfig) FROM pg_db_role_setting s
        JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = current_database()
    UNION ALL SELECT format('version %s', version_num) FROM alembic_version
) AS schema(item)
"""

WRITTEN = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r' AND pg_relation_size(c.oid) > 0
"""

SEQUENCES = "SELECT sequencename, start_value FROM pg_sequences WHERE schemaname = 'public'"

OTHERS = """
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
"""


def connect(url: str) -> psycopg.Connection[Any]:
    """A psycopg connection (autocommit) to the database a SQLAlchemy URL names."""
    libpq = sa.make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(libpq, autocommit=True)


class SchemaChanged(Exception):
    """A test changed a hub database's schema: it cannot be emptied back to the template's state."""


class Hubs:
    """This worker's hub databases on PostgreSQL, made from ``template`` and reused (see the module)."""

    def __init__(self, server_url: str, template: str) -> None:
        self.server_url = server_url
        self.template = template
        self.free: list[str] = []
        self._made: set[str] = set()
        self._fingerprint = ""
        #: The template's seeded rows (table -> its rows) and sequences (name -> start value).
        self._seeds: dict[str, list[tuple[Any, ...]]] = {}
        self._sequences: dict[str, int] = {}

    def url(self, name: str) -> str:
        return sa.make_url(self.server_url).set(database=name).render_as_string(hide_password=False)

    def _connect(self, name: str) -> psycopg.Connection[Any]:
        return connect(self.url(name))

    def _admin(self) -> psycopg.Connection[Any]:
        name = sa.make_url(self.server_url).database
        assert name is not None
        return self._connect(name)

    def take(self) -> str:
        """A database in the template's state: one emptied after an earlier test, else a new one."""
        if self.free:
            return self.url(self.free.pop())
        name = f"scimward_hub_{uuid.uuid4().hex[:10]}"
        with self._admin() as admin:
            create = sql.SQL("CREATE DATABASE {} TEMPLATE {}")
            admin.execute(create.format(sql.Identifier(name), sql.Identifier(self.template)))
        self._made.add(name)
        if not self._fingerprint:
            self._learn(name)
        return self.url(name)

    def give_back(self, url: str) -> None:
        """Empty the database back to the template's state for the next test; drop it if that fails."""
        name = sa.make_url(url).database
        assert name is not None and name in self._made
        try:
            self._reset(name)
        except (psycopg.Error, SchemaChanged):
            self.drop(name)
            return
        self.free.append(name)

    def drop(self, name: str) -> None:
        self._made.discard(name)
        with self._admin() as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def close(self) -> None:
        for name in list(self._made):
            self.drop(name)
        self.free.clear()

    def _learn(self, name: str) -> None:
        """Read what a database fresh from the template holds: its schema's fingerprint, seeds, sequences."""
        with self._connect(name) as conn:
            self._fingerprint = str(conn.execute(FINGERPRINT).fetchone()[0])  # type: ignore[index]
            for (table,) in conn.execute(WRITTEN).fetchall():
                rows = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()
                self._seeds[str(table)] = [tuple(row) for row in rows]
            self._sequences = {str(seq): int(start) for seq, start in conn.execute(SEQUENCES).fetchall()}

    def _reset(self, name: str) -> None:
        with self._connect(name) as conn:
            conn.execute(OTHERS)
            conn.execute("SET lock_timeout = '10s'")
            fingerprint = conn.execute(FINGERPRINT).fetchone()
            if fingerprint is None or fingerprint[0] != self._fingerprint:
                raise SchemaChanged(name)
            written = {str(table) for (table,) in conn.execute(WRITTEN).fetchall()} | set(self._seeds)
            with conn.transaction():
                if written:
                    tables = sql.SQL(", ").join(sql.Identifier(table) for table in sorted(written))
                    conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(tables))
                for table, rows in self._seeds.items():
                    if rows:
                        marks = sql.SQL(", ").join(sql.Placeholder() for _ in rows[0])
                        insert = sql.SQL("INSERT INTO {} VALUES ({})").format(sql.Identifier(table), marks)
                        conn.cursor().executemany(insert, rows)
                for sequence, start in self._sequences.items():
                    conn.execute("SELECT setval(%s, %s, false)", (sql.Identifier(sequence).as_string(conn), start))
