"""calls remember an AMI gap; gaps record what was reconciled

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("calls") as batch:
        batch.add_column(
            sa.Column("across_gap", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("ami_gaps") as batch:
        batch.add_column(sa.Column("reconciled", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ami_gaps") as batch:
        batch.drop_column("reconciled")
    with op.batch_alter_table("calls") as batch:
        batch.drop_column("across_gap")
