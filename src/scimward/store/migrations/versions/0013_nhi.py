"""Non-human identities: token owners and rotations, and the NHI worker's lifecycle state.

Agents and AgenticApplications are identities like Users (``identities.resource_type``); what is
new is who owns a hub token (``tokens.owner_id``: a token stops working when its owner leaves), the
token a rotation replaced (``tokens.rotated_from``), and ``nhi_states``: since when an NHI has had no
owner left (the grace period of the leaver cascade runs from there) and what the cascade did.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("owner_id", sa.String(36)))
        batch.add_column(sa.Column("rotated_from", sa.String(128)))
    op.create_index("ix_tokens_owner_id", "tokens", ["owner_id"])
    op.create_table(
        "nhi_states",
        sa.Column("identity_id", sa.String(36), nullable=False),
        sa.Column("orphaned_since", sa.DateTime),
        sa.Column("last_action", sa.String(32)),
        sa.Column("last_action_at", sa.DateTime),
        sa.Column("left_owner", sa.String(36)),
        sa.Column("owner_fingerprint", sa.String(64)),
        sa.Column("attest_since", sa.DateTime),
        sa.PrimaryKeyConstraint("identity_id", name="pk_nhi_states"),
    )


def downgrade() -> None:
    op.drop_table("nhi_states")
    op.drop_index("ix_tokens_owner_id", table_name="tokens")
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("rotated_from")
        batch.drop_column("owner_id")
