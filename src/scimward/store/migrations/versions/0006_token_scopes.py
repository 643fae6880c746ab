"""Token scopes: ``scim`` for SCIM clients, ``admin`` for the admin API (and SCIM too).

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tokens issued before scopes existed were SCIM client tokens.
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("scopes", sa.String(64), nullable=False, server_default="scim"))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("scopes")
