"""Daily evidence snapshots: coverage, propagation risk and findings per framework id (issue 16).

Revision ID: 0017
Revises: 0016 (written against 0012; chained after the console's 0016 when main was merged)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "evidence_snapshots",
        sa.Column("day", sa.Date, nullable=False),
        sa.Column("taken", sa.DateTime, nullable=False),
        sa.Column("figures", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
        sa.PrimaryKeyConstraint("day", name="pk_evidence_snapshots"),
    )


def downgrade() -> None:
    op.drop_table("evidence_snapshots")
