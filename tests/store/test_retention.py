"""Retention: personal data past each unit's period is erased, the figures
stay, a replay does not bring numbers back, and the purge reports what it
did (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_into_store
from pbxwatch.report import build
from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimDay, recording_bytes, simulate_day
from pbxwatch.store import models
from pbxwatch.store.db import load_open_callbacks
from pbxwatch.store.retention import DAY as SECONDS_PER_DAY
from pbxwatch.store.retention import purge
from pbxwatch.store.session import writer_for
from tests.sim.expect import DAY
from tests.store.conftest import with_store


@pytest.fixture(scope="module")
def day(lab_settings: Settings) -> SimDay:
    return simulate_day(lab_settings, DAY, calls_per_hour=40, seed=5)


def _short_for(settings: Settings, unit: str, days: int) -> Settings:
    """``unit`` keeps personal data ``days`` days; everyone else 365."""
    units = dict(settings.directory.units)
    units[unit] = units[unit].model_copy(update={"retention_days": days})
    directory = settings.directory.model_copy(update={"units": units})
    return settings.model_copy(update={"directory": directory})


async def _replay(settings: Settings, engine: AsyncEngine, day: SimDay, tmp: Path) -> None:
    recording = tmp / "day.ami"
    recording.write_bytes(recording_bytes(day.frames))
    pipeline = Pipeline(build_engine(settings))
    writer = writer_for(settings, engine, "replay:day.ami")
    pipeline.sinks.append(writer.submit)
    await replay_into_store(recording, pipeline, writer)


async def _numbers(engine: AsyncEngine, unit: str) -> tuple[int, int, int]:
    """(calls with a caller, callbacks with a number, diversion messages) of ``unit``."""
    c, cb, d = models.Call, models.Callback, models.DiversionInterval
    async with engine.connect() as conn:
        calls = await conn.scalar(select(func.count()).where(c.unit == unit, c.caller.is_not(None)))
        cbs = await conn.scalar(select(func.count()).where(cb.unit == unit, cb.number.is_not(None)))
        divs = await conn.scalar(select(func.count()).where(d.unit == unit, d.message.is_not(None)))
    return int(calls or 0), int(cbs or 0), int(divs or 0)


async def test_purge_erases_per_unit_and_keeps_the_figures(
    store: AsyncEngine, db_url: str, lab_settings: Settings, day: SimDay, tmp_path: Path
) -> None:
    settings = _short_for(with_store(lab_settings, db_url, tmp_path), "socialtjanst", 10)
    await _replay(settings, store, day, tmp_path)
    now = day.end + 30 * SECONDS_PER_DAY  # past socialtjänst's 10 days, within 365
    before = {u: await _numbers(store, u) for u in ("socialtjanst", "bygglov")}
    figures_before = (await build(store, settings, "socialtjanst", DAY, DAY, now)).figures
    assert all(n > 0 for n in before["socialtjanst"])

    report = await purge(store, settings, now)
    assert report.rows["calls"]["socialtjanst"] == before["socialtjanst"][0]
    assert report.rows["callbacks"]["socialtjanst"] == before["socialtjanst"][1]
    assert report.rows["diversion_intervals"]["socialtjanst"] == before["socialtjanst"][2]
    assert report.rows["calls"]["bygglov"] == 0
    assert "calls" in report.summary()
    assert await _numbers(store, "socialtjanst") == (0, 0, 0)
    assert await _numbers(store, "bygglov") == before["bygglov"]  # 365 days: kept

    # aggregates stay: the report over the period is unchanged
    after = (await build(store, settings, "socialtjanst", DAY, DAY, now)).figures
    assert after == figures_before
    # purged callbacks are no longer restored (they cannot change any more)
    restored = {cb.unit for cb in await load_open_callbacks(store)}
    assert "socialtjanst" not in restored

    # a replay of the same day does not bring the numbers back; a second purge erases nothing
    await _replay(settings, store, day, tmp_path)
    assert await _numbers(store, "socialtjanst") == (0, 0, 0)
    assert (await purge(store, settings, now)).total == 0


async def test_nothing_is_erased_within_retention(
    store: AsyncEngine, db_url: str, lab_settings: Settings, day: SimDay, tmp_path: Path
) -> None:
    settings = with_store(lab_settings, db_url, tmp_path)
    await _replay(settings, store, day, tmp_path)
    report = await purge(store, settings, day.end + 364 * SECONDS_PER_DAY)
    assert report.total == 0
    assert report.summary() == "retention purge: nothing to erase"


def test_cutoffs_follow_unit_overrides(lab_settings: Settings) -> None:
    from pbxwatch.store.retention import cutoffs

    now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC).timestamp()
    limits = cutoffs(_short_for(lab_settings, "bygglov", 30), now)
    assert limits["bygglov"] == now - 30 * SECONDS_PER_DAY
    assert limits["socialtjanst"] == limits[None] == now - 365 * SECONDS_PER_DAY


async def test_a_checkpoint_left_behind_is_erased_past_retention(
    lab_settings: Settings, store: AsyncEngine
) -> None:
    """A checkpoint holds the numbers of calls then in progress: one of a PBX
    no longer followed goes once it is older than the strictest retention."""
    from pbxwatch.core import checkpoint
    from pbxwatch.store.checkpoints import checkpoint_row, encode
    from pbxwatch.store.db import write_rows

    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC).timestamp()
    state = checkpoint.dump(build_engine(lab_settings))
    old = checkpoint_row("ami:old-pbx:5038", state, encode(state), now - 400 * SECONDS_PER_DAY)
    new = checkpoint_row("ami:pbx:5038", state, encode(state), now - 60)
    async with store.begin() as conn:
        await conn.run_sync(write_rows, [old, new])
    report = await purge(store, lab_settings, now)
    assert report.rows["checkpoints"] == {None: 1}
    async with store.connect() as conn:
        left = (await conn.scalars(select(models.Checkpoint.source))).all()
    assert left == ["ami:pbx:5038"]
