"""What the benchmarks share: the stream, the machine, medians, tables."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import os
import platform
import re
import statistics
import subprocess
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
from pbxwatch.sim.repeat import repeated  # noqa: E402
from pbxwatch.store.checkpoints import Checkpointer  # noqa: E402

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


#: a header whose value is an epoch time or an Asterisk id (as pbxwatch.sim.repeat)
_EPOCH = re.compile(rb"^([A-Za-z]+: )(\d{10})(\.\d+)(?=\r|$)", re.MULTILINE)
_TIMESTAMP = re.compile(rb"^Timestamp: (\d+\.\d+)", re.MULTILINE)
_CALLER = re.compile(rb"^CallerIDNum: (\d{6,})", re.MULTILINE)


def calls_in_progress(
    n: int,
    frames: Sequence[bytes] | None = None,
    *,
    spread: int = 3600,
    ids: int = 0,
    before: float | None = None,
) -> Iterator[AmiEvent]:
    """``n`` copies of :func:`one_call`, each with new ids (100 s apart,
    moved ``ids`` seconds more), its own caller number and a start
    ``spread`` / ``n`` seconds after the last one's (whole seconds), their
    events merged in time order; with ``before``, all moved earlier so the
    last event comes before that time.  At the end the ``n`` calls are all
    still up.

    In time order, the event times never go back: played one copy after
    the other, the clock model takes each jump back for a step of the PBX's
    clock, and the core kept ~1 100 calls (each copy moved the time on by
    its length, and the calls idle for 4 h expired).  Distinct times and
    numbers keep the checkpoint's compression honest."""
    frames = one_call() if frames is None else frames
    stamps = [float(t[1]) if (t := _TIMESTAMP.search(raw)) else 0.0 for raw in frames]
    number = _CALLER.search(b"".join(frames))
    caller = number[1] if number else None
    times = 0 if before is None else math.floor(before - max(stamps) - spread) - 1

    def copy(k: int) -> Iterator[tuple[float, int, int]]:
        offset = times + k * spread // max(n, 1)
        return ((t + offset, k, i) for i, t in enumerate(stamps))

    for _, k, i in heapq.merge(*(copy(k) for k in range(n))):
        raw = frames[i]
        if caller is not None:
            raw = raw.replace(caller, caller[:-5] + b"%05d" % (k % 100_000))
        later = (times + k * spread // max(n, 1), ids + 100 * k)  # Timestamp, ids

        def moved(m: re.Match[bytes], later: tuple[int, int] = later) -> bytes:
            by = later[0] if m[1] == b"Timestamp: " else later[1]
            return m[1] + b"%d" % (int(m[2]) + by) + m[3]

        ev = AmiEvent.from_fields(parse_frame(_EPOCH.sub(moved, raw)))
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


async def lag_monitor(
    lags: list[float], stop: asyncio.Event, at: list[float] | None = None
) -> None:
    """Append the lateness of a 1 ms timer, again and again, until ``stop``
    is set: how long the event loop was held each time (and to ``at``, when
    given, the ``perf_counter`` time each was measured)."""
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        t1 = time.perf_counter()
        lags.append(t1 - t0 - 0.001)
        if at is not None:
            at.append(t1)


#: the longest slice on the event loop of every checkpoint a
#: :class:`TimedCheckpointer` saved (seconds): what the reader may have waited
DUMPS: list[float] = []


class TimedCheckpointer(Checkpointer):
    """``pbxwatch run``'s checkpointer, noting every save: from its start
    until queued (``last_seconds``), its time on the loop, its longest slice
    on the loop, the calls it held, its stored size, and when it ran
    (``perf_counter`` at its start and end)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.took: list[float] = []
        self.loop: list[float] = []
        self.calls: list[int] = []
        self.sizes: list[int] = []
        self.windows: list[tuple[float, float]] = []

    async def save(self) -> None:
        started = time.perf_counter()
        await super().save()
        self.windows.append((started, time.perf_counter()))
        self.took.append(self.last_seconds)
        self.loop.append(self.last_loop_seconds)
        DUMPS.append(self.last_slice_seconds)
        self.calls.append(self.last_calls)
        self.sizes.append(self.last_bytes)


def start_probed(tmp: Path, probe: str, config: Path, result: Path) -> subprocess.Popen[bytes]:
    """``pbxwatch run`` with ``config`` inside ``probe`` (a script that runs
    it and writes what it measured to ``result``), its output in
    ``tmp/run.log``; the AMI secret is the simulator's (``BENCH_SECRET``)."""
    script = tmp / "probe.py"
    script.write_text(probe)
    env = {**os.environ, "BENCH_SECRET": "s", "PYTHONPATH": str(ROOT)}
    log = (tmp / "run.log").open("wb")
    return subprocess.Popen([sys.executable, str(script), str(config), str(result)],
                            stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip


def p99(values: Sequence[float]) -> float:
    """The 99th percentile by nearest rank of sorted ``values``."""
    return values[min(len(values) - 1, int(len(values) * 0.99))]
