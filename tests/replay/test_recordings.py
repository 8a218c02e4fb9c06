"""Every shared recording replays to the calls its truth file describes,
through the file path and through a real TCP socket into the real client."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.ami.tcp_replay import replay_via_tcp
from pbxwatch.pipeline import JsonLinesSink, Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings
from tests.conftest import EVERY_RECORDING, RECORDINGS, recording_id, settings_for
from tests.truth import differences, expected, load_truth, match_calls

IDS = [recording_id(p) for p in EVERY_RECORDING]


def _records(settings: Settings, recording: Path, *, tcp: bool) -> list[dict[str, Any]]:
    out = io.StringIO()
    pipeline = Pipeline(build_engine(settings))
    pipeline.sinks.append(JsonLinesSink(out, ZoneInfo(settings.timezone)))
    if tcp:
        asyncio.run(replay_via_tcp(recording, settings, pipeline))
    else:
        replay_file(recording, pipeline)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("recording", EVERY_RECORDING, ids=IDS)
def test_calls_match_truth_one_by_one(recording: Path) -> None:
    lab_settings = settings_for(recording)  # the PJSIP lab's for its recordings
    truth = load_truth(recording)
    records = _records(lab_settings, recording, tcp=False)
    calls = [r for r in records if r["type"] == "call"]
    assert len(calls) == len(truth["calls"]), "same number of calls as the truth"
    problems = []
    for t, got in match_calls(truth["calls"], records):
        if got is None:
            problems.append(f"{t['call_id']}: no call found")
            continue
        bad = differences(expected(t), got)
        if bad:
            problems.append(f"{t['call_id']} ({t['expected']['classification']}): {bad}")
    assert problems == []


@pytest.mark.parametrize("recording", EVERY_RECORDING, ids=IDS)
def test_tcp_path_gives_identical_records(recording: Path) -> None:
    lab_settings = settings_for(recording)  # the PJSIP lab's for its recordings
    assert _records(lab_settings, recording, tcp=True) == _records(
        lab_settings, recording, tcp=False
    )


def test_mixed_load_outcome_totals(lab_settings: Settings) -> None:
    """Totals per outcome agree with the truth's own classification counts."""
    recording = next(p for p in RECORDINGS if p.stem == "mixed_load")
    truth = load_truth(recording)
    calls = [r for r in _records(lab_settings, recording, tcp=False) if r["type"] == "call"]
    want: dict[str, int] = {}
    for t in truth["calls"]:
        w = expected(t)
        if w["direction"] == "inbound":
            want[w["outcome"]] = want.get(w["outcome"], 0) + 1
    got: dict[str, int] = {}
    for c in calls:
        if c["direction"] == "inbound":
            got[c["outcome"]] = got.get(c["outcome"], 0) + 1
    assert got == want
    directions = {d: sum(1 for c in calls if c["direction"] == d) for d in ("outbound", "internal")}
    assert directions == {
        "outbound": sum(1 for t in truth["calls"] if t["expected"].get("direction") == "outbound"),
        "internal": sum(
            1
            for t in truth["calls"]
            if (t["expected"].get("direction") or "") != "outbound" and t["origin"] != "pstn"
        ),
    }
