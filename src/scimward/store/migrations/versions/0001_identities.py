"""Identities, memberships, e-mail index and tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("resource_type", sa.String(32), nullable=False),
        sa.Column("user_name", sa.String(256)),
        sa.Column("user_name_lower", sa.String(256)),
        sa.Column("external_id", sa.String(256)),
        sa.Column("display_name", sa.String(256)),
        sa.Column("display_name_lower", sa.String(256)),
        sa.Column("active", sa.Boolean),
        sa.Column("doc", JsonDoc, nullable=False),
        sa.Column("effective_doc", JsonDoc),
        sa.Column("source", sa.String(128)),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("last_modified", sa.DateTime, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identities"),
    )
    op.create_index("uq_identities_user_name", "identities", ["resource_type", "user_name_lower"], unique=True)
    op.create_index("ix_identities_external_id", "identities", ["resource_type", "external_id"])
    op.create_index("ix_identities_display_name", "identities", ["resource_type", "display_name_lower"])
    op.create_index("ix_identities_listing", "identities", ["resource_type", "created", "id"])

    op.create_table(
        "memberships",
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("member_id", sa.String(36), nullable=False),
        sa.Column("member_type", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("group_id", "member_id", name="pk_memberships"),
        sa.ForeignKeyConstraint(
            ["group_id"], ["identities.id"], ondelete="CASCADE", name="fk_memberships_group_id_identities"
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["identities.id"], ondelete="CASCADE", name="fk_memberships_member_id_identities"
        ),
    )
    op.create_index("ix_memberships_member_id", "memberships", ["member_id"])

    op.create_table(
        "identity_emails",
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("value", sa.String(512)),
        sa.Column("value_lower", sa.String(512)),
        sa.Column("type", sa.String(64)),
        sa.Column("display", sa.String(256)),
        sa.Column("primary", sa.Boolean),
        sa.PrimaryKeyConstraint("identity_id", "position", name="pk_identity_emails"),
        sa.ForeignKeyConstraint(
            ["identity_id"], ["identities.id"], ondelete="CASCADE", name="fk_identity_emails_identity_id_identities"
        ),
    )
    op.create_index("ix_identity_emails_value_lower", "identity_emails", ["value_lower"])

    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("expires", sa.DateTime),
        sa.Column("last_used", sa.DateTime),
        sa.Column("revoked", sa.DateTime),
        sa.Column("user_id", sa.String(36)),
        sa.Column("patch_response", sa.String(16), nullable=False, server_default="resource"),
        sa.PrimaryKeyConstraint("id", name="pk_tokens"),
        sa.UniqueConstraint("name", name="uq_tokens_name"),
        sa.UniqueConstraint("token_hash", name="uq_tokens_token_hash"),
        sa.ForeignKeyConstraint(
            ["user_id"], ["identities.id"], ondelete="SET NULL", name="fk_tokens_user_id_identities"
        ),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_table("identity_emails")
    op.drop_table("memberships")
    op.drop_table("identities")
