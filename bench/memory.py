"""Memory: what the core holds per call in progress.

One call of the mixed-load recording (an inbound call that rang a phone and
was answered, with its Local channels and queue hops) is played up to just
before its first hangup, N times over (new ids and caller numbers, starts
spread over an hour, in time order: ``common.calls_in_progress``) into a
fresh core: N calls in progress at once.  Measured with tracemalloc and the
process's RSS, for N = 100, 1 000 and 10 000.

Counted from the first allocation: tracemalloc starts before the first
frame is parsed, and the frames are parsed and their events built one at a
time as the core takes them (as a live run does), so every string the core
keeps from a parsed frame (ids, channel names, header values, a field dict
an event left behind) is counted; what it does not keep is freed before
the count.  Only the empty core itself (built before, the same for every N)
is subtracted.  ``--also-prebuilt`` adds the old figure, with every event
built before tracing starts (which leaves out what the core keeps of
them), in the same run.

Usage: .venv/bin/python bench/memory.py [--also-prebuilt]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc

from common import LAB_CONFIG, calls_in_progress, machine, one_call, rss_mib, table

from pbxwatch.pipeline import build_engine
from pbxwatch.settings import Settings, load_settings

TARGET = 4096  # bytes per call in progress


def measure(settings: Settings, n: int, frames: list[bytes], *, prebuilt: bool) -> list[object]:
    """One fresh core with ``n`` calls in progress: its figures as a row."""
    gc.collect()
    rss0, objects0 = rss_mib(), len(gc.get_objects())
    events = list(calls_in_progress(n, frames)) if prebuilt else None
    engine = build_engine(settings)
    tracemalloc.start()
    gc.collect()
    base = tracemalloc.get_traced_memory()[0]
    feed = events if events is not None else calls_in_progress(n, frames)
    for ev in feed:  # built (parsed) one at a time, inside the count
        engine.process(ev)
    del feed, ev
    events = None  # the prebuilt list: not the core's
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    objects = len(gc.get_objects()) - objects0
    assert engine.tracked_calls == n, (engine.tracked_calls, n)
    way = "events built first (old)" if prebuilt else "from the first allocation"
    rss = "-" if prebuilt else f"{rss_mib() - rss0:.1f}"  # the freed events' pages linger
    return [way, f"{n:,}", f"{engine.tracked_channels:,}", f"{used / 2**20:.2f}",
            rss, f"{objects:,}", f"{used / n:,.0f}"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--also-prebuilt", action="store_true",
                    help="also the old count (events built before tracing), same run")  # fmt: skip
    args = ap.parse_args()
    settings = load_settings(LAB_CONFIG)
    frames = one_call()
    print(f"machine: {machine()}")
    print(f"one call = {len(frames)} frames up to its first hangup\n")
    measure(settings, 10, frames, prebuilt=False)  # warm up: imports, caches, interned names
    ways = (True, False) if args.also_prebuilt else (False,)
    rows = [measure(settings, n, frames, prebuilt=p) for n in (100, 1_000, 10_000) for p in ways]
    print(table(["counted", "calls in progress", "channels", "core MiB (tracemalloc)",
                 "RSS +MiB", "objects", "bytes per call"], rows))  # fmt: skip
    print(f"\ntarget: <= 4 KiB ({TARGET} bytes) per call in progress, from the first allocation")


if __name__ == "__main__":
    main()
