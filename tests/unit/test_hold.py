"""Events of calls never seen are held from a login until the state read
(``Engine.awaiting_state``); when none comes they are applied as before,
after ``HOLD_LIMIT`` events or ``HOLD_SECONDS`` of PBX time."""

from __future__ import annotations

import pytest

from pbxwatch.core import engine as engine_module
from pbxwatch.core.engine import Engine
from pbxwatch.core.events import AmiEvent
from pbxwatch.pipeline import build_engine
from pbxwatch.settings import Settings
from tests.unit.test_restart_pair import events_of


def _part2(lab_settings: Settings) -> tuple[Engine, list[AmiEvent]]:
    eng = build_engine(lab_settings, keep_everything=True)
    eng.awaiting_state()
    return eng, events_of("restart_gap.part2.ami")


def test_held_events_are_applied_when_no_state_read_comes(lab_settings: Settings) -> None:
    eng, events = _part2(lab_settings)
    first = next(ev.time for ev in events if ev.time is not None)
    for ev in events[:40]:
        eng.process(ev)
    held = eng.stats["held_until_state_read"]
    assert held > 0  # part 2 opens with calls begun while pbxwatch was down
    assert eng.tracked_calls < held
    assert eng.stats["state_read_too_late"] == 0
    eng.tick(first + engine_module.HOLD_SECONDS + 1)
    assert eng.stats["state_read_too_late"] == 1
    assert eng.tracked_calls > 0  # made from what was seen, as without a hold
    assert eng._held is None


def test_a_full_hold_is_applied_at_once(
    lab_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "HOLD_LIMIT", 5)
    eng, events = _part2(lab_settings)
    for ev in events[:200]:
        eng.process(ev)
    assert eng.stats["state_read_too_late"] == 1
    assert eng.stats["held_until_state_read"] == 5
    assert eng._held is None  # holding stopped: later events are applied as they come
