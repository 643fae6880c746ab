"""Passwords as Argon2id hashes beside the document, never inside it.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(256)))


def downgrade() -> None:
    with op.batch_alter_table("identities") as batch:
        batch.drop_column("password_hash")
