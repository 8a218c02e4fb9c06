"""Incidents and callbacks of every shared recording, one by one against
the truth files (unanswered rings per call, missing forward per call, one
callback per voicemail message with its state and listened time, unstaffed
group numbers)."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.pipeline import JsonLinesSink, Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings
from tests.conftest import EVERY_RECORDING, RECORDINGS, recording_id, settings_for
from tests.truth import digits, load_truth, match_calls

IDS = [recording_id(p) for p in EVERY_RECORDING]


def _replay(settings: Settings, recording: Path) -> list[dict[str, Any]]:
    out = io.StringIO()
    tz = ZoneInfo(settings.timezone)
    sink = JsonLinesSink(out, tz)
    pipeline = Pipeline(build_engine(settings), [sink])
    replay_file(recording, pipeline)
    for obj in pipeline.engine.snapshot(tz):
        sink.write(obj)
    return [json.loads(line) for line in out.getvalue().splitlines()]


@pytest.mark.parametrize("recording", EVERY_RECORDING, ids=IDS)
def test_incidents_per_call(recording: Path) -> None:
    lab_settings = settings_for(recording)  # the PJSIP lab's for its recordings
    truth = load_truth(recording)
    records = _replay(lab_settings, recording)
    incidents = [r for r in records if r["type"] == "incident"]
    problems = []
    for t, call in match_calls(truth["calls"], records):
        assert call is not None, t["call_id"]
        mine = [i for i in incidents if i["call_id"] == call["call_id"]]
        rings = {i["extension"] for i in mine if i["kind"] == "unanswered_ring"}
        want_rings = set(t["resolved"].get("unanswered_rings", []))
        if rings != want_rings:
            problems.append(f"{t['call_id']}: unanswered rings {sorted(rings)} != {want_rings}")
        missing = any(i["kind"] == "missing_forward" for i in mine)
        if missing != bool(t["expected"]["missed_without_absence_diversion"]):
            problems.append(f"{t['call_id']}: missing_forward {missing}")
    assert problems == []


@pytest.mark.parametrize("recording", EVERY_RECORDING, ids=IDS)
def test_one_callback_per_voicemail_message(recording: Path) -> None:
    lab_settings = settings_for(recording)  # the PJSIP lab's for its recordings
    truth = load_truth(recording)
    records = _replay(lab_settings, recording)
    callbacks = [r for r in records if r["type"] == "callback"]
    our_call = {t["call_id"]: c["call_id"] for t, c in match_calls(truth["calls"], records) if c}
    messages = [t for t in truth["calls"] if (t.get("resolved") or {}).get("voicemail_message")]
    assert len(callbacks) == len(messages)
    for t in messages:
        vm = t["resolved"]["voicemail_message"]
        candidates = [
            c
            for c in callbacks
            if digits(c["caller"]) == digits(vm["callerid"]) and c["mailbox"] == vm["mailbox"]
        ]
        cb = min(
            candidates,
            key=lambda c: abs(dt.datetime.fromisoformat(c["left_at"]).timestamp() - vm["origtime"]),
        )
        assert abs(dt.datetime.fromisoformat(cb["left_at"]).timestamp() - vm["origtime"]) < 30
        anonymous = not digits(vm["callerid"])
        want = "no_number" if anonymous else (
            "called_back" if t["resolved"].get("callbacks") else "pending"
        )  # fmt: skip
        assert cb["state"] == want, t["call_id"]
        assert (cb["listened_at"] is not None) == (vm["folder"] == "Old"), t["call_id"]
        if want == "called_back":
            first = t["resolved"]["callbacks"][0]
            assert cb["resolved_from"] == t["expected"]["extension"]
            assert cb["resolved_by_call"] == our_call[first["call_id"]], t["call_id"]


def test_unstaffed_group_intervals_follow_the_driver(lab_settings: Settings) -> None:
    """mixed_load: bygglov was emptied twice (1003 paused + 1004 removed) and
    restored; the incidents open and close at those moments."""
    recording = next(p for p in RECORDINGS if p.stem == "mixed_load")
    truth = load_truth(recording)
    actions = [a for a in truth["driver_actions"] if a.get("queue") == "bygglov"]
    emptied = [a["t"] for a in actions if a["action"] == "queue_remove"]
    restored = [a["t"] for a in actions if a["action"] == "queue_add"]
    got = [
        r
        for r in _replay(lab_settings, recording)
        if r["type"] == "incident" and r["kind"] == "group_unstaffed" and r["state"] == "resolved"
    ]
    assert [r["queue"] for r in got] == ["bygglov", "bygglov"]
    for r, start, end in zip(got, emptied, restored, strict=True):
        assert dt.datetime.fromisoformat(r["started_at"]).timestamp() == pytest.approx(start, abs=1)
        assert dt.datetime.fromisoformat(r["ended_at"]).timestamp() == pytest.approx(end, abs=1)


def test_queue_snapshot_of_status_actions(lab_settings: Settings) -> None:
    """status_actions: 2002 paused for lunch at 39.5 s and unpaused at 87.5 s
    (the baseline restored); at the end all members are back, nobody waits."""
    recording = next(p for p in RECORDINGS if p.stem == "status_actions")
    queues = {r["queue"]: r for r in _replay(lab_settings, recording) if r["type"] == "queue"}
    kc = queues["kontaktcenter"]
    assert kc["members"] == {"logged_in": 3, "available": 3, "paused": 0, "in_call": 0}
    assert queues["bygglov"]["members"]["logged_in"] == 2
    assert kc["waiting"] == 0
    assert kc["answered"] == 1
    assert not kc["unstaffed"]
    assert not queues["bygglov"]["unstaffed"]


def _expected_diversions(truth: dict[str, Any]) -> list[tuple[str, str, str, float, float | None]]:
    """Diversion intervals from the lab's initial presence and the driver's
    set_presence actions: (extension, state, message, start, end)."""
    diverting = {"away", "xa", "dnd"}
    current: dict[str, tuple[str, str, float]] = {}
    for ext, p in truth["initial_state"]["presence"].items():
        if p["state"] in diverting:
            current[ext] = (p["state"], p["message"], truth["recording_started_t"])
    done: list[tuple[str, str, str, float, float | None]] = []
    for a in truth["driver_actions"]:
        if a["action"] != "set_presence":
            continue
        ext = a["extension"]
        if ext in current:
            state, message, start = current.pop(ext)
            done.append((ext, state, message, start, a["t"]))
        if a["state"] in diverting:
            current[ext] = (a["state"], a["message"], a["t"])
    done.extend((ext, s, m, start, None) for ext, (s, m, start) in current.items())
    return sorted(done, key=lambda d: (d[3], d[0]))


@pytest.mark.parametrize("recording", EVERY_RECORDING, ids=IDS)
def test_diversion_intervals_follow_the_driver(recording: Path) -> None:
    """Every hänvisning the driver set is one interval with its reason, from
    the moment it was set until it was cleared (open at the end if never)."""
    lab_settings = settings_for(recording)  # the PJSIP lab's for its recordings
    truth = load_truth(recording)
    got = sorted(
        (r for r in _replay(lab_settings, recording) if r["type"] == "diversion"),
        key=lambda r: (r["start"], r["extension"]),
    )
    expected = _expected_diversions(truth)
    assert len(got) == len(expected)

    def ts(value: str | None) -> float | None:
        return None if value is None else dt.datetime.fromisoformat(value).timestamp()

    for r, (ext, state, message, start, end) in zip(got, expected, strict=True):
        assert (r["extension"], r["source"], r["state"], r["message"]) == (
            ext, "presence", state, message,
        )  # fmt: skip
        assert ts(r["start"]) == pytest.approx(start, abs=1.5)
        if end is None:
            assert r["end"] is None
        else:
            assert ts(r["end"]) == pytest.approx(end, abs=1.5)
