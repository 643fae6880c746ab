"""Count removals too, so a cached position index knows when positions have shifted.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_counts") as batch:
        batch.add_column(sa.Column("removed", sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("identity_counts") as batch:
        batch.drop_column("removed")
