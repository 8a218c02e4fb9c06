"""A long run: the mixed-load recording repeated into more than two million
events (every repetition an hour after the last, with new ids), through
the decoder, the core and the metrics, configured as ``run`` is.  What the
core tracks and the process's resident memory must stay flat: calls,
channels and queue callers finish or expire, finished callbacks are
forgotten (they stay in the store), and nothing else grows with time."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest

from pbxwatch.ami.codec import parse_frame
from pbxwatch.ami.server import load_recording
from pbxwatch.metrics import Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import DetectionSettings, Settings
from pbxwatch.sim.repeat import repeated
from tests.conftest import FIXTURES

pytestmark = pytest.mark.chaos

REPEATS = 110  # x 18 600 frames
CHECK_EVERY = 250_000


def _rss_mib() -> float:
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * 4096 / 2**20


def test_two_million_events_keep_state_and_memory_flat(lab_settings: Settings) -> None:
    # forget callbacks never made a day past their deadline (30 days in
    # production): the run spans days, not months
    settings = lab_settings.model_copy(
        update={"detection": DetectionSettings(forget_open_callbacks_days=1.0)}
    )
    pipeline = Pipeline(build_engine(settings))
    pipeline.sinks.append(Metrics(settings))
    engine = pipeline.engine
    frames = load_recording(FIXTURES / "mixed_load.ami")
    samples: list[tuple[int, float, int, int, int, int]] = []
    for n, raw in enumerate(repeated(frames, REPEATS, pause=3600.0), 1):
        pipeline.feed_fields(parse_frame(raw))
        if n % CHECK_EVERY == 0:
            gc.collect()
            waiting = sum(len(q.waiting) for q in engine.queues.queues.values())
            samples.append((n, _rss_mib(), engine.tracked_calls, engine.tracked_channels,
                            len(engine.callbacks.callbacks), waiting))  # fmt: skip
    for n, rss, calls, channels, callbacks, waiting in samples:
        print(f"events {n:9d}  rss {rss:6.1f} MiB  calls {calls:3d}  channels {channels:3d}  "
              f"callbacks {callbacks:4d}  waiting {waiting}")  # fmt: skip
    assert samples[-1][0] >= 2_000_000
    assert not [k for k in engine.stats if k.startswith("handler_error")]
    assert engine.calls.stats["calls_finished"] > 100_000 // 10
    for _, _, calls, channels, callbacks, waiting in samples:
        assert calls < 50
        assert channels < 150
        assert callbacks < 2_000
        assert waiting < 20
    half = samples[len(samples) // 2]
    assert samples[-1][1] - half[1] < 10.0, samples  # MiB over the second million
    assert engine.callbacks.forgotten > 1_000
