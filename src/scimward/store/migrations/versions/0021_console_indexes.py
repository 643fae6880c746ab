"""Indexes the console's pages need on 100,000 identities (issue 18, bench/console_pages.py): ``sw``
filters and a change named by the head of its id on PostgreSQL (LIKE 'x%' uses a btree only in the C
collation), every change newest first.

Revision ID: 0021
Revises: 0017 (the coordinator re-chains it at merge)
"""

from __future__ import annotations

from alembic import op

revision = "0021"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.create_index(
            "ix_identities_user_name_prefix",
            "identities",
            ["resource_type", "user_name_lower"],
            postgresql_ops={"user_name_lower": "text_pattern_ops"},
        )
        op.create_index(
            "ix_identities_display_name_prefix",
            "identities",
            ["resource_type", "display_name_lower"],
            postgresql_ops={"display_name_lower": "text_pattern_ops"},
        )
        op.create_index("ix_changes_id_prefix", "changes", ["id"], postgresql_ops={"id": "text_pattern_ops"})
    op.create_index("ix_changes_created", "changes", ["created", "id"])


def downgrade() -> None:
    op.drop_index("ix_changes_created", "changes")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_changes_id_prefix", "changes")
        op.drop_index("ix_identities_display_name_prefix", "identities")
        op.drop_index("ix_identities_user_name_prefix", "identities")
