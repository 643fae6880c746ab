"""Reconcile: findings (drift between desired, last pushed and actual state) and reconcile runs.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("identity_id", sa.String(36)),
        sa.Column("remote_id", sa.String(256)),
        sa.Column("attribute", sa.String(512), nullable=False),
        sa.Column("desired", JsonDoc),
        sa.Column("last_pushed", JsonDoc),
        sa.Column("actual", JsonDoc),
        sa.Column("detail", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("first_seen", sa.DateTime, nullable=False),
        sa.Column("last_seen", sa.DateTime, nullable=False),
        sa.Column("resolved_at", sa.DateTime),
        sa.Column("repaired_at", sa.DateTime),
        sa.Column("repair", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_findings"),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], ondelete="CASCADE", name="fk_findings_target_id_targets"
        ),
    )
    # One open finding per drift; resolved ones stay as history beside it.
    op.create_index(
        "uq_findings_open",
        "findings",
        ["target_id", "kind", "subject", "attribute"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_index("ix_findings_target_status", "findings", ["target_id", "status", "last_seen"])
    op.create_table(
        "reconcile_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("trigger", sa.String(16), nullable=False),
        sa.Column("repair", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started", sa.DateTime, nullable=False),
        sa.Column("heartbeat", sa.DateTime, nullable=False),
        sa.Column("finished", sa.DateTime),
        sa.Column("users_read", sa.Integer, nullable=False, server_default="0"),
        sa.Column("groups_read", sa.Integer, nullable=False, server_default="0"),
        sa.Column("counts", JsonDoc),
        sa.Column("error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_reconcile_runs"),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], ondelete="CASCADE", name="fk_reconcile_runs_target_id_targets"
        ),
    )
    op.create_index("ix_reconcile_runs_target", "reconcile_runs", ["target_id", "started"])


def downgrade() -> None:
    op.drop_table("reconcile_runs")
    op.drop_table("findings")
