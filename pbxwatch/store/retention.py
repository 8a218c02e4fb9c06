"""Retention: erase personal data older than each unit's retention period.

Caller numbers (and the free text of diversions, which may say "Sjuk") are
personal data; the guidelines' annual follow-up needs only the aggregates.
The purge sets the personal columns (``models.PERSONAL``) to NULL and marks
the row ``purged``; every other column stays, so reports over old periods
still add up.  It is idempotent: a purged row is never counted again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, delete, null, or_, true, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.records import iso
from pbxwatch.settings import Settings
from pbxwatch.store import models

log = logging.getLogger(__name__)

DAY = 86_400.0

#: The time a row's retention runs from.
_AGE_COLUMN = {"calls": "started_at", "callbacks": "left_at", "diversion_intervals": "end"}


@dataclass
class PurgeReport:
    """What one purge did: rows erased per table and unit (``None`` = rows of
    no configured unit, kept for the global period)."""

    at: float
    cutoffs: dict[str | None, float]
    rows: dict[str, dict[str | None, int]] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(n for per_unit in self.rows.values() for n in per_unit.values())

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "at": iso(self.at, tz),
            "total": self.total,
            "rows": {t: {u or "-": n for u, n in per.items()} for t, per in self.rows.items()},
        }

    def summary(self) -> str:
        parts = [
            f"{table} {sum(per.values())}" for table, per in self.rows.items() if sum(per.values())
        ]
        return "retention purge: " + (", ".join(parts) if parts else "nothing to erase")


def cutoffs(settings: Settings, now: float) -> dict[str | None, float]:
    """Per unit, the time before which personal data is erased."""
    default = settings.storage.retention_days
    out: dict[str | None, float] = {
        slug: now - (unit.retention_days or default) * DAY
        for slug, unit in settings.directory.units.items()
    }
    out[None] = now - default * DAY
    return out


async def _delete_sent_alerts(
    engine: AsyncEngine, limits: dict[str | None, float], known: list[str]
) -> dict[str | None, int]:
    """Published alerts past retention go whole: their text may name a
    caller (where a unit shows numbers) and nothing is counted from them."""
    table = models.Base.metadata.tables["alerts"]
    per_unit: dict[str | None, int] = {}
    async with engine.begin() as conn:
        for unit, cutoff in limits.items():
            stmt = delete(table).where(and_(_scope(table, unit, known),
                                            table.c.created_at < cutoff,
                                            table.c.sent_at.is_not(None)))  # fmt: skip
            per_unit[unit] = int((await conn.execute(stmt)).rowcount or 0)
    return per_unit


async def _delete_old_checkpoints(engine: AsyncEngine, cutoff: float) -> int:
    """A checkpoint holds the numbers of the calls then in progress; a
    running ``run`` replaces its own every few seconds, so only one of a
    PBX no longer followed gets this old.  Its calls are past the strictest
    unit's retention: it goes whole."""
    table = models.Base.metadata.tables["checkpoints"]
    async with engine.begin() as conn:
        result = await conn.execute(delete(table).where(table.c.saved_at < cutoff))
    return int(result.rowcount or 0)


def _scope(table: Any, unit: str | None, known: list[str]) -> ColumnElement[bool]:
    if unit is not None:
        return table.c.unit == unit  # type: ignore[no-any-return]
    return or_(table.c.unit.is_(None), table.c.unit.not_in(known))


async def purge(
    engine: AsyncEngine, settings: Settings, now: float, *, compact: bool = False
) -> PurgeReport:
    """Erase personal data past retention, one transaction per table, then
    make the erasure reach the files (:func:`erase_from_files`)."""
    limits = cutoffs(settings, now)
    known = [u for u in limits if u is not None]
    report = PurgeReport(at=now, cutoffs=limits)
    for name, personal in models.PERSONAL.items():
        table = models.Base.metadata.tables[name]
        age = table.c[_AGE_COLUMN[name]]
        per_unit: dict[str | None, int] = {}
        async with engine.begin() as conn:
            for unit, cutoff in limits.items():
                erase: dict[str, Any] = {col: null() for col in personal}
                erase["purged"] = True
                if name == "calls":  # the number an outbound call dialled
                    external = table.c.target_kind == "external"
                    for col in ("target", "answered_by"):
                        erase[col] = case((external, null()), else_=table.c[col])
                pending = table.c.purged.is_not(true())
                stmt = (
                    update(table)
                    .where(and_(_scope(table, unit, known), age < cutoff, pending))
                    .values(**erase)
                )
                result = await conn.execute(stmt)
                per_unit[unit] = int(result.rowcount or 0)
        report.rows[name] = per_unit
    report.rows["alerts"] = await _delete_sent_alerts(engine, limits, known)
    report.rows["checkpoints"] = {None: await _delete_old_checkpoints(engine, min(limits.values()))}
    log.info(report.summary())
    if report.total or compact:
        await erase_from_files(engine, compact=compact)
    return report


#: the tables whose rows the purge changes
_PURGED_TABLES = (*models.PERSONAL, "alerts", "checkpoints")


async def erase_from_files(engine: AsyncEngine, *, compact: bool = False) -> None:
    """What an UPDATE to NULL leaves on disk, removed as far as the database
    can.

    * **SQLite** runs with ``secure_delete`` (set on every connection): the
      bytes of overwritten and deleted content are zeroed in the database
      file.  The write-ahead log still holds the old pages until a
      checkpoint, so it is checkpointed and truncated here.  ``compact``
      also VACUUMs (rebuilds the file).
    * **PostgreSQL** keeps the old row versions in the table's files until
      they are vacuumed, and VACUUM only marks their space free.  A plain
      VACUUM runs after each purge; ``compact`` (``pbxwatch db purge
      --compact``) runs VACUUM FULL, which rewrites the tables and their
      indexes into new files (it locks them while it runs: the writer waits
      or spills), then a CHECKPOINT.  Either way the tables are analysed
      again and ``pg_statistic`` vacuumed: the planner's statistics keep
      sampled values of every column (most common values, histogram
      bounds), caller numbers among them.  The WAL segments (``pg_wal``) and any
      base backups still hold the old values until they are recycled or
      expire: their retention (``max_wal_size``, ``wal_keep_size``, the
      backup policy) must not exceed the personal-data retention.
    """
    auto = engine.execution_options(isolation_level="AUTOCOMMIT")
    async with auto.connect() as conn:
        if engine.dialect.name == "sqlite":
            if compact:
                await conn.exec_driver_sql("VACUUM")
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        elif engine.dialect.name == "postgresql":
            tables = ", ".join(_PURGED_TABLES)
            # ANALYZE too: the planner's statistics (pg_statistic) hold
            # sampled column values, caller numbers among them, until the
            # next analyze; then the catalog's old versions are vacuumed
            # (skipped with a warning by PostgreSQL where not permitted)
            await conn.exec_driver_sql(f"VACUUM ({'FULL, ' if compact else ''}ANALYZE) {tables}")
            await conn.exec_driver_sql(
                f"VACUUM {'FULL ' if compact else ''}pg_catalog.pg_statistic"
            )
            if compact:
                try:
                    await conn.exec_driver_sql("CHECKPOINT")
                except DBAPIError as exc:  # needs superuser or the pg_checkpoint role
                    log.warning("retention: CHECKPOINT refused (%s); the next one writes "
                                "the rewritten tables out", exc.orig)  # fmt: skip
