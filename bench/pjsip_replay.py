"""PJSIP against IAX2: the same three lab scenarios, recorded on each
technology, replayed through the pure pipeline (no I/O), two ways:

* **frames**: the frames parsed beforehand, the pipeline timed alone;
* **bytes**: the recording's bytes decoded into frames and fed, as
  ``pbxwatch replay`` and the AMI client do.

The PJSIP streams carry RTCPSent/RTCPReceived (several per answered call)
and ChallengeSent: the decoder does not parse their frames (a prefix check
on the bytes) and the core counts them by name.  Rounds interleave the
technologies and ways (IAX2, PJSIP, IAX2, ...); each round replays every
scenario ``--repeat`` times with a fresh pipeline each time.  Printed, per
way: per technology the median time of a round and events/s, the ratio of
the PJSIP round's time to the IAX2 round's (the same calls: the cost of
the extra events), and events/s PJSIP / IAX2.  Target: within 10 %.

Usage: .venv/bin/python bench/pjsip_replay.py [--rounds R] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any

from pbxwatch.ami.codec import iter_recording
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("answered_after_rings", "unanswered_to_voicemail_not_forwarded", "voicemail_callback")
TECHS = {
    "IAX2": (ROOT / "tests/fixtures/ami", ROOT / "config/lab.yaml"),
    "PJSIP": (ROOT / "tests/fixtures/ami-pjsip", ROOT / "config/lab-pjsip.yaml"),
}


def _round(settings: Settings, streams: list[Any], repeat: int) -> tuple[float, int]:
    """One round; a stream is its parsed frames, or its bytes to decode."""
    events, t0 = 0, time.perf_counter()
    for _ in range(repeat):
        for stream in streams:
            pipeline = Pipeline(build_engine(settings))
            frames = (iter_recording(stream, skip_counted=True) if isinstance(stream, bytes)
                      else stream)  # fmt: skip
            for fields in frames:
                pipeline.feed_fields(fields)
            pipeline.finish()
            events += pipeline.engine.stats["events"]
    return time.perf_counter() - t0, events


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    loaded: dict[tuple[str, str], tuple[Settings, list[Any]]] = {}
    for tech, (folder, config) in TECHS.items():
        data = [(folder / f"{s}.ami").read_bytes() for s in SCENARIOS]
        settings = load_settings(config)
        loaded[("frames", tech)] = (settings, [list(iter_recording(d)) for d in data])
        loaded[("bytes", tech)] = (settings, data)
    times: dict[tuple[str, str], list[float]] = {k: [] for k in loaded}
    events: dict[tuple[str, str], int] = {}
    ratios: dict[str, list[float]] = {"frames": [], "bytes": []}
    for _ in range(args.rounds):
        for key, (settings, streams) in loaded.items():
            seconds, n = _round(settings, streams, args.repeat)
            times[key].append(seconds)
            events[key] = n
        for way, per_way in ratios.items():
            per_way.append(times[(way, "PJSIP")][-1] / times[(way, "IAX2")][-1])
    for way, per_round in ratios.items():
        print(f"{way}:")
        for tech in TECHS:
            med = statistics.median(times[(way, tech)])
            print(f"  {tech:6s} {events[(way, tech)]:8,} events a round, median "
                  f"{med * 1000:8.1f} ms, {events[(way, tech)] / med:10,.0f} events/s")  # fmt: skip
        rate = (events[(way, "PJSIP")] / statistics.median(times[(way, "PJSIP")])) / (
            events[(way, "IAX2")] / statistics.median(times[(way, "IAX2")])
        )
        print("  PJSIP round time / IAX2 round time, per round: "
              + " / ".join(f"{r:.2f}" for r in per_round))  # fmt: skip
        print(f"  median {statistics.median(per_round):.3f} (the same calls; target <= 1.10); "
              f"events/s PJSIP / IAX2 {rate:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
