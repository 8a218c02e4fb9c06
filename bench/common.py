"""What the benchmarks share: the stream, the machine, medians, tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/x.py` from a checkout

from pbxwatch.ami.server import BANNER, load_recording  # noqa: E402
from pbxwatch.sim.repeat import repeated  # noqa: E402

MIXED_LOAD = ROOT / "tests/fixtures/ami/mixed_load.ami"
LAB_CONFIG = ROOT / "config/lab.yaml"
READ_SIZE = 65_536  # what one socket read hands the protocol


def stream(min_events: int) -> tuple[bytes, int]:
    """The mixed-load recording repeated (new ids and times each time) to at
    least ``min_events`` frames: the banner, then the frames, as bytes."""
    frames = load_recording(MIXED_LOAD)
    times = -(-min_events // len(frames))
    body = b"".join(raw + b"\r\n\r\n" for raw in repeated(frames, times))
    return BANNER + body, times * len(frames)


def reads(data: bytes, size: int = READ_SIZE) -> Iterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


def median_of(runs: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
            f"{platform.system()} {platform.release()}")  # fmt: skip


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in
                       enumerate(zip(r, widths, strict=True))) for r in cells]  # fmt: skip
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def p99(values: Sequence[float]) -> float:
    """The 99th percentile by nearest rank of sorted ``values``."""
    return values[min(len(values) - 1, int(len(values) * 0.99))]
