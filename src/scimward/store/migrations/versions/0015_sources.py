"""Sources (issue 17): named sources, the source a SCIM token belongs to, and HR sources' records.

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

JsonDoc = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("config", JsonDoc),
        sa.Column("created", sa.DateTime, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("last_import", sa.DateTime),
        sa.PrimaryKeyConstraint("id", name="pk_sources"),
        sa.UniqueConstraint("name", name="uq_sources_name"),
    )
    op.create_table(
        "hr_records",
        sa.Column("source_id", sa.Integer, nullable=False),
        sa.Column("employee_id", sa.String(128), nullable=False),
        sa.Column("identity_id", sa.String(36)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("hire_date", sa.Date),
        sa.Column("termination_date", sa.Date),
        sa.Column("manager_id", sa.String(128)),
        sa.Column("department", sa.String(256)),
        sa.Column("email", sa.String(512)),
        sa.Column("attributes", JsonDoc, nullable=False),
        sa.Column("set_active", sa.Boolean),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("imported", sa.DateTime, nullable=False),
        sa.PrimaryKeyConstraint("source_id", "employee_id", name="pk_hr_records"),
        sa.ForeignKeyConstraint(
            ["source_id"], ["sources.id"], name="fk_hr_records_source_id_sources", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_hr_records_identity_id", "hr_records", ["identity_id"])
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("source", sa.String(64)))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("source")
    op.drop_index("ix_hr_records_identity_id", "hr_records")
    op.drop_table("hr_records")
    op.drop_table("sources")
