"""checkpoints of the live state; callbacks know their message

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "checkpoints",
        sa.Column("source", sa.String(255), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("saved_at", sa.Float(), nullable=False),
        sa.Column("event_time", sa.Float(), nullable=True),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
    )
    with op.batch_alter_table("callbacks") as batch:
        batch.add_column(sa.Column("message_id", sa.String(64), nullable=True))
        batch.add_column(
            sa.Column("found_at_resync", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("deleted_at", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("callbacks") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("found_at_resync")
        batch.drop_column("message_id")
    op.drop_table("checkpoints")
