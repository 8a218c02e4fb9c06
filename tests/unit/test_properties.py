"""Property tests: whatever the stream, the core never raises, and state
returns to nothing after a quiet period."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pbxwatch.ami.codec import FrameDecoder
from pbxwatch.core.calls import CallRules
from pbxwatch.core.directory import Directory
from pbxwatch.core.engine import Engine
from pbxwatch.core.events import AmiEvent
from pbxwatch.settings import load_settings
from tests.conftest import LAB_CONFIG
from tests.unit.events import recording_events

DIRECTORY: Directory = load_settings(LAB_CONFIG).directory_model()
RULES = CallRules(idle_timeout=3600.0, max_duration=7200.0)
POOL = (
    recording_events("group_number_answered")
    + recording_events("voicemail_callback")
    + recording_events("abandoned_while_ringing")
)
LAST_TIME = max(e.time or 0.0 for e in POOL)
KEYS = ["Event", "Channel", "Uniqueid", "Linkedid", "DestChannel", "DestUniqueid", "Queue",
        "DialStatus", "Cause", "Mailbox", "Timestamp", "Application", "AppData", "Presentity",
        "Status", "Extension", "TransfereeChannel", "ActionID", "LastApplication",
        "UniqueID"]  # fmt: skip
NAMES = [*sorted({e.name for e in POOL}), "Bogus", ""]


garbage_event = st.builds(
    lambda name, fields, t: AmiEvent(name=name, fields={"Event": name, **fields}, time=t),
    st.sampled_from(NAMES),
    st.dictionaries(st.sampled_from(KEYS), st.text(max_size=12), max_size=8),
    st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
)
recorded_event = st.sampled_from(POOL)


def _feed_and_check(events: list[AmiEvent]) -> None:
    engine = Engine(DIRECTORY, RULES)
    for e in events:
        engine.process(e)
    _assert_healthy(engine)


def _assert_healthy(engine: Engine) -> None:
    assert not [k for k in engine.stats if k.startswith("handler_error")], engine.stats
    engine.tick(engine.now + RULES.max_duration + 120)
    engine.tick(engine.now + 120)
    assert engine.tracked_calls == 0
    assert engine.tracked_channels == 0


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.one_of(recorded_event, recorded_event, garbage_event), max_size=300))
def test_any_mix_of_events_never_raises_and_drains(events: list[AmiEvent]) -> None:
    _feed_and_check(events)


@settings(max_examples=100, deadline=None)
@given(st.permutations(POOL[:200]))
def test_shuffled_stream(events: list[AmiEvent]) -> None:
    _feed_and_check(events)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(POOL)), st.integers(0, len(POOL)), st.integers(1, 3))
def test_truncated_and_duplicated_stream(start: int, stop: int, copies: int) -> None:
    _feed_and_check([e for e in POOL[start:stop] for _ in range(copies)])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=20))
def test_decoder_takes_any_bytes(chunks: list[bytes]) -> None:
    dec = FrameDecoder(max_frame=4096)
    engine = Engine(DIRECTORY, RULES)
    for chunk in chunks:
        for fields in dec.feed(chunk):
            ev = AmiEvent.from_fields(fields)
            if ev is not None:
                engine.process(ev)
    _assert_healthy(engine)
