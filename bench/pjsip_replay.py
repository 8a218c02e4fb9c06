"""PJSIP against IAX2: the same three lab scenarios, recorded on each
technology, replayed through the pure pipeline (parse + core, no I/O).

The PJSIP streams carry RTCPSent/RTCPReceived (several per answered call)
and ChallengeSent, which the core counts by name and skips.  Rounds
interleave the two (IAX2, PJSIP, IAX2, ...); each round replays every
scenario ``--repeat`` times with a fresh pipeline each time.  Printed: per
technology the median time of a round, events/s, and the ratio of the
PJSIP round's time to the IAX2 round's (the same calls: the cost of the
extra events), and events/s PJSIP / IAX2.  Target: within 10 %.

Usage: .venv/bin/python bench/pjsip_replay.py [--rounds R] [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from pbxwatch.ami.codec import iter_recording
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("answered_after_rings", "unanswered_to_voicemail_not_forwarded", "voicemail_callback")
TECHS = {
    "IAX2": (ROOT / "tests/fixtures/ami", ROOT / "config/lab.yaml"),
    "PJSIP": (ROOT / "tests/fixtures/ami-pjsip", ROOT / "config/lab-pjsip.yaml"),
}


def _round(
    settings: Settings, frames: list[list[dict[str, str]]], repeat: int
) -> tuple[float, int]:
    events, t0 = 0, time.perf_counter()
    for _ in range(repeat):
        for stream in frames:
            pipeline = Pipeline(build_engine(settings))
            for fields in stream:
                pipeline.feed_fields(fields)
            pipeline.finish()
            events += pipeline.engine.stats["events"]
    return time.perf_counter() - t0, events


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=40)
    args = ap.parse_args()
    loaded = {}
    for tech, (folder, config) in TECHS.items():
        streams = [list(iter_recording((folder / f"{s}.ami").read_bytes())) for s in SCENARIOS]
        loaded[tech] = (load_settings(config), streams)
    times: dict[str, list[float]] = {t: [] for t in TECHS}
    events: dict[str, int] = {}
    ratios = []
    for _ in range(args.rounds):
        for tech, (settings, streams) in loaded.items():
            seconds, n = _round(settings, streams, args.repeat)
            times[tech].append(seconds)
            events[tech] = n
        ratios.append(times["PJSIP"][-1] / times["IAX2"][-1])
    for tech in TECHS:
        med = statistics.median(times[tech])
        print(f"{tech:6s} {events[tech]:8,} events a round, median {med * 1000:8.1f} ms, "
              f"{events[tech] / med:10,.0f} events/s")  # fmt: skip
    rate = (events["PJSIP"] / statistics.median(times["PJSIP"])) / (
        events["IAX2"] / statistics.median(times["IAX2"])
    )
    print("PJSIP round time / IAX2 round time, per round: "
          + " / ".join(f"{r:.2f}" for r in ratios))  # fmt: skip
    print(f"median {statistics.median(ratios):.3f} (the same calls; target <= 1.10); "
          f"events/s PJSIP / IAX2 {rate:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
