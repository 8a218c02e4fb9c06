"""PostgreSQL goes away for 60 s while a real ``pbxwatch run`` follows a
simulated day, then comes back: events keep being processed meanwhile
(rows queue in memory, then spill to disk), and afterwards every call,
incident, callback and alert is in the database exactly once, just as a
clean replay of the same day writes them."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.settings import Settings
from pbxwatch.sim.day import recording_bytes, simulate_day
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from pbxwatch.store import models
from pbxwatch.store.db import make_engine, upgrade
from tests import pg
from tests.live import logged_in, run_config, start_run, stop_run
from tests.services import free_port, pbxwatch
from tests.sim.expect import DAY

pytestmark = pytest.mark.chaos

OUTAGE = 60.0  # seconds PostgreSQL is down
PLAN = SimPlan(DAY, days=1, calls_per_hour=60, speed=900, seed=21)


def _config(tmp: Path, url: str | None, port: int = 5038) -> Path:
    # a small memory queue, so that the outage spills to disk as well
    return run_config(tmp, port, storage={"url": url, "data_dir": str(tmp / "data"),
                                          "capacity_rows": 1000, "batch_size": 200})  # fmt: skip


async def _contents(engine: AsyncEngine) -> dict[str, Any]:
    """What a unit chief's report is made of, keyed by primary key."""
    async with engine.connect() as conn:
        calls = {r.call_id: (r.outcome, r.answered_by, r.diverted, r.complete)
                 for r in await conn.execute(select(models.Call))}  # fmt: skip
        rings = await conn.scalar(select(func.count()).select_from(models.Ring))
        incidents = {r.incident_id: (r.kind, r.state)
                     for r in await conn.execute(select(models.Incident))}  # fmt: skip
        callbacks = {r.callback_id: (r.deadline, r.resolved_at, r.listened_at)
                     for r in await conn.execute(select(models.Callback))}  # fmt: skip
        alerts = set(await conn.scalars(select(models.AlertRow.alert_id)))
    return {"calls": calls, "rings": rings, "incidents": incidents, "callbacks": callbacks,
            "alerts": alerts}  # fmt: skip


async def _count_calls(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(select(func.count()).select_from(models.Call)) or 0)
    finally:
        await engine.dispose()


def test_postgresql_down_for_a_minute_loses_nothing(lab_settings: Settings,
                                                    tmp_path: Path) -> None:  # fmt: skip
    server = pg.PostgresServer()
    try:
        asyncio.run(_outage(lab_settings, tmp_path, server))
    finally:
        server.remove()


async def _outage(settings: Settings, tmp: Path, server: pg.PostgresServer) -> None:
    engine = make_engine(server.url)
    await upgrade(engine)
    await engine.dispose()
    port = free_port()
    config = _config(tmp / "run", server.url, port)
    spill = tmp / "run" / "data"
    log = tmp / "run.log"
    sim = SimulatedPbx(settings, PLAN, "u", "s")
    await sim.start("127.0.0.1", port)
    figures: dict[str, float] = {}
    with log.open("wb") as err:
        proc = start_run(config, err, pbx_speed=PLAN.speed)
        try:
            await logged_in(sim, proc, log)
            playing = asyncio.create_task(sim.run())
            while await _count_calls(server.url) < 40:
                await asyncio.sleep(0.2)
            server.stop()
            down = time.monotonic()
            figures["frames_sent_when_stopped"] = sim.sent
            await asyncio.wait_for(asyncio.shield(playing), OUTAGE)
            figures["replay_done_after"] = time.monotonic() - down  # all sent, DB still down
            figures["spill_files"] = len(list(spill.glob("spill-*.jsonl")))
            await asyncio.sleep(max(0.0, OUTAGE - (time.monotonic() - down)))
            server.start()
            up = time.monotonic()
            expected = len(sim.days[0].calls)
            while await _count_calls(server.url) < expected and time.monotonic() - up < 60:
                await asyncio.sleep(0.2)
            figures["drained_after"] = time.monotonic() - up
            await asyncio.sleep(3.0)  # the calls' callbacks and incidents, last ticks
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)
            await sim.close()
    assert proc.returncode == 0, log.read_text()
    text = log.read_text()
    assert "spilling to" in text, text[-3000:]
    assert figures["spill_files"] == 1, figures
    assert not list(spill.glob("spill-*.jsonl")), "the spill file is read back and removed"

    # the same day replayed into a fresh SQLite database is the reference
    recording = tmp / "day.ami"
    day = simulate_day(settings, DAY, calls_per_hour=PLAN.calls_per_hour, seed=PLAN.seed,
                       open_hour=PLAN.open_hour, close_hour=PLAN.close_hour)  # fmt: skip
    recording.write_bytes(recording_bytes(day.frames))
    ref_config = _config(tmp / "ref", None)
    subprocess.run(pbxwatch("replay", "--config", str(ref_config), str(recording)), check=True,
                   capture_output=True)  # fmt: skip
    ref = make_engine(f"sqlite+aiosqlite:///{tmp / 'ref' / 'data' / 'pbxwatch.db'}")
    want = await _contents(ref)
    await ref.dispose()
    store = make_engine(server.url)
    got = await _contents(store)
    await store.dispose()
    print(
        f"outage {OUTAGE:.0f} s; {figures}; calls {len(got['calls'])}, rings {got['rings']}, "
        f"incidents {len(got['incidents'])}, callbacks {len(got['callbacks'])}, "
        f"alerts {len(got['alerts'])}"
    )
    assert len(got["calls"]) == len(day.calls)
    for key in ("calls", "rings", "incidents", "callbacks", "alerts"):
        if isinstance(want[key], dict):
            diff = {k: (got[key].get(k), want[key].get(k)) for k in set(got[key]) | set(want[key])
                    if got[key].get(k) != want[key].get(k)}  # fmt: skip
            assert not diff, (key, diff)
        assert got[key] == want[key], key


def test_run_started_before_its_database_waits_for_it(lab_settings: Settings,
                                                      tmp_path: Path) -> None:  # fmt: skip
    server = pg.PostgresServer()
    try:
        asyncio.run(_late_database(lab_settings, tmp_path, server))
    finally:
        server.remove()


async def _late_database(settings: Settings, tmp: Path, server: pg.PostgresServer) -> None:
    engine = make_engine(server.url)
    await upgrade(engine)
    await engine.dispose()
    server.stop()
    port = free_port()
    config = _config(tmp, server.url, port)
    log = tmp / "run.log"
    plan = SimPlan(DAY, days=1, calls_per_hour=60, speed=3600, seed=2, open_hour=9, close_hour=10)
    sim = SimulatedPbx(settings, plan, "u", "s")
    await sim.start("127.0.0.1", port)
    with log.open("wb") as err:
        proc = start_run(config, err, pbx_speed=plan.speed)
        try:
            deadline = time.monotonic() + 20  # a loaded CI machine starts it slowly
            while "cannot reach the database" not in log.read_text():
                assert time.monotonic() < deadline, log.read_text()
                assert proc.poll() is None, log.read_text()  # waiting, not gone
                await asyncio.sleep(0.2)
            await asyncio.sleep(1.0)
            assert proc.poll() is None, log.read_text()
            assert sim.server.logins == 0  # no events taken that could not be kept
            server.start()
            await logged_in(sim, proc, log, interval=0.1)
            await sim.run()
            deadline = time.monotonic() + 30
            while await _count_calls(server.url) < 20 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
        finally:
            await stop_run(proc, sim, signal.SIGTERM, timeout=30)
    assert proc.returncode == 0, log.read_text()
    assert await _count_calls(server.url) >= 20
