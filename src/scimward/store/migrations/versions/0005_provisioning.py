"""Outbound provisioning: targets, the outbox, links and acknowledged memberships, the push log.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "targets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("base_url", sa.String(1024), nullable=False),
        sa.Column("token_encrypted", sa.Text, nullable=False),
        sa.Column("config", JsonDoc, nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("quarantined", sa.DateTime),
        sa.Column("quarantine_reason", sa.Text),
        sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("last_error_at", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_targets"),
        sa.UniqueConstraint("name", name="uq_targets_name"),
    )
    op.create_table(
        "outbox",
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("enqueued", sa.DateTime, nullable=False),
        sa.Column("due", sa.DateTime, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("claimed_until", sa.DateTime),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("target_id", "identity_id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE", name="fk_outbox_target_id_targets"),
    )
    op.create_index("ix_outbox_due", "outbox", ["due"])
    op.create_table(
        "links",
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("remote_id", sa.String(256), nullable=False),
        sa.Column("state", JsonDoc),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("acknowledged", sa.DateTime, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.PrimaryKeyConstraint("target_id", "identity_id", name="pk_links"),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE", name="fk_links_target_id_targets"),
    )
    op.create_index("ix_links_remote_id", "links", ["target_id", "remote_id"])
    op.create_table(
        "link_members",
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("member_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("target_id", "group_id", "member_id", name="pk_link_members"),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], ondelete="CASCADE", name="fk_link_members_target_id_targets"
        ),
    )
    op.create_table(
        "push_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("enqueued", sa.DateTime, nullable=False),
        sa.Column("finished", sa.DateTime, nullable=False),
        sa.Column("detail", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_push_log"),
        sa.ForeignKeyConstraint(
            ["target_id"], ["targets.id"], ondelete="CASCADE", name="fk_push_log_target_id_targets"
        ),
    )
    op.create_index("ix_push_log_target", "push_log", ["target_id", "finished"])


def downgrade() -> None:
    for table in ("push_log", "link_members", "links", "outbox", "targets"):
        op.drop_table(table)
