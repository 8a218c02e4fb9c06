"""callbacks deferred while their owner is away

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 23:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("deferred_reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("returned_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("returned_at")
        batch.drop_column("deferred_reason")
