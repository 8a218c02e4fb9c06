"""A restart of ``pbxwatch run`` is a gap like a lost connection: killed
with SIGKILL mid-day and started again, it records one ``ami_gaps`` row from
the last event the killed run had committed to the PBX time after the new
login, logs it and counts it (the rest of issue #18, calls in flight across
a restart, is not done yet)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import pytest

from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.live import logged_in, run_config, start_run
from tests.services import free_port
from tests.sim.expect import DAY

pytestmark = pytest.mark.chaos

SPEED = 600.0
PLAN = SimPlan(DAY, days=1, calls_per_hour=60, speed=SPEED, seed=3, open_hour=9, close_hour=11)


def test_a_restart_is_a_recorded_gap(lab_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    config = run_config(tmp_path, port)
    log = tmp_path / "run.log"
    seen: dict[str, float] = {}

    async def main() -> None:
        sim = SimulatedPbx(lab_settings, PLAN, "u", "s")
        await sim.start("127.0.0.1", port)
        with log.open("wb") as err:
            first = start_run(config, err, pbx_speed=SPEED)
            await logged_in(sim, first, log)
            await asyncio.sleep(0.5)
            playing = asyncio.create_task(sim.run())
            try:
                while sim.now is None or sim.now < sim.days[0].calls[0].start + 1800:
                    await asyncio.sleep(0.01)
                await asyncio.sleep(1.5)  # a tick has noted the position
                first.send_signal(signal.SIGKILL)
                await asyncio.to_thread(first.wait, 10)
                seen["killed"] = sim.now or 0.0
                await asyncio.sleep(2.0)
                logins = sim.server.logins
                second = start_run(config, err, pbx_speed=SPEED)
                while sim.server.logins == logins:
                    assert second.poll() is None, log.read_text()
                    await asyncio.sleep(0.01)
                seen["relogin"] = sim.now or 0.0
                await asyncio.sleep(2.0)
                second.send_signal(signal.SIGINT)
                assert await asyncio.to_thread(second.wait, 20) == 0, log.read_text()
            finally:
                playing.cancel()
                await sim.close()

    asyncio.run(main())
    with sqlite3.connect(tmp_path / "data" / "pbxwatch.db") as db:
        rows = db.execute("SELECT started_at, ended_at, reason FROM ami_gaps").fetchall()
    [(start, end, reason)] = rows
    assert "restart" in reason
    tick = SPEED  # the position is noted once a second
    assert seen["killed"] - 2 * tick <= start <= seen["killed"], (start, seen)
    assert seen["relogin"] - 5 <= end <= seen["relogin"] + tick, (end, seen)
    assert end - start >= 2.0 * SPEED  # two host seconds down at least
    assert "AMI gap of" in log.read_text()
    assert "pbxwatch was not running (restart)" in log.read_text()
