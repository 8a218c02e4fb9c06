"""Time faults built from the shared recordings (see tests/timefaults.py):
a week of three sessions, and a session with garbled Timestamps, replay to
exactly the calls their clean parts give alone, by file and by TCP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings
from tests import timefaults
from tests.conftest import FIXTURES
from tests.replay.test_recordings import _records

DAY = 86_400
#: Monday 23 November 2026, then Thursday, then the Monday after the weekend
WEEK = (("answered_after_rings", 0), ("voicemail_callback", 3 * DAY),
        ("group_number_answered", 7 * DAY))  # fmt: skip
GARBLED = ("+72000", "nan", "inf", "-5", "99999999999")


def _calls(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted((r for r in records if r["type"] == "call"), key=lambda r: r["started_at"])


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    tmp = tmp_path_factory.mktemp("week")
    days = [timefaults.shift((FIXTURES / f"{name}.ami").read_bytes(), moved)
            for name, moved in WEEK]  # fmt: skip
    alone = [timefaults.write(tmp / f"day{i}.ami", d) for i, d in enumerate(days)]
    return timefaults.write(tmp / "week.ami", timefaults.join(days)), alone


@pytest.mark.parametrize("tcp", [False, True], ids=["file", "tcp"])
def test_a_week_replays_to_the_calls_of_each_day_alone(
    lab_settings: Settings, week: tuple[Path, list[Path]], tcp: bool
) -> None:
    stream, days = week
    alone = [c for day in days for c in _calls(_records(lab_settings, day, tcp=False))]
    records = _records(lab_settings, stream, tcp=tcp)
    got = _calls(records)
    assert len(got) == 6
    assert got == sorted(alone, key=lambda r: r["started_at"])
    assert {c["started_at"][:10] for c in got} == {"2026-11-23", "2026-11-26", "2026-11-30"}
    assert not [r for r in records if r["type"] == "clock_step"]  # time passed, no step


@pytest.mark.parametrize("tcp", [False, True], ids=["file", "tcp"])
@pytest.mark.parametrize("name", ["mixed_load", "group_number_answered", "voicemail_callback"])
def test_garbled_timestamps_change_no_call(
    lab_settings: Settings, tmp_path: Path, name: str, tcp: bool
) -> None:
    clean = FIXTURES / f"{name}.ami"
    spoilt = timefaults.corrupt(clean.read_bytes(), GARBLED, every=3)
    assert spoilt.count(b"Timestamp: nan") == 1
    recording = timefaults.write(tmp_path / f"{name}.ami", spoilt)
    pipeline_out = _records(lab_settings, recording, tcp=tcp)
    assert _calls(pipeline_out) == _calls(_records(lab_settings, clean, tcp=False))


def test_garbled_timestamps_are_counted(lab_settings: Settings, tmp_path: Path) -> None:
    clean = FIXTURES / "group_number_answered.ami"
    recording = timefaults.write(tmp_path / "g.ami",
                                 timefaults.corrupt(clean.read_bytes(), GARBLED))  # fmt: skip
    pipeline = Pipeline(build_engine(lab_settings))
    replay_file(recording, pipeline)
    assert pipeline.engine.bad_input["event_time_implausible"] == len(GARBLED)
