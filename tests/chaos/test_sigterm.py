"""SIGTERM while a real ``pbxwatch run`` is busy: it logs off the AMI,
writes every finished call before it exits, and after a restart nothing
that was committed is missing or changed; the restarted run carries on."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.live import logged_in, run_config, start_run, stored_calls
from tests.services import free_port
from tests.sim.expect import DAY

pytestmark = pytest.mark.chaos

PLAN = SimPlan(DAY, days=1, calls_per_hour=120, speed=1800, seed=4, open_hour=9, close_hour=12)
GRACE = 5.0  # PBX seconds: finalize grace plus what was in flight at the signal


def _rows(db: Path, table: str, key: str) -> dict[str, tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return {r[0]: tuple(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY {key}")}


def test_sigterm_under_load_then_restart(lab_settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    config = run_config(tmp_path, port)
    db = tmp_path / "data" / "pbxwatch.db"
    seen: dict[str, float] = {}

    def start(log: Path) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            return start_run(config, out, pbx_speed=PLAN.speed)

    async def main() -> SimulatedPbx:
        sim = SimulatedPbx(lab_settings, PLAN, "u", "s")
        await sim.start("127.0.0.1", port)
        first = start(tmp_path / "first.log")
        await logged_in(sim, first, tmp_path / "first.log")
        playing = asyncio.create_task(sim.run())
        while stored_calls(db) < 100:
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGTERM)
        seen["signal_pbx"] = sim.now or 0.0
        t0 = time.monotonic()
        await asyncio.to_thread(first.wait, 30)
        seen["exit_seconds"] = time.monotonic() - t0
        seen["first_rc"] = first.returncode
        seen["logoffs"] = sim.server.actions.count("logoff")
        seen["committed"] = stored_calls(db)
        committed[:] = [_rows(db, "calls", "call_id"), _rows(db, "incidents", "incident_id"),
                        _rows(db, "callbacks", "callback_id")]  # fmt: skip
        second = start(tmp_path / "second.log")
        while sim.server.logins < 2:  # the PBX goes on meanwhile, as it would
            await asyncio.sleep(0.01)
        seen["restart_pbx"] = sim.now or 0.0
        await playing
        calls = sim.days[0].calls
        want = sum(c.end < seen["signal_pbx"] - GRACE or c.start > seen["restart_pbx"] + GRACE
                   for c in calls)  # fmt: skip
        while stored_calls(db) < want and time.monotonic() - t0 < 60:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2.0)
        second.send_signal(signal.SIGTERM)
        await asyncio.to_thread(second.wait, 30)
        seen["second_rc"] = second.returncode
        await sim.close()
        return sim

    committed: list[dict[str, tuple[object, ...]]] = []
    sim = asyncio.run(main())
    [day] = sim.days
    log = (tmp_path / "first.log").read_text()
    assert seen["first_rc"] == 0, log
    assert seen["second_rc"] == 0, (tmp_path / "second.log").read_text()
    assert seen["logoffs"] == 1, seen  # politely
    assert "AMI logged off" in log

    # everything that had finished before the signal was written before exit
    finished = [c for c in day.calls if c.end < seen["signal_pbx"] - GRACE]
    assert seen["committed"] >= len(finished), seen

    # after the restart: committed rows all still there, unchanged
    calls_before, incidents_before, callbacks_before = committed
    calls_after = _rows(db, "calls", "call_id")
    assert calls_before.items() <= calls_after.items()
    incidents_after = _rows(db, "incidents", "incident_id")
    assert set(incidents_before) <= set(incidents_after)
    callbacks_after = _rows(db, "callbacks", "callback_id")
    assert set(callbacks_before) <= set(callbacks_after)
    # and the restarted run saw the rest of the day
    later = [c for c in day.calls if c.start > seen["restart_pbx"] + GRACE]
    assert len(calls_after) >= len(finished) + len(later), (len(calls_after), seen)
    print(
        f"SIGTERM at {len(calls_before)} calls committed ({len(finished)} finished by then), "
        f"exit in {seen['exit_seconds']:.2f} s; after the restart {len(calls_after)} of "
        f"{len(day.calls)} calls"
    )
