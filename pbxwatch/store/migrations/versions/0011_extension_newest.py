"""call search by extension: the newest calls straight off the indexes

A search by extension (the calls that rang it, were for it or were answered
by it) shows the newest 50 first and counts up to 10 000.  With 0010's
indexes it collected an agent's ids cheaply (~14 000 calls a year of a
contact-centre agent) but then had to read every one of those calls by key
to find the newest: ~100 ms, and the count another ~45 ms, p95 313 ms on a
year of a large municipality.

Now each ring carries its call's start (``rings.call_started_at``, a copy of
``calls.started_at``, filled here for the rings already stored; the writer
sets it on new ones), and the three sources have indexes in the search's
own order (the call's start descending, then its id):

- rings (extension, call_started_at DESC, call_id, started_at): the ring's
  own start is there too, since a time range also bounds it;
- calls (target, started_at DESC, call_id);
- calls (answered_by, started_at DESC, call_id).

An extension's page is then a merge of three index-only scans, newest
first, stopped after the page; its count the same merge stopped at 10 001.
They take the place of 0010's three ascending indexes (the plain target
filter uses the new one the same way).

On PostgreSQL the fill rewrites every ring (a hash join with the calls), so
the table is twice its size until autovacuum (or ``VACUUM ANALYZE rings``)
has been through it, and index-only scans read the table until then.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 02:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

Columns = Sequence[str | sa.TextClause]
#: (table, index of 0010, its columns, the new one, its columns)
REPLACED: list[tuple[str, str, Columns, str, Columns]] = [
    ("rings", "ix_rings_extension_started_at_call_id", ["extension", "started_at", "call_id"],
     "ix_rings_extension_call_started_at_desc",
     ["extension", sa.text("call_started_at DESC"), "call_id", "started_at"]),
    ("calls", "ix_calls_target_started_at_call_id", ["target", "started_at", "call_id"],
     "ix_calls_target_started_at_desc", ["target", sa.text("started_at DESC"), "call_id"]),
    ("calls", "ix_calls_answered_by_started_at_call_id", ["answered_by", "started_at", "call_id"],
     "ix_calls_answered_by_started_at_desc",
     ["answered_by", sa.text("started_at DESC"), "call_id"]),
]  # fmt: skip


def upgrade() -> None:
    op.add_column("rings", sa.Column("call_started_at", sa.Float(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "UPDATE rings SET call_started_at = calls.started_at "
            "FROM calls WHERE calls.call_id = rings.call_id"
        )
    else:
        op.execute(
            "UPDATE rings SET call_started_at = "
            "(SELECT started_at FROM calls WHERE calls.call_id = rings.call_id)"
        )
    # a ring without its call (never written so; a search cannot show it
    # anyway): its own start, so that the column can be NOT NULL
    op.execute("UPDATE rings SET call_started_at = started_at WHERE call_started_at IS NULL")
    with op.batch_alter_table("rings") as batch:
        batch.alter_column("call_started_at", existing_type=sa.Float(), nullable=False)
    for table, old, _, new, columns in REPLACED:
        op.create_index(new, table, columns)
        op.drop_index(old, table)


def downgrade() -> None:
    for table, old, old_columns, new, _ in REPLACED:
        op.create_index(old, table, old_columns)
        op.drop_index(new, table)
    with op.batch_alter_table("rings") as batch:
        batch.drop_column("call_started_at")
