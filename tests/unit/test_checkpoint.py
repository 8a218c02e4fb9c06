"""A checkpoint is the whole live state: an engine restored from one, fed
the rest of the stream, makes exactly the records the uninterrupted engine
makes (no gap told, nothing lost, nothing twice)."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.core import checkpoint
from pbxwatch.core.calls import CallRecord
from pbxwatch.core.engine import Engine, Record
from pbxwatch.pipeline import build_engine
from pbxwatch.settings import Settings
from tests.unit.events import recording_events

TZ = ZoneInfo("Europe/Stockholm")


def _json(records: list[Record]) -> list[dict[str, Any]]:
    return [r.to_json(TZ) for r in records if hasattr(r, "to_json")]


def _run(engine: Engine, events: list[Any]) -> list[Record]:
    out: list[Record] = []
    for ev in events:
        out.extend(engine.process(ev))
    return out


@pytest.mark.parametrize("cut", [0.25, 0.5, 0.8])
def test_restoring_a_checkpoint_mid_stream_changes_nothing(lab_settings: Settings,
                                                           cut: float) -> None:  # fmt: skip
    events = recording_events("mixed_load")
    whole = build_engine(lab_settings, keep_everything=True)
    baseline = _run(whole, events) + whole.flush()

    n = int(len(events) * cut)
    first = build_engine(lab_settings, keep_everything=True)
    before = _run(first, events[:n]) + first.settle()
    in_progress = first.tracked_calls
    state = json.loads(json.dumps(checkpoint.dump(first)))  # what the store keeps
    second = build_engine(lab_settings, keep_everything=True)
    for cb in first.callbacks.callbacks.values():  # the store restores these
        second.callbacks.restore(cb)
    loaded = checkpoint.load(second, state)
    after = _run(second, events[n:]) + second.flush()

    assert in_progress > 0
    assert loaded.calls == in_progress
    got = [r for r in _json(before + after) if r["type"] == "call"]
    want = [r for r in _json(baseline) if r["type"] == "call"]
    assert got == want
    kinds = ("incident", "callback_event")
    assert [r for r in _json(before + after) if r["type"] in kinds] == [
        r for r in _json(baseline) if r["type"] in kinds
    ]


def test_a_checkpoint_round_trips(lab_settings: Settings) -> None:
    events = recording_events("mixed_load")
    engine = build_engine(lab_settings)
    _run(engine, events[: len(events) // 2])
    state = checkpoint.dump(engine)
    again = build_engine(lab_settings)
    checkpoint.load(again, json.loads(json.dumps(state)))
    assert checkpoint.dump(again) == json.loads(json.dumps(state))


def test_calls_the_store_reported_since_are_left_out(lab_settings: Settings) -> None:
    events = recording_events("mixed_load")
    engine = build_engine(lab_settings)
    _run(engine, events[: len(events) // 2])
    state = checkpoint.dump(engine)
    ids = checkpoint.call_ids(state)
    again = build_engine(lab_settings)
    loaded = checkpoint.load(again, state, reported={ids[0]})
    assert loaded.dropped == 1
    assert loaded.calls == len(ids) - 1
    assert ids[0] not in again.calls.calls
    # a late event of the dropped call is not taken for a new call
    late = [ev for ev in events[len(events) // 2 :] if ev.get("Linkedid") == ids[0]]
    records = _run(again, late)
    assert not any(isinstance(r, CallRecord) and r.call_id == ids[0] for r in records)


def test_another_version_is_refused(lab_settings: Settings) -> None:
    state = checkpoint.dump(build_engine(lab_settings))
    with pytest.raises(checkpoint.CheckpointError, match="version"):
        checkpoint.load(build_engine(lab_settings), {**state, "version": 0})
    with pytest.raises(checkpoint.CheckpointError, match="does not load"):
        checkpoint.load(build_engine(lab_settings), {**state, "queues": {"x": {"bad": 1}}})
