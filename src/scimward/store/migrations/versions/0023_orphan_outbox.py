"""Orphaned accounts reconcile deactivates go through the outbox (issue 10, item 9): an outbox row
and a push log row may name an account by ``orphan:<its id on the target>``, longer than an identity id.

Revision ID: 0023
Revises: 0021 (written against 0017; chained after the console indexes at the merge)
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None


def _widen(length: int) -> None:
    # SQLite rebuilds the tables (batch mode); the claim index, on an expression, is made again after.
    op.drop_index("ix_outbox_claim", table_name="outbox")
    for table in ("outbox", "push_log"):
        with op.batch_alter_table(table) as batch:
            batch.alter_column("identity_id", type_=sa.String(length), existing_nullable=False)
    op.create_index("ix_outbox_claim", "outbox", [sa.text("resource_type DESC"), "due"])


def upgrade() -> None:
    _widen(300)


def downgrade() -> None:
    op.execute("delete from outbox where resource_type = 'Orphan'")
    op.execute("update push_log set identity_id = substr(identity_id, 1, 36) where length(identity_id) > 36")
    _widen(36)
