"""Erased means erased: after a purge no caller number of the day can be
found in the database's files by grep (SQLite: the file and its WAL;
PostgreSQL: the tables' and indexes' files after ``--compact``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.numbers import normalise
from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimDay, simulate_day
from pbxwatch.store.retention import DAY as SECONDS_PER_DAY
from pbxwatch.store.retention import purge
from tests.sim.expect import DAY
from tests.store.conftest import with_store
from tests.store.test_retention import _replay


@pytest.fixture(scope="module")
def day(lab_settings: Settings) -> SimDay:
    return simulate_day(lab_settings, DAY, calls_per_hour=60, seed=9)


def _numbers(day: SimDay) -> set[bytes]:
    """Every form of every citizen's number the day holds."""
    out: set[bytes] = set()
    for call in day.calls:
        for n in (call.caller, call.target):
            if n and len(n) >= 8 and n.lstrip("+").isdigit():
                e164 = normalise(n, "46") or n
                out |= {n.encode(), e164.encode(), e164.lstrip("+").encode()}
    return out


def _files(db_url: str, tmp_path: Path, pg_data: Path | None) -> list[Path]:
    if db_url.startswith("sqlite"):
        return [p for p in tmp_path.glob("test.db*") if p.is_file()]
    assert pg_data is not None  # this database's directory of the cluster
    return [Path(root) / f for root, _, files in os.walk(pg_data) for f in files]


def _found(files: list[Path], numbers: set[bytes]) -> set[bytes]:
    data = b"".join(p.read_bytes() for p in files)
    return {n for n in numbers if n in data}


async def test_no_purged_number_is_left_in_the_files(
    store: AsyncEngine, db_url: str, lab_settings: Settings, day: SimDay, tmp_path: Path,
    request: pytest.FixtureRequest,
) -> None:  # fmt: skip
    settings = with_store(lab_settings, db_url, tmp_path)
    await _replay(settings, store, day, tmp_path)
    pg_data = None
    if db_url.startswith("postgresql"):
        from sqlalchemy import text

        from tests import pg

        async with store.execution_options(isolation_level="AUTOCOMMIT").connect() as conn:
            oid = await conn.scalar(
                text("SELECT oid FROM pg_database WHERE datname = current_database()")
            )
            await conn.execute(text("ANALYZE"))  # as autovacuum may have: statistics hold values
            await conn.execute(text("CHECKPOINT"))  # the rows reach the files first
        pg_data = pg.data_dir_of(request.getfixturevalue("pg_server")) / "base" / str(oid)
    numbers = _numbers(day)
    files = _files(db_url, tmp_path, pg_data)
    assert len(_found(files, numbers)) > len(numbers) // 4  # they are there before
    report = await purge(store, settings, day.end + 400 * SECONDS_PER_DAY, compact=True)
    assert report.total > 0
    await store.dispose()  # every connection closed: nothing held in a cache
    left = _found(_files(db_url, tmp_path, pg_data), numbers)
    assert left == set(), f"{len(left)} of {len(numbers)} numbers still in the files"
