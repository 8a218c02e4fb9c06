"""The database: connect, migrate, check the schema, upsert, load state back.

PostgreSQL (asyncpg) in production, SQLite (aiosqlite) as the embedded
default.  Every write is an upsert on the table's natural key, so the same
record written twice (a replay, a resync after restart) leaves one row.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Table, case, event, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pbxwatch.core.callbacks import Callback
from pbxwatch.core.incidents import Incident
from pbxwatch.store import models
from pbxwatch.store.rows import Row, callback_of_row, incident_of_row

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
TABLES: dict[str, Table] = {
    t.name: t for t in models.Base.metadata.sorted_tables
}  # fmt: skip


class SchemaError(RuntimeError):
    """The database is not at the schema this pbxwatch version expects."""


def default_url(data_dir: Path) -> str:
    return f"sqlite+aiosqlite:///{data_dir / 'pbxwatch.db'}"


def make_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(url, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # readers (report) never block the writer
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=5000")
            # erased means erased: deleted and overwritten content is zeroed in
            # the file, whatever the host's libsqlite3 was built with
            cur.execute("PRAGMA secure_delete=ON")
            cur.close()

    return engine


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return head


async def upgrade(engine: AsyncEngine) -> tuple[str | None, str]:
    """Migrate to the newest schema; return (before, after) revisions."""
    cfg = _alembic_config()

    def _upgrade(conn: Connection) -> str | None:
        before = MigrationContext.configure(conn).get_current_revision()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        return before

    async with engine.begin() as conn:
        before = await conn.run_sync(_upgrade)
    return before, head_revision()


async def check_schema(engine: AsyncEngine) -> None:
    """Refuse an unmigrated database, an older schema or a newer one."""
    script = ScriptDirectory.from_config(_alembic_config())
    head = head_revision()

    def _current(conn: Connection) -> str | None:
        return MigrationContext.configure(conn).get_current_revision()

    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    where = engine.url.render_as_string(hide_password=True)
    if current is None:
        raise SchemaError(f"{where}: no pbxwatch schema; run `pbxwatch db upgrade` first")
    if current == head:
        return
    known = {rev.revision for rev in script.walk_revisions()}
    if current not in known:
        raise SchemaError(
            f"{where}: schema revision {current} is newer than this pbxwatch ({head}); "
            "upgrade pbxwatch or point it at another database"
        )
    raise SchemaError(f"{where}: schema {current} is older than {head}; run `pbxwatch db upgrade`")


def _upsert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    keys = [c.name for c in table.primary_key.columns]
    stmt = insert(table)
    cols = {name for row in rows for name in row} - set(keys)
    values: dict[str, Any] = {name: stmt.excluded[name] for name in cols}
    for name in set(models.PERSONAL.get(table.name, ())) & cols:  # erased stays erased
        values[name] = case((table.c.purged.is_(True), null()), else_=stmt.excluded[name])
    stmt = stmt.on_conflict_do_update(index_elements=keys, set_=values)
    conn.execute(stmt, rows)


def write_rows(conn: Connection, rows: Iterable[Row]) -> int:
    """Upsert rows table by table (in dependency order), last version winning,
    except that a call stored complete keeps its version (``_worse_calls``)."""
    by_table: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = defaultdict(dict)
    n = 0
    for name, row in rows:
        table = TABLES[name]
        key = tuple(row[c.name] for c in table.primary_key.columns)
        by_table[name][key] = row  # a later version of the same row replaces an earlier one
        n += 1
    if worse := _worse_calls(conn, by_table.get("calls", {})):
        for name in ("calls", "rings"):
            by_table[name] = {k: r for k, r in by_table[name].items() if k[0] not in worse}
    for name, table in TABLES.items():
        batch = by_table.get(name)
        if batch:
            _upsert(conn, table, list(batch.values()))
    return n


def _worse_calls(conn: Connection, calls: dict[tuple[Any, ...], dict[str, Any]]) -> set[str]:
    """The incomplete calls of a batch that are stored complete already.

    Two views of one call meet when a standby takes a PBX over (the
    records the old owner may not have committed are written again) or a
    restarted run rebuilds a call still up from the channel list: the
    version that saw the whole call is the better one, whichever comes
    last, so it is not replaced, nor are its rings."""
    partial = [key[0] for key, row in calls.items() if row.get("complete") is False]
    if not partial:
        return set()
    t = models.Call
    stored = select(t.call_id).where(t.call_id.in_(partial), t.complete.is_(True))
    return set(conn.execute(stored).scalars())


async def load_open_callbacks(engine: AsyncEngine, pbx: str = models.DEFAULT_PBX) -> list[Callback]:
    """A PBX's callbacks that may still change, oldest first: not yet called back or
    not yet listened to.  Exempt and anonymous ones included: a message is
    still heard, and an exempt one may still be called back.  Purged ones
    (past retention, number erased) can no longer change, so the set stays
    bounded by the retention period."""
    t = models.Callback
    q = (
        select(t)
        .where(
            or_(t.resolved_at.is_(None), t.listened_at.is_(None)),
            t.purged.is_(False),
            t.pbx == pbx,
        )
        .order_by(t.left_at)
    )
    async with engine.connect() as conn:
        result = await conn.execute(q)
        return [callback_of_row(row) for row in result]


async def load_open_incidents(engine: AsyncEngine, pbx: str = models.DEFAULT_PBX) -> list[Incident]:
    """A PBX's lasting incidents still open (unstaffed group numbers,
    unforwarded absences), oldest first."""
    t = models.Incident
    q = select(t).where(t.state == "open", t.pbx == pbx).order_by(t.started_at)
    async with engine.connect() as conn:
        return [incident_of_row(row) for row in await conn.execute(q)]


async def last_event_time(engine: AsyncEngine, source: str) -> float | None:
    """The PBX time of the last event a source's rows were committed with:
    where a restarted ``run`` was blind from."""
    t = models.StreamPosition
    async with engine.connect() as conn:
        value = await conn.scalar(select(t.event_time).where(t.source == source))
    return None if value is None else float(value)


async def stream_position(engine: AsyncEngine, source: str) -> int:
    t = models.StreamPosition
    async with engine.connect() as conn:
        value = await conn.scalar(select(t.frames).where(t.source == source))
    return int(value or 0)
