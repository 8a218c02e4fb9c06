"""Replay speed of the pure pipeline: parse + core, no I/O.

Runs the largest shared recording several times in one process and prints
the median time, events per second and milliseconds per thousand events.
Usage: .venv/bin/python bench/replay_speed.py [RECORDING] [RUNS]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from pbxwatch.ami.codec import iter_recording
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    rec = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "tests/fixtures/ami/mixed_load.ami"
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 7
    settings = load_settings(ROOT / "config/lab.yaml")
    data = rec.read_bytes()
    times, events = [], 0
    for _ in range(runs):
        pipeline = Pipeline(build_engine(settings))
        t0 = time.perf_counter()
        for fields in iter_recording(data, skip_counted=True):
            pipeline.feed_fields(fields)
        pipeline.finish()
        times.append(time.perf_counter() - t0)
        events = pipeline.engine.stats["events"]
    med = statistics.median(times)
    print(f"recording        {rec.name} ({len(data):,} bytes, {events:,} events)")
    print(f"runs             {runs}, median {med * 1000:.1f} ms (min {min(times) * 1000:.1f})")
    print(f"events/s         {events / med:,.0f}")
    print(f"ms per 1000 ev.  {med / events * 1e6:.2f}")


if __name__ == "__main__":
    main()
