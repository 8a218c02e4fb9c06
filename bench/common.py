"""What the benchmarks share: the stream, the machine, medians, tables."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `python bench/x.py` from a checkout

from pbxwatch.ami.codec import parse_frame  # noqa: E402
from pbxwatch.ami.server import BANNER, load_recording  # noqa: E402
from pbxwatch.core.events import AmiEvent  # noqa: E402
from pbxwatch.sim.repeat import repeated, shifted  # noqa: E402

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


def one_call() -> list[bytes]:
    """The frames of the busiest answered call of the mixed-load recording
    (an inbound call that rang a phone and was answered, with its Local
    channels and queue hops: 7 channels), up to just before its first
    Hangup: a call in progress."""
    by_call: dict[bytes, list[bytes]] = defaultdict(list)
    for f in load_recording(MIXED_LOAD):
        m = re.search(rb"^Linkedid: (\S+)", f.raw, re.MULTILINE)
        if m:
            by_call[m[1]].append(f.raw)
    answered = [fs for fs in by_call.values() if any(b"Event: BridgeEnter" in f for f in fs)]
    frames = max(answered, key=len)
    first_hangup = next(i for i, f in enumerate(frames) if f.startswith(b"Event: Hangup"))
    return frames[:first_hangup]


def calls_in_progress(
    n: int, frames: Sequence[bytes] | None = None, *, ids: int = 0, times: int = 0
) -> Iterator[AmiEvent]:
    """``n`` copies of :func:`one_call` (new ids, 100 s apart, moved ``ids``
    seconds more; event times moved ``times`` seconds), interleaved frame
    by frame: ``n`` calls begun at the same moment and all still up at the
    end.  Interleaved, the event times never go back, which the clock model
    would take for a step of the PBX's clock (played one copy after the
    other, the core kept ~1 100: each copy moved the time on by its length,
    and calls idle for 4 h expired)."""
    frames = one_call() if frames is None else frames
    for raw in frames:
        moved = shifted(shifted(raw, times), -times, times=False) if times else raw
        for k in range(n):
            ev = AmiEvent.from_fields(parse_frame(shifted(moved, ids + 100 * k, times=False)))
            if ev is not None:
                yield ev


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


@contextlib.contextmanager
def postgres() -> Iterator[Any]:
    """A throw-away PostgreSQL server (``tests.pg``: Debian's initdb and
    pg_ctl in a temp dir), or None without the binaries."""
    try:
        from tests import pg
    except ImportError:
        yield None
        return
    if not pg.available():
        yield None
        return
    server = pg.PostgresServer()
    try:
        yield server
    finally:
        server.remove()


async def fresh_database(server: Any) -> str:
    """The URL of a new, empty database on ``server``."""
    base = str(server.url).rsplit("/", 1)[0]
    admin = create_async_engine(base + "/postgres", isolation_level="AUTOCOMMIT")
    name = f"b{time.monotonic_ns()}"
    async with admin.connect() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    return f"{base}/{name}"


async def lag_monitor(lags: list[float], stop: asyncio.Event) -> None:
    """Append the lateness of a 1 ms timer, again and again, until ``stop``
    is set: how long the event loop was held each time."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - t0 - 0.001)


def p99(values: Sequence[float]) -> float:
    """The 99th percentile by nearest rank of sorted ``values``."""
    return values[min(len(values) - 1, int(len(values) * 0.99))]
