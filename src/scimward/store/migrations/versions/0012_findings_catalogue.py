"""One findings catalogue: findings that belong to no target, an owner, and accepted risk.

Reconcile's findings are a target's drift. Governance finds problems that belong to the hub itself
(a group without an owner, a non-human identity past its expiry, an HR record nobody matches), so
``target_id`` becomes optional. A finding names who must act on it (``owner``) and can be
acknowledged or accepted as a risk until a date, by someone, for a reason: it stays live (not
resolved), and an acceptance that runs out makes it open again.

A live finding (open, acknowledged or risk_accepted) is unique per (target, kind, subject,
attribute); one without a target per (kind, subject, attribute), by a second partial index, since
NULLs never collide in the first.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

LIVE = "status <> 'resolved'"


def upgrade() -> None:
    op.drop_index("uq_findings_open", table_name="findings")
    with op.batch_alter_table("findings") as batch:
        batch.alter_column("target_id", existing_type=sa.Integer, nullable=True)
        batch.add_column(sa.Column("owner", sa.String(256)))
        batch.add_column(sa.Column("accepted_until", sa.DateTime))
        batch.add_column(sa.Column("accepted_by", sa.String(256)))
        batch.add_column(sa.Column("accepted_reason", sa.Text))
    op.create_index(
        "uq_findings_open",
        "findings",
        ["target_id", "kind", "subject", "attribute"],
        unique=True,
        sqlite_where=sa.text(LIVE),
        postgresql_where=sa.text(LIVE),
    )
    op.create_index(
        "uq_findings_open_hub",
        "findings",
        ["kind", "subject", "attribute"],
        unique=True,
        sqlite_where=sa.text(f"target_id IS NULL AND {LIVE}"),
        postgresql_where=sa.text(f"target_id IS NULL AND {LIVE}"),
    )
    op.create_index("ix_findings_kind_status", "findings", ["kind", "status"])


def downgrade() -> None:
    op.drop_index("ix_findings_kind_status", table_name="findings")
    op.drop_index("uq_findings_open_hub", table_name="findings")
    op.drop_index("uq_findings_open", table_name="findings")
    op.execute("DELETE FROM findings WHERE target_id IS NULL")
    op.execute("UPDATE findings SET status = 'open' WHERE status <> 'resolved'")
    with op.batch_alter_table("findings") as batch:
        batch.drop_column("accepted_reason")
        batch.drop_column("accepted_by")
        batch.drop_column("accepted_until")
        batch.drop_column("owner")
        batch.alter_column("target_id", existing_type=sa.Integer, nullable=False)
    op.create_index(
        "uq_findings_open",
        "findings",
        ["target_id", "kind", "subject", "attribute"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
