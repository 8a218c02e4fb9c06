"""``pbxwatch simulate --days 5`` across a weekend, into ``pbxwatch run``:
every simulated call is stored with its simulated times (the simulator's
nights are its clock jumping forward, adopted as steps), compared with the
simulator's own ``--record``; and ``simulate --record`` keeps what it made
when it is stopped with SIGTERM."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sqlite3
import time
from pathlib import Path

from tests.conftest import LAB_CONFIG
from tests.live import RUN_ENV, run_config, stored_calls
from tests.services import free_port, pbxwatch, process, wait_for_port

THURSDAY = dt.date(2026, 11, 26)
SPEED = 3600
#: the first call of a morning may have begun while the night's jump was being
#: confirmed: its times then carry the step's error, the host's jitter × SPEED
SLACK = 5.0


def _simulate(port: int, record: Path, *more: str) -> list[str]:
    return pbxwatch("simulate", "--config", str(LAB_CONFIG), "--port", str(port),
                    "--username", "u", "--secret-env", "SIM_SECRET", "--record", str(record),
                    "--speed", str(SPEED), "--start", THURSDAY.isoformat(), *more)  # fmt: skip


def test_five_days_over_a_weekend_are_stored_with_their_times(tmp_path: Path) -> None:
    port = free_port()
    record = tmp_path / "record.jsonl"
    config = run_config(tmp_path, port)
    db = tmp_path / "data" / "pbxwatch.db"
    sim = _simulate(port, record, "--days", "5", "--calls-per-hour", "15", "--wait-for-client")
    run = pbxwatch("run", "--config", str(config), "--pbx-speed", str(SPEED))
    with process(sim, tmp_path / "sim.log", RUN_ENV) as s:
        wait_for_port(port, proc=s)
        with process(run, tmp_path / "run.log", RUN_ENV) as r:
            deadline = time.monotonic() + 180
            while not record.exists() and time.monotonic() < deadline:
                assert r.poll() is None, (tmp_path / "run.log").read_text()
                time.sleep(0.5)
            made = [json.loads(line) for line in record.read_text().splitlines()]
            while stored_calls(db) < len(made) and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1.0)
            r.send_signal(signal.SIGTERM)
            assert r.wait(30) == 0, (tmp_path / "run.log").read_text()
    assert {c["day"] for c in made} == {"2026-11-26", "2026-11-27", "2026-11-30",
                                        "2026-12-01", "2026-12-02"}  # fmt: skip
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT caller, started_at, ended_at, outcome FROM calls").fetchall()
        steps = conn.execute("SELECT delta FROM clock_steps ORDER BY at").fetchall()
    stored = {(caller, round(start)): (end, outcome) for caller, start, end, outcome in rows}
    missing = []
    for call in made:
        got = stored.get((call["caller"], round(call["start"])))
        if got is None or abs(got[0] - call["end"]) > SLACK or got[1] != call["outcome"]:
            missing.append((call, got))
    assert len(rows) == len(made)
    assert missing == []
    # four nights, the one over the weekend the longest
    assert len(steps) == 4, steps
    assert max(d for (d,) in steps) > 2 * 86400


def test_simulate_record_is_kept_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    record = tmp_path / "record.jsonl"
    with process(_simulate(port, record, "--days", "3"), tmp_path / "sim.log", RUN_ENV) as s:
        wait_for_port(port, proc=s)
        time.sleep(1.0)
        s.send_signal(signal.SIGTERM)
        assert s.wait(10) == 0, (tmp_path / "sim.log").read_text()
    made = [json.loads(line) for line in record.read_text().splitlines()]
    assert made
    assert {c["day"] for c in made} == {THURSDAY.isoformat()}  # only the day under way
