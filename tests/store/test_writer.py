"""The batched writer: the reader never waits or touches the disk, rows are
kept while the database refuses them, and spill to a file past capacity."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.store.db import make_engine, upgrade
from pbxwatch.store.writer import StoreWriter


def _interval(i: int) -> DiversionInterval:
    return DiversionInterval("1001", "socialtjanst", "presence", "away", "", "Lunch",
                             1000.0 + i, 1001.0 + i)  # fmt: skip


async def test_rows_survive_a_refusing_database_and_spill_in_order(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")  # no schema yet
    spill = tmp_path / "spill.jsonl"
    writer = StoreWriter(engine, capacity=5, max_batch=4, spill_path=spill)
    for i in range(20):
        writer.submit(_interval(i))
    assert writer.backlog == 20
    assert not spill.exists()  # the reader side never writes files

    await writer._write_once()  # refused: no tables; the overflow goes to disk
    assert writer.stats.write_errors == 1
    assert writer.backlog == 20
    assert len(spill.read_text(encoding="utf-8").splitlines()) == 15

    await upgrade(engine)
    await writer.flush()
    assert writer.backlog == 0
    assert not spill.exists()
    async with engine.connect() as conn:
        starts = list(
            await conn.scalars(text("SELECT start FROM diversion_intervals ORDER BY rowid"))
        )
    await engine.dispose()
    assert starts == [1000.0 + i for i in range(20)]  # written in the order submitted


async def test_shutdown_with_the_database_down_keeps_every_row_for_the_next_start(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")  # refuses: no tables
    spill = tmp_path / "spill.jsonl"
    writer = StoreWriter(engine, capacity=5, max_batch=4, max_delay=0.01, spill_path=spill)
    writer.start()
    for i in range(12):
        writer.submit(_interval(i))
    await asyncio.sleep(0.1)  # one refused batch: the overflow is on disk already
    for i in range(12, 20):
        writer.submit(_interval(i))
    await writer.close(timeout=0.3)
    assert len(spill.read_text(encoding="utf-8").splitlines()) == 20

    await upgrade(engine)
    after = StoreWriter(engine, capacity=5, max_batch=4, max_delay=0.01, spill_path=spill)
    after.submit(_interval(20))  # the new run's first row comes after the old ones
    after.start()
    await after.close(timeout=10)
    assert not spill.exists()
    async with engine.connect() as conn:
        starts = list(
            await conn.scalars(text("SELECT start FROM diversion_intervals ORDER BY rowid"))
        )
    await engine.dispose()
    assert starts == [1000.0 + i for i in range(21)]


def test_a_checkpoint_waiting_in_memory_is_overwritten_not_queued_again() -> None:
    """Behind a slow database the queue holds one checkpoint, the newest,
    not one per interval; once one is being written the next is a row."""
    from typing import Any, cast

    writer = StoreWriter(cast(Any, None))

    def row(n: int) -> tuple[str, dict[str, Any]]:
        return ("checkpoints", {"source": "s", "version": 2, "saved_at": float(n),
                                "event_time": None, "calls": n, "state": f"state {n}"})  # fmt: skip

    writer.note_checkpoint(row(1))
    writer.note_position(10, 100.0)
    writer.note_checkpoint(row(2))
    queued = [r for name, r in writer._rows if name == "checkpoints"]
    assert [r["calls"] for r in queued] == [2]
    assert writer.backlog == 2


async def test_caught_up_waits_for_what_was_submitted(tmp_path: Path) -> None:
    """A digest reads the store: ``caught_up`` returns once every row
    submitted is committed (and says so), or says it could not in time."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    writer = StoreWriter(engine, max_batch=4, max_delay=0.5)
    writer.start()
    try:
        assert await writer.caught_up(0.1)  # nothing to wait for: at once
        for i in range(10):
            writer.submit(_interval(i))
        assert not await writer.caught_up(0.05)  # no tables yet: refused, retried
        await upgrade(engine)
        assert await writer.caught_up(10.0)
        async with engine.connect() as conn:
            n = await conn.scalar(text("SELECT count(*) FROM diversion_intervals"))
        assert n == 10
    finally:
        await writer.close(timeout=5)
        await engine.dispose()
