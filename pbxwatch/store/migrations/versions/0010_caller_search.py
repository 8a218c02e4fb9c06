"""call search on a year of a large municipality: caller digits, extensions

Caller digits.
``LIKE '%1234%'`` (the console's caller filter: any digits, or the masked
form) cannot use a B-tree: on a year of a large municipality (2 million
calls) every such search read the whole table, about 1 s.  On PostgreSQL
this is a GIN index with ``gin_trgm_ops`` (the ``pg_trgm`` extension, a
trusted one since PostgreSQL 13: the database's owner may create it) on
both number columns, which the search's ``caller_e164 LIKE .. OR caller
LIKE ..`` uses as a bitmap OR.  SQLite has no such index: there it is a
plain one on the same columns (the name must exist for the schema to equal
the models), which a search can at least scan instead of the table.

Extensions.  A search by extension first collects the ids of the calls that
rang it, were for it or were answered by it.  For a contact-centre agent
that is ~14 000 calls a year, and reading the rings' and calls' rows for
their ids took ~180 ms before the calls themselves were read.  The three
indexes it uses now end in ``call_id`` (index-only scans, ~4 ms) and take
the place of those of migration 0007 that they extend.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 00:20:00
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NAME = "ix_calls_caller_e164_caller"
#: (table, old index of 0007, its columns, the new one, its columns)
EXTENDED = [
    ("rings", "ix_rings_extension_started_at", ["extension", "started_at"],
     "ix_rings_extension_started_at_call_id", ["extension", "started_at", "call_id"]),
    ("calls", "ix_calls_target_started_at", ["target", "started_at"],
     "ix_calls_target_started_at_call_id", ["target", "started_at", "call_id"]),
    ("calls", "ix_calls_answered_by", ["answered_by"],
     "ix_calls_answered_by_started_at_call_id", ["answered_by", "started_at", "call_id"]),
]  # fmt: skip


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_index(
        NAME,
        "calls",
        ["caller_e164", "caller"],
        postgresql_using="gin",
        postgresql_ops={"caller_e164": "gin_trgm_ops", "caller": "gin_trgm_ops"},
    )
    for table, old, _, new, columns in EXTENDED:
        op.create_index(new, table, columns)
        op.drop_index(old, table)


def downgrade() -> None:
    for table, old, old_columns, new, _ in EXTENDED:
        op.create_index(old, table, old_columns)
        op.drop_index(new, table)
    op.drop_index(NAME, "calls")
