"""Access reviews: campaigns, their items, the memberships reviews revoked, reminders (issue 15).

A campaign has one item per (member, group) or (account, target) it covers; an item keeps its
context (when and by which source the access was granted, the member's state on each target) and
its decision. ``revoked_memberships`` is what the gate reads to hold a re-grant of revoked access.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "review_campaigns",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("scope_kind", sa.String(16), nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("reviewer", sa.String(300), nullable=False),
        sa.Column("default_decision", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("due", sa.DateTime, nullable=False),
        sa.Column("closed", sa.DateTime),
        sa.Column("closed_by", sa.String(256)),
        sa.Column("items", sa.Integer, nullable=False, server_default="0"),
        sa.UniqueConstraint("name", name="uq_review_campaigns_name"),
    )
    op.create_index("ix_review_campaigns_status", "review_campaigns", ["status", "due"])
    op.create_table(
        "review_items",
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("number", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("member_id", sa.String(36), nullable=False),
        sa.Column("member_name", sa.String(256), nullable=False),
        sa.Column("group_id", sa.String(36)),
        sa.Column("group_name", sa.String(256)),
        sa.Column("target_id", sa.Integer),
        sa.Column("target_name", sa.String(128)),
        sa.Column("reviewers", JsonDoc),
        sa.Column("granted", sa.DateTime),
        sa.Column("granted_by", sa.String(128)),
        sa.Column("granted_change", sa.String(36)),
        sa.Column("context", JsonDoc),
        sa.Column("recommendation", sa.String(8), nullable=False),
        sa.Column("reasons", JsonDoc),
        sa.Column("decision", sa.String(8)),
        sa.Column("decided_by", sa.String(256)),
        sa.Column("decided", sa.DateTime),
        sa.Column("note", sa.Text),
        sa.Column("defaulted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("outcome", sa.String(16)),
        sa.Column("outcome_change", sa.String(36)),
        sa.Column("outcome_detail", sa.Text),
        sa.PrimaryKeyConstraint("campaign_id", "number", name="pk_review_items"),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["review_campaigns.id"],
            ondelete="CASCADE",
            name="fk_review_items_campaign_id_review_campaigns",
        ),
    )
    op.create_index("ix_review_items_decision", "review_items", ["campaign_id", "decision"])
    op.create_index("ix_review_items_member", "review_items", ["member_id"])
    op.create_table(
        "revoked_memberships",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("member_id", sa.String(36), nullable=False),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("campaign_name", sa.String(128), nullable=False),
        sa.Column("item_number", sa.Integer, nullable=False),
        sa.Column("revoked", sa.DateTime, nullable=False),
        sa.Column("revoked_by", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id", name="pk_revoked_memberships"),
    )
    op.create_table(
        "review_reminders",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(36), nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("items", sa.Integer, nullable=False),
        sa.Column("sent", sa.DateTime, nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["review_campaigns.id"],
            ondelete="CASCADE",
            name="fk_review_reminders_campaign_id_review_campaigns",
        ),
    )
    op.create_index("ix_review_reminders_campaign", "review_reminders", ["campaign_id", "sent"])


def downgrade() -> None:
    op.drop_index("ix_review_reminders_campaign", table_name="review_reminders")
    op.drop_table("review_reminders")
    op.drop_table("revoked_memberships")
    op.drop_index("ix_review_items_member", table_name="review_items")
    op.drop_index("ix_review_items_decision", table_name="review_items")
    op.drop_table("review_items")
    op.drop_index("ix_review_campaigns_status", table_name="review_campaigns")
    op.drop_table("review_campaigns")
