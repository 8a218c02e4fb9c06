"""A whole simulated working day (hundreds of calls) through the core.

The simulator keeps its own record of every call it generated (``SimCall``)
and of the diversions it set; the expectations below are counted from that
record and the configuration alone (deadlines by the unit's policy on a
plain Tuesday), never from pbxwatch's output, and compared with what the
core reports call by call and in total.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import pytest

from pbxwatch.pipeline import JsonLinesSink, Pipeline, build_engine
from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimCall, SimDay, simulate_day
from tests.sim.expect import DAY, callback_states, records_of, ts


@pytest.fixture(scope="module")
def day(lab_settings: Settings) -> SimDay:
    return simulate_day(lab_settings, DAY, calls_per_hour=40, seed=7)


@pytest.fixture(scope="module")
def records(lab_settings: Settings, day: SimDay) -> list[dict[str, Any]]:
    out = io.StringIO()
    sink = JsonLinesSink(out, day.tz)
    pipeline = Pipeline(build_engine(lab_settings, keep_everything=True), [sink])
    for _, fields in day.frames:
        pipeline.feed_fields(fields)
    pipeline.finish()
    for obj in pipeline.engine.snapshot(day.tz, now=day.end):
        sink.write(obj)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _of(records: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [r for r in records if r["type"] == kind]


def _find(records: list[dict[str, Any]], call: SimCall) -> dict[str, Any]:
    [rec] = records_of(records, call)
    return rec


def test_it_is_a_whole_day(day: SimDay) -> None:
    assert len(day.calls) >= 300
    kinds = Counter(c.kind for c in day.calls)
    assert all(kinds[k] > 0 for k in ("direct_answered", "direct_unanswered", "direct_busy",
                                      "direct_abandoned", "direct_diverted", "queue", "outbound",
                                      "listen"))  # fmt: skip
    assert any(c.transferred_to for c in day.calls)


def test_every_call_found_with_its_outcome(day: SimDay, records: list[dict[str, Any]]) -> None:
    assert len(_of(records, "call")) == len(day.calls)
    for call in day.calls:
        rec = _find(records, call)
        assert rec["outcome"] == call.outcome, call
        if call.kind != "outbound":  # pbxwatch names the number that answered
            assert rec["answered_by"] == call.answered_by, call
        assert rec["diverted"] == call.diverted, call
        assert rec["transferred_to"] == call.transferred_to, call
        if call.mailbox:
            assert rec["voicemail_mailbox"] == call.mailbox


def test_totals(day: SimDay, records: list[dict[str, Any]]) -> None:
    expected = Counter(c.outcome for c in day.calls)
    assert Counter(r["outcome"] for r in _of(records, "call")) == expected


def test_unanswered_rings_per_extension(day: SimDay, records: list[dict[str, Any]]) -> None:
    expected = Counter(ext for c in day.calls for ext in c.unanswered_rings)
    got = Counter(
        r["extension"] for r in _of(records, "incident") if r["kind"] == "unanswered_ring"
    )
    assert got == expected
    assert sum(expected.values()) > 50


def test_missing_forwards(day: SimDay, records: list[dict[str, Any]]) -> None:
    expected = Counter(c.target for c in day.calls if c.missing_forward)
    got = Counter(
        r["extension"] for r in _of(records, "incident") if r["kind"] == "missing_forward"
    )
    assert got == expected
    assert sum(expected.values()) > 10


def test_diversion_intervals(day: SimDay, records: list[dict[str, Any]]) -> None:
    expected = sorted((d.ext, d.state, d.message, d.start, d.end) for d in day.diversions)
    got = sorted(
        (r["extension"], r["state"], r["message"], ts(r["start"]), ts(r["end"]))
        for r in _of(records, "diversion")
    )
    assert got == expected


def test_callbacks(lab_settings: Settings, day: SimDay, records: list[dict[str, Any]]) -> None:
    expected = Counter(callback_states(lab_settings, day, day.end).values())
    got = Counter(r["state"] for r in _of(records, "callback"))
    assert got == expected
    assert len(expected) >= 4  # the day exercises most states


def test_unforwarded_absences(day: SimDay, records: list[dict[str, Any]]) -> None:
    """The phones the simulator made unreachable for longer than the limit,
    each warned of once and resolved when it came back (the short ones not)."""
    opened = [(r["extension"], ts(r["started_at"])) for r in _of(records, "incident")
              if r["kind"] == "unforwarded_absence" and r["state"] == "open"]  # fmt: skip
    resolved = [(r["extension"], ts(r["started_at"]), ts(r["ended_at"]))
                for r in _of(records, "incident")
                if r["kind"] == "unforwarded_absence" and r["state"] == "resolved"]  # fmt: skip
    assert resolved == day.unforwarded_absences != []
    assert opened == [(ext, start) for ext, start, _ in day.unforwarded_absences]
    assert len(day.outages) > len(day.unforwarded_absences)  # short ones too
