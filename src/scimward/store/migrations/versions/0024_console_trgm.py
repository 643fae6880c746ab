"""Indexes for the console's remaining slow pages on 100,000 identities (issue 18, bench/console_pages.py).

- ``co`` and ``ew`` filters on ``userName`` and ``displayName``: ``LIKE '%x%'`` cannot use a btree.
  On PostgreSQL a GIN index of trigrams (the ``pg_trgm`` extension, shipped with PostgreSQL and
  trusted since 13: the database's owner may create it) answers the match and its count. SQLite has
  no such index: its listing index (``resource_type, created, id``) gains the two lowered names, so a
  contains search walks the index in page order, tests each name without reading the identity's row,
  and stops at the page (the console does not count such a search on SQLite: ``SearchQuery.exact_total``).
- The dashboard's automation coverage counts identities by ``source``, and every target's accounts
  (active links, by resource type in a configuration's preview): both were scans of the tables'
  rows; ``identities (source)`` and ``links (target_id, status, resource_type)`` make them scans of
  an index.
- The NHI page's service accounts are the Users of a non-human ``userType``: found in every User's
  document (a scan of the JSON, 190 ms on SQLite); ``userType`` is promoted to ``user_type_lower``
  like ``userName``, filled here from the documents, and indexed.
- The pending changes, newest first: ``changes (status, created)`` gains ``id``, the page's last key, so
  SQLite reads the status's range in order instead of walking every change backwards by time.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

TRIGRAMS = {"ix_identities_user_name_trgm": "user_name_lower", "ix_identities_display_name_trgm": "display_name_lower"}
LISTING = ["resource_type", "created", "id"]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        for name, column in TRIGRAMS.items():
            op.create_index(
                name, "identities", [column], postgresql_using="gin", postgresql_ops={column: "gin_trgm_ops"}
            )
    else:
        op.drop_index("ix_identities_listing", "identities")
        op.create_index(
            "ix_identities_listing_names", "identities", [*LISTING, "user_name_lower", "display_name_lower"]
        )
    op.create_index("ix_identities_source", "identities", ["source"])
    _user_types()
    op.create_index("ix_links_target_status", "links", ["target_id", "status", "resource_type"])
    _changes_by_status(["status", "created", "id"])


def _user_types() -> None:
    """``user_type_lower``: a User's ``userType`` promoted like its ``userName``, lower-cased by Python as
    the store and the filter's value are, filled from the documents that have one."""
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("user_type_lower", sa.String(256)))
    bind = op.get_bind()
    identities = sa.table(
        "identities", sa.column("id", sa.String), sa.column("doc", sa.JSON), sa.column("user_type_lower", sa.String)
    )
    update = identities.update().where(identities.c.id == sa.bindparam("w_id"))
    rows = bind.execute(sa.select(identities.c.id, identities.c.doc).where(_has_user_type(bind.dialect.name)))
    filled = [
        {"w_id": row.id, "user_type_lower": row.doc["userType"].lower()}
        for row in rows
        if isinstance((row.doc or {}).get("userType"), str)
    ]
    for start in range(0, len(filled), 1000):
        bind.execute(update.values(user_type_lower=sa.bindparam("user_type_lower")), filled[start : start + 1000])
    op.create_index("ix_identities_user_type", "identities", ["resource_type", "user_type_lower"])


def _has_user_type(dialect: str) -> sa.TextClause:
    if dialect == "postgresql":
        return sa.text("resource_type = 'User' AND doc ? 'userType'")
    return sa.text("resource_type = 'User' AND json_type(doc, '$.userType') IS NOT NULL")


def _changes_by_status(columns: list[str]) -> None:
    op.drop_index("ix_changes_status", "changes")
    op.create_index("ix_changes_status", "changes", columns)


def downgrade() -> None:
    _changes_by_status(["status", "created"])
    op.drop_index("ix_identities_user_type", "identities")
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("user_type_lower")
    op.drop_index("ix_links_target_status", "links")
    op.drop_index("ix_identities_source", "identities")
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAMS:
            op.drop_index(name, "identities")
    else:
        op.drop_index("ix_identities_listing_names", "identities")
        op.create_index("ix_identities_listing", "identities", LISTING)
