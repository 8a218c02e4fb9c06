"""hot standby: a lease per PBX, with the epoch that fences its owner's writes

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 07:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pbx_leases",
        sa.Column("pbx", sa.String(32), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("pbx", name="pk_pbx_leases"),
    )


def downgrade() -> None:
    op.drop_table("pbx_leases")
