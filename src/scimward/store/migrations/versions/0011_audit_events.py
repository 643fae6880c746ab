"""The audit trail: hash-chained audit events and the head of each chain (store/audit.py).

Every lane's head starts at sequence 0 with the all-zero hash, so the first event of a lane chains
to a known value and an empty trail verifies.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

#: store.audit.LANES and GENESIS, as they were when this migration was written.
LANES = 16
GENESIS = "0" * 64


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("lane", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("subject", sa.String(512), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("lane", "seq", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_time", "audit_events", ["time"])
    head = op.create_table(
        "audit_head",
        sa.Column("lane", sa.SmallInteger, nullable=False, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("lane", name="pk_audit_head"),
    )
    op.bulk_insert(head, [{"lane": lane, "seq": 0, "prev_hash": GENESIS, "hash": GENESIS} for lane in range(LANES)])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_time", table_name="audit_events")
    op.drop_table("audit_events")
