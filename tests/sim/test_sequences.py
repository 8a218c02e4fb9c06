"""The simulator's calls have the event sequences of the real recordings.

For every call type that both the lab recordings (``../shared/
ami-recordings``, copied byte for byte into ``tests/fixtures/ami``) and a
simulated day contain, each simulated call's signature (see
``tests/sim/sequences.py``) must be one the real Asterisk produced for that
type.  A call that reaches the contact centre may instead combine a
recorded way *into* the queue for its type with any recorded course *of*
the queue (an agent letting it ring out happens after every way in, but
the recordings hold only a few calls of each way).  And every event the
simulator sends must have a header list (names and order) that Asterisk
sent for that event.
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from pbxwatch.ami.codec import parse_frame
from pbxwatch.ami.server import load_recording
from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimDay, simulate_day
from tests.conftest import RECORDINGS
from tests.sim.expect import DAY
from tests.sim.sequences import (
    Signature,
    by_call,
    header_shapes,
    recorded,
    signature,
    split_at_queue,
)


@pytest.fixture(scope="module")
def day(lab_settings: Settings) -> SimDay:
    return simulate_day(lab_settings, DAY, calls_per_hour=60, seed=3)


@pytest.fixture(scope="module")
def real() -> dict[str, Counter[Signature]]:
    return recorded(RECORDINGS)


def simulated(day: SimDay) -> dict[str, Counter[Signature]]:
    calls = by_call(fields for _, fields in day.frames)
    out: dict[str, Counter[Signature]] = defaultdict(Counter)
    for call, events in zip(day.calls, _in_start_order(calls), strict=True):
        out[call.classification][signature(events)] += 1
    return out


def _in_start_order(calls: dict[str, list]) -> list[list]:  # type: ignore[type-arg]
    return sorted(calls.values(), key=lambda evs: float(evs[0]["Timestamp"]))


def test_the_day_has_the_recorded_call_types(day: SimDay, real: dict[str, Counter[Signature]]
                                              ) -> None:  # fmt: skip
    both = set(simulated(day)) & set(real)
    assert len(both) >= 15, sorted(both)


def test_every_simulated_call_has_a_recorded_sequence(
    day: SimDay, real: dict[str, Counter[Signature]]
) -> None:
    into: dict[str, set[Signature]] = defaultdict(set)
    course: set[Signature] = set()
    for kind, sigs in real.items():
        for halves in filter(None, map(split_at_queue, sigs)):
            into[kind].add(halves[0])
            course.add(halves[1])
    wrong: dict[str, list[str]] = {}
    for kind, sigs in simulated(day).items():
        if kind not in real:
            continue
        for sig in sigs:
            halves = split_at_queue(sig)
            if halves and halves[0] in into[kind] and halves[1] in course:
                continue
            if sig not in real[kind]:
                closest = max(real[kind], key=lambda r: len(set(r) & set(sig)))
                diff = [f"- {s}" for s in closest if s not in sig]
                diff += [f"+ {s}" for s in sig if s not in closest]
                wrong[kind] = diff
    assert not wrong, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in wrong.items())


def test_every_event_has_a_recorded_header_list(day: SimDay) -> None:
    real: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for path in RECORDINGS:
        for kind, shapes in header_shapes(parse_frame(f.raw) for f in load_recording(path)).items():
            real[kind] |= shapes
    wrong = {
        kind: sorted(shapes - real[kind])
        for kind, shapes in header_shapes(fields for _, fields in day.frames).items()
        if not shapes <= real[kind]
    }
    assert not wrong, wrong
