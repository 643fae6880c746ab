"""Exact resource counts per type, kept in step with inserts and deletes.

An unfiltered list's totalResults is read from here instead of counting every row. The count is
spread over 16 shard rows so concurrent creates do not queue on one row lock.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_counts",
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("shard", sa.Integer, nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("resource_type", "shard", name="pk_identity_counts"),
    )
    op.execute(
        "INSERT INTO identity_counts (resource_type, shard, count) "
        "SELECT resource_type, 0, count(*) FROM identities GROUP BY resource_type"
    )


def downgrade() -> None:
    op.drop_table("identity_counts")
