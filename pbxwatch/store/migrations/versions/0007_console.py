"""the web console: an audit log of who saw personal data, indexes for call search

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 23:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("entry_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("user", sa.String(255), nullable=False),
        sa.Column("roles", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(64), nullable=True),
        sa.Column("what", sa.String(255), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("entry_id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_unit", "audit_log", ["unit"])
    op.create_index("ix_calls_unit_started_at", "calls", ["unit", "started_at"])
    op.create_index("ix_calls_target_started_at", "calls", ["target", "started_at"])
    op.create_index("ix_calls_answered_by", "calls", ["answered_by"])
    op.create_index("ix_incidents_call_id", "incidents", ["call_id"])
    op.create_index("ix_rings_extension_started_at", "rings", ["extension", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_rings_extension_started_at", "rings")
    op.drop_index("ix_incidents_call_id", "incidents")
    op.drop_index("ix_calls_answered_by", "calls")
    op.drop_index("ix_calls_target_started_at", "calls")
    op.drop_index("ix_calls_unit_started_at", "calls")
    op.drop_table("audit_log")
