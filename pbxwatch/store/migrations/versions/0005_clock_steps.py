"""clock steps of the PBX that pbxwatch adopted; alerts a replay made are withheld

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00
"""

from __future__ import annotations

import time

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "clock_steps",
        sa.Column("step_id", sa.String(64), primary_key=True),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("delta", sa.Float(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("confirmed_by", sa.Integer(), nullable=False),
    )
    op.create_index("ix_clock_steps_at", "clock_steps", ["at"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("withheld", sa.String(16), nullable=True))
    # alerts of replays before this revision are indistinguishable from live
    # ones; those never published and older than a day are withheld as old
    op.execute(
        "UPDATE alerts SET withheld = 'too_old' WHERE sent_at IS NULL "
        f"AND created_at < {time.time() - 86400:.0f}"
    )


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("withheld")
    op.drop_index("ix_clock_steps_at", "clock_steps")
    op.drop_table("clock_steps")
