"""many PBXs: every row of one PBX's facts says which PBX

A ``pbx`` column (the PBX's id from ``pbxs:``) on the calls, rings,
incidents, callbacks, diversion and unstaffed intervals, AMI gaps, clock
steps, alerts, stream positions and checkpoints.  What is stored already
was written by a pbxwatch watching one PBX, which is ``main``; the server
default fills it.  The ids need no change: ``main``'s stay as they are, and
another PBX's are prefixed with its id (``pbxwatch.stamp``).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 03:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

#: a copy, not an import: a migration is what it was when written
TABLES = (
    "calls", "rings", "incidents", "callbacks", "diversion_intervals", "unstaffed_intervals",
    "ami_gaps", "clock_steps", "alerts", "stream_positions", "checkpoints",
)  # fmt: skip


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("pbx", sa.String(32), nullable=False, server_default="main"))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("pbx")
