"""Memory: what the core holds per call in progress.

One call of the mixed-load recording (an inbound call that rang a phone and
was answered, with its Local channels and queue hops) is played up to just
before its first hangup, N times over (new ids and caller numbers, starts
spread over an hour, in time order: ``common.calls_in_progress``) into a
fresh core: N calls in progress at once.  Measured with tracemalloc (bytes
the core allocated) and the process's RSS, for N = 100, 1 000 and 10 000.

Usage: .venv/bin/python bench/memory.py
"""

from __future__ import annotations

import gc
import tracemalloc

from common import LAB_CONFIG, calls_in_progress, machine, one_call, rss_mib, table

from pbxwatch.pipeline import build_engine
from pbxwatch.settings import load_settings


def measure(n: int, frames: list[bytes]) -> list[object]:
    settings = load_settings(LAB_CONFIG)
    events = list(calls_in_progress(n, frames))  # made before measuring
    gc.collect()
    rss0, objects0 = rss_mib(), len(gc.get_objects())
    tracemalloc.start()
    engine = build_engine(settings)
    base = tracemalloc.get_traced_memory()[0]
    for ev in events:
        engine.process(ev)
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    objects = len(gc.get_objects()) - objects0
    assert engine.tracked_calls == n, (engine.tracked_calls, n)
    return [f"{n:,}", f"{engine.tracked_channels:,}", f"{used / 2**20:.2f}",
            f"{(rss_mib() - rss0):.1f}", f"{objects:,}", f"{used / n:,.0f}"]  # fmt: skip


def main() -> None:
    frames = one_call()
    print(f"machine: {machine()}")
    print(f"one call = {len(frames)} frames up to its first hangup\n")
    measure(10, frames)  # warm up: imports, caches and interned strings of a first run
    rows = [measure(n, frames) for n in (100, 1_000, 10_000)]
    print(table(["calls in progress", "channels", "core MiB (tracemalloc)", "RSS +MiB",
                 "objects", "bytes per call"], rows))  # fmt: skip
    print("\ntarget: <= 4 KiB (4096 bytes) per call in progress")


if __name__ == "__main__":
    main()
