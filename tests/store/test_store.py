"""Schema checks, every recording into the store against its truth, and
idempotent writes (a replay twice changes no row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_into_store
from pbxwatch.settings import Settings
from pbxwatch.store import models
from pbxwatch.store.db import SchemaError, check_schema, make_engine, upgrade
from pbxwatch.store.session import writer_for
from tests.conftest import RECORDINGS
from tests.truth import load_truth

TABLES = [models.Call, models.Ring, models.Incident, models.Callback,
          models.DiversionInterval, models.UnstaffedInterval]  # fmt: skip


async def _replay(settings: Settings, engine: AsyncEngine, recording: Path, tmp: Path) -> None:
    pipeline = Pipeline(build_engine(settings))
    writer = writer_for(settings.model_copy(update={"storage": settings.storage.model_copy(
        update={"data_dir": tmp})}), engine, f"replay:{recording.name}")  # fmt: skip
    pipeline.sinks.append(writer.submit)
    await replay_into_store(recording, pipeline, writer)


async def _counts(engine: AsyncEngine) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            t.__tablename__: int(await conn.scalar(select(func.count()).select_from(t)) or 0)
            for t in TABLES
        }


async def _count(engine: AsyncEngine, model: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def test_schema_check_refuses_unmigrated_and_newer(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with pytest.raises(SchemaError, match="db upgrade"):
            await check_schema(engine)
        before, after = await upgrade(engine)
        assert before is None
        await check_schema(engine)
        assert (await upgrade(engine))[0] == after  # a second upgrade is a no-op
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(SchemaError, match="newer"):
            await check_schema(engine)
    finally:
        await engine.dispose()


async def test_every_recording_against_its_truth(
    lab_settings: Settings, store: AsyncEngine, tmp_path: Path
) -> None:
    expected = {"calls": 0, "rings": 0, "missing": 0, "callbacks": 0, "called_back": 0}
    for recording in RECORDINGS:
        truth = load_truth(recording)
        await _replay(lab_settings, store, recording, tmp_path)
        for call in truth["calls"]:
            resolved = call.get("resolved") or {}
            expected["calls"] += 1
            expected["rings"] += len(resolved.get("unanswered_rings") or [])
            expected["missing"] += bool(call["expected"].get("missed_without_absence_diversion"))
            if resolved.get("voicemail_message"):
                expected["callbacks"] += 1
                expected["called_back"] += bool(resolved.get("callbacks"))
    inc, cb = models.Incident, models.Callback
    assert await _count(store, models.Call) == expected["calls"]
    assert await _count(store, inc, inc.kind == "unanswered_ring") == expected["rings"]
    assert await _count(store, inc, inc.kind == "missing_forward") == expected["missing"]
    assert await _count(store, cb) == expected["callbacks"]
    assert await _count(store, cb, cb.resolved_at.is_not(None)) == expected["called_back"]
    async with store.connect() as conn:
        sources = set(await conn.scalars(select(models.StreamPosition.source)))
    assert sources == {f"replay:{r.name}" for r in RECORDINGS}


async def test_replaying_twice_changes_no_row(
    lab_settings: Settings, store: AsyncEngine, tmp_path: Path
) -> None:
    recording = next(r for r in RECORDINGS if r.stem == "mixed_load")
    await _replay(lab_settings, store, recording, tmp_path)
    first = await _counts(store)
    async with store.connect() as conn:
        calls = (await conn.execute(select(models.Call).order_by(models.Call.call_id))).all()
    await _replay(lab_settings, store, recording, tmp_path)
    assert await _counts(store) == first
    assert first["calls"] == 215
    async with store.connect() as conn:
        again = (await conn.execute(select(models.Call).order_by(models.Call.call_id))).all()
    assert again == calls


async def test_migrations_build_exactly_the_models(store: AsyncEngine) -> None:
    """Every model change has its migration: Alembic finds nothing to add."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    def _diff(conn: Any) -> list[Any]:
        return list(compare_metadata(MigrationContext.configure(conn), models.Base.metadata))

    async with store.connect() as conn:
        assert await conn.run_sync(_diff) == []


def test_a_server_starting_up_is_waited_for_not_a_config_error() -> None:
    """PostgreSQL answers 'the database system is starting up' (57P03) for a
    moment after pg_ctl start: ``run`` must wait, as for a refused connection
    (this once made the store-outage test fail); a wrong password must not."""
    import asyncpg.exceptions
    from sqlalchemy.exc import DBAPIError

    from pbxwatch.store.session import _not_ready

    def wrapped(inner: Exception) -> DBAPIError:
        adapter = RuntimeError("adapter")
        adapter.__cause__ = inner
        return DBAPIError("connect", None, adapter)

    assert _not_ready(wrapped(asyncpg.exceptions.CannotConnectNowError("starting up")))
    assert _not_ready(wrapped(asyncpg.exceptions.TooManyConnectionsError("full")))
    assert not _not_ready(wrapped(asyncpg.exceptions.InvalidPasswordError("no")))


async def test_a_complete_call_is_not_replaced_by_a_view_of_its_end(
    store: AsyncEngine, lab_settings: Settings
) -> None:
    """A standby that joined mid-call, or a restarted run that rebuilt a
    call from the channel list, writes an incomplete version of it; the
    version that saw the whole call stays, with its rings, whichever of
    the two is written last."""
    from dataclasses import replace

    from pbxwatch.core.records import CallRecord
    from pbxwatch.replay import replay_file
    from pbxwatch.store.db import write_rows
    from pbxwatch.store.rows import rows_of

    pipeline = Pipeline(build_engine(lab_settings))
    got: list[Any] = []
    pipeline.sinks.append(got.append)
    replay_file(next(r for r in RECORDINGS if r.stem == "answered_after_rings"), pipeline)
    whole = next(r for r in got if isinstance(r, CallRecord) and r.rings)
    end = replace(whole, complete=False, rings=whole.rings[-1:], outcome="abandoned")

    async def write(rec: CallRecord) -> None:
        async with store.begin() as conn:
            await conn.run_sync(write_rows, rows_of(rec))

    async def stored() -> tuple[bool, str, int]:
        async with store.connect() as conn:
            row = (await conn.execute(select(models.Call.complete, models.Call.outcome))).one()
        return bool(row.complete), str(row.outcome), await _count(store, models.Ring)

    for order in ((whole, end), (end, whole)):
        for rec in order:
            await write(rec)
        assert await stored() == (True, whole.outcome, len(whole.rings))
        async with store.begin() as conn:
            await conn.execute(text("DELETE FROM rings"))
            await conn.execute(text("DELETE FROM calls"))
