"""The PBX's clock steps +2 h at 10:00 and back at 11:00 (a PBX restarted
with a wrong clock, then corrected by NTP), under a real ``pbxwatch run``.
Each step is one clock-step record, and no call comes out with a wrong
duration: calls in progress across a step keep theirs, the others carry
the PBX's own time."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimCall
from pbxwatch.sim.live import SimPlan
from tests.live import run_whole_plan
from tests.sim.expect import DAY, ts

pytestmark = pytest.mark.chaos

TZ = ZoneInfo("Europe/Stockholm")
STEP = 7200.0
UP = dt.datetime.combine(DAY, dt.time(10), TZ).timestamp()
DOWN = dt.datetime.combine(DAY, dt.time(11), TZ).timestamp()
#: a step's size is measured with the host's jitter times the speed: a few ms
#: on an idle host, 10 ms and more on a loaded two-core CI runner, and at 600x
#: each host ms is 0.6 PBX s; so a call in progress across a step may be off
#: by several seconds here (by milliseconds on a real PBX at speed 1)
SLACK = 10.0
PLAN = SimPlan(DAY, days=1, calls_per_hour=90, speed=600, seed=8, open_hour=9, close_hour=12,
               clock_steps=((UP, STEP), (DOWN, -STEP)))  # fmt: skip


def _record(calls: list[dict[str, Any]], call: SimCall) -> dict[str, Any] | None:
    """The run's record of a simulated call: same caller, started within a
    second of the time the PBX's clock showed then.  A call in progress when
    a step was adopted is on the new timebase: its start is moved with it."""
    shown = {call.start + PLAN.skew(call.start), call.start + PLAN.skew(call.end)}

    def off(c: dict[str, Any]) -> float:
        return min(abs(ts(c["started_at"]) - t) for t in shown)

    found = sorted((c for c in calls if c["caller"] == call.caller and off(c) < SLACK), key=off)
    return found[0] if found else None


def test_clock_steps_are_recorded_and_durations_stay_whole(
    lab_settings: Settings, tmp_path: Path
) -> None:
    sim, records, log = run_whole_plan(lab_settings, PLAN, tmp_path)
    [day] = sim.days
    steps = [r for r in records if r["type"] == "clock_step"]
    assert [round(s["delta_seconds"] / 60) for s in steps] == [120, -120], steps
    with sqlite3.connect(tmp_path / "data" / "pbxwatch.db") as db:
        assert db.execute("SELECT count(*) FROM clock_steps").fetchone()[0] == 2
    calls = [r for r in records if r["type"] == "call"]
    across = [c for c in day.calls if c.start < UP < c.end or c.start < DOWN < c.end]
    assert len(day.calls) > 150
    for call in day.calls:
        got = _record(calls, call)
        assert got is not None, call
        assert (got["outcome"], got["complete"]) == (call.outcome, True), (call, got)
        slack = SLACK if call in across else 1.0  # the simulator's end is its own too
        seconds = ts(got["ended_at"]) - ts(got["started_at"])
        assert abs(seconds - (call.end - call.start)) < slack, (call, got)
        if call.answered_at is not None and got.get("answer_seconds") is not None:
            # the simulator's answer moment is its own, a second or so from
            # the DialEnd pbxwatch measures by, steps or not
            answer = call.answered_at - call.start
            assert abs(got["answer_seconds"] - answer) < max(slack, 1.5), (call, got)
    logged = re.findall(r"PBX clock stepped by ([+-]\d+)\.\d s", log)
    assert [round(int(s) / 60) for s in logged] == [120, -120], logged
    print(f"{len(day.calls)} calls, {len(across)} in progress across a step; steps {steps}")
