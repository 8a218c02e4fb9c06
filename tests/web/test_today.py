"""The wallboard's "today": the queue book's counters since the PBX's
local midnight (a real engine fed a shared recording; the PBX clock moved
on to the next day)."""

from __future__ import annotations

import time

from pbxwatch.metrics.health import Health
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings
from pbxwatch.web.live import CACHE_SECONDS, LiveView
from tests.conftest import FIXTURES


def test_today_counts_from_midnight_and_says_from_when_after_a_restart(
    lab_settings: Settings,
) -> None:
    engine = build_engine(lab_settings)
    clock = {"now": 0.0}
    view = LiveView(lab_settings, engine, Health(), clock=lambda: clock["now"] or engine.now)
    view.sample()  # a fresh start: nothing counted yet
    replay_file(FIXTURES / "mixed_load.ami", Pipeline(engine))
    book = engine.queues.queues
    by_name = {q["queue"]: q for q in view.queues()}
    for name in ("bygglov", "kontaktcenter"):
        assert by_name[name]["answered_today"] == book[name].answered > 0
        assert by_name[name]["abandoned_today"] == book[name].abandoned
        assert by_name[name]["today_since"] is None  # the whole day
    sl = by_name["kontaktcenter"]["service_level"]
    q = book["kontaktcenter"]
    assert sl == round(q.answered_within_sl / (q.offered - q.short_abandoned), 4)

    clock["now"] = engine.now + 86400.0  # the next day, nothing happened yet
    time.sleep(CACHE_SECONDS)
    view.sample()
    assert {q["answered_today"] for q in view.queues()} == {0}
    assert all(q["service_level"] is None for q in view.queues())

    restarted = LiveView(lab_settings, engine, Health(), clock=lambda: engine.now)
    restarted.sample()  # counters restored from a checkpoint: counted from this start
    assert all(q["today_since"] is not None for q in restarted.queues())
    assert {q["answered_today"] for q in restarted.queues()} == {0}
