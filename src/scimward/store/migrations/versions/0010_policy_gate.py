"""The policy gate: changes, effective state beside the source state, policies and breakers.

``identities`` (with ``memberships`` and ``identity_emails``) keeps each identity's *source state*,
what its source last stated and what the SCIM endpoint answers it with. Where policy holds a change,
the *effective state* that targets receive differs, and the difference sits beside it:
``effective_states`` (an identity's effective document, NULL for "absent": a held create) and
``membership_holds`` (a membership the source added that is not effective yet, or removed that still
is). Both are empty while every change is allowed. ``identities.effective_doc``, reserved for this
in 0001, goes: the overlay table also covers identities their source deleted.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("identity_id", sa.String(64)),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("op", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.String(128)),
        sa.Column("actor", sa.String(128)),
        sa.Column("before", JsonDoc),
        sa.Column("after", JsonDoc),
        sa.Column("changed", JsonDoc),
        sa.Column("members_added", JsonDoc),
        sa.Column("members_removed", JsonDoc),
        sa.Column("decision", sa.String(8), nullable=False),
        sa.Column("rules", JsonDoc),
        sa.Column("approvals_needed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("approvals", JsonDoc),
        sa.Column("blast_radius", JsonDoc),
        sa.Column("held_by_breaker", JsonDoc),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("decided", sa.DateTime),
        sa.Column("expires", sa.DateTime),
        sa.Column("note", sa.Text),
    )
    op.create_index("ix_changes_identity", "changes", ["identity_id", "status"])
    op.create_index("ix_changes_status", "changes", ["status", "created"])
    op.create_table(
        "effective_states",
        sa.Column("identity_id", sa.String(36), primary_key=True),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("doc", JsonDoc),
        sa.Column("source_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("change_id", sa.String(36)),
    )
    op.create_table(
        "membership_holds",
        sa.Column("group_id", sa.String(36), primary_key=True),
        sa.Column("member_id", sa.String(36), primary_key=True),
        sa.Column("member_type", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("change_id", sa.String(36)),
    )
    op.create_index("ix_membership_holds_member_id", "membership_holds", ["member_id"])
    op.create_table(
        "policies",
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("document", JsonDoc, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("applied", sa.DateTime, nullable=False),
        sa.Column("applied_by", sa.String(128), nullable=False),
    )
    op.create_table(
        "breaker_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("change_id", sa.String(36), nullable=False),
        sa.Column("at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_breaker_events_target", "breaker_events", ["target_id", "at"])
    op.create_table(
        "breakers",
        sa.Column("target_id", sa.Integer, sa.ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("opened", sa.DateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    # A plain ALTER on both dialects (SQLite >= 3.35): a batch copy of ``identities`` on SQLite would
    # drop the table its memberships reference, and with foreign keys on they would go with it.
    op.execute("ALTER TABLE identities DROP COLUMN effective_doc")


def downgrade() -> None:
    op.add_column("identities", sa.Column("effective_doc", JsonDoc))
    for table in ("breakers", "breaker_events", "policies", "membership_holds", "effective_states", "changes"):
        op.drop_table(table)
