"""Slow consumer: the store takes 200 ms per batch; does the AMI reader stall?

Asterisk drops a manager session whose reader falls behind (its
``writetimeout``), so reading must never wait for the database.  A real
``AmiSource`` reads the mixed-load recording, repeated, from the project's
AMI server (in a child process, as a PBX would be) over TCP as fast as the
socket goes, into the core, the metrics and a SQLite store whose every
batch is made 200 ms slower.  The process is set up as ``pbxwatch run``
sets itself up (``pbxwatch.heap.settle`` once built).  Measured:

* the longest turn of the reader (decode and handle up to
  ``FRAMES_PER_TURN`` frames: core, metrics, store queue) or of the sinks
  catching up (``SINK_SLICE`` records a turn, after an event that made
  hundreds);
* the event loop's lag (a 1 ms timer's lateness): how long a read, or the
  watchdog's Ping answer, could have waited for its turn;
* garbage-collector pauses, by generation (they land on the loop too);
* the store's peak backlog (rows waiting, in memory or spilled).

Each figure is the median of ``--runs`` runs (each run's value shown too).

Usage: .venv/bin/python bench/slow_store.py [--events N] [--delay S] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import LAB_CONFIG, MIXED_LOAD, machine, p99, table
from pydantic import SecretStr
from sqlalchemy import event

from pbxwatch import heap
from pbxwatch.ami import client as ami_client
from pbxwatch.ami.client import AmiSource
from pbxwatch.ami.server import AmiServer, RecordedFrame, load_recording
from pbxwatch.metrics import Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import StorageSettings, load_settings
from pbxwatch.sim.repeat import repeated
from pbxwatch.store import writer as writer_module
from pbxwatch.store.db import make_engine, upgrade
from pbxwatch.store.session import writer_for


def _slowed(store: Any, delay: float) -> None:
    """Every batch waits ``delay`` in the database's own thread (SQLite's
    ``bench_sleep``), as a slow or far database would: the event loop is
    free meanwhile, as it is while asyncpg waits for PostgreSQL."""

    @event.listens_for(store.sync_engine, "connect")
    def _register(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.create_function("bench_sleep", 1, time.sleep)

    if getattr(writer_module.write_rows, "slowed", False):
        return
    original = writer_module.write_rows

    def write_rows(conn: Any, batch: Any) -> None:
        conn.exec_driver_sql(f"SELECT bench_sleep({delay})")
        original(conn, batch)

    write_rows.slowed = True  # type: ignore[attr-defined]
    writer_module.write_rows = write_rows


TURNS: list[float] = []  # every turn of the reader or the sinks, seconds
CLEAN_TURNS: list[float] = []  # those with no full (generation 2) collection inside
GC_PAUSES: dict[int, list[float]] = {}  # generation -> pauses, seconds


def _timed(owner: Any, name: str) -> None:
    """Time every call of ``owner.name`` as one turn of the event loop."""
    original = getattr(owner, name)

    def timed(*args: Any) -> None:
        full = gc.get_stats()[2]["collections"]
        t0 = time.perf_counter()
        original(*args)
        took = time.perf_counter() - t0
        TURNS.append(took)
        if gc.get_stats()[2]["collections"] == full:
            CLEAN_TURNS.append(took)

    setattr(owner, name, timed)


def _timed_turns() -> None:
    """The reader's turns (decode and hand over up to ``FRAMES_PER_TURN``
    frames) and the sinks' (a slice of records a turn when they are behind)."""
    _timed(ami_client._Protocol, "_handle")
    _timed(Pipeline, "catch_up")


def _gc_pauses() -> None:
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            GC_PAUSES.setdefault(info["generation"], []).append(time.perf_counter() - started[0])

    gc.callbacks.append(callback)


def _serve(events: int, ports: Any) -> None:
    """The child process: the PBX, playing the stream to one client."""

    async def serve() -> None:
        recorded = load_recording(MIXED_LOAD)
        times = -(-events // len(recorded))
        frames = [RecordedFrame(raw, None) for raw in repeated(recorded, times)]
        server = AmiServer(frames, "u", "s", close_when_done=True)
        ports.put((await server.start(), len(frames)))
        await asyncio.Event().wait()  # until the bench is done: it terminates us

    asyncio.run(serve())


async def _lag_monitor(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - t0 - 0.001)


@dataclass
class Figures:
    """One run's measurements, in milliseconds where not said otherwise."""

    frames: int = 0
    frames_per_s: float = 0.0
    batches: int = 0
    turns: int = 0
    turn_max: float = 0.0
    turn_p99: float = 0.0
    turn_max_without_full_gc: float = 0.0
    lag_max: float = 0.0
    lag_p99: float = 0.0
    gc: dict[int, tuple[int, float]] = field(default_factory=dict)  # gen -> count, max ms
    backlog_peak: int = 0

    @property
    def stall(self) -> float:
        return max(self.turn_max, self.lag_max)


async def run(delay: float, port: int) -> Figures:
    settings = load_settings(LAB_CONFIG)
    TURNS.clear()
    CLEAN_TURNS.clear()
    GC_PAUSES.clear()
    lags: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        st = settings.model_copy(update={"storage": StorageSettings(data_dir=Path(tmp))})
        store = make_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await upgrade(store)
        _slowed(store, delay)
        await store.dispose()  # new connections, with the slow function
        pipeline = Pipeline(build_engine(st), schedule=asyncio.get_running_loop().call_soon)
        pipeline.sinks.append(Metrics(st))
        writer = writer_for(st, store, "bench")
        pipeline.sinks.append(writer.submit)
        heap.settle()
        GC_PAUSES.clear()
        writer.start()
        ami = settings.ami.model_copy(update={"port": port, "username": "u"})
        source = AmiSource(
            ami, SecretStr("s"), pipeline.feed_fields, reconnect=False, busy=lambda: pipeline.behind
        )
        stop = asyncio.Event()
        monitor = asyncio.create_task(_lag_monitor(lags, stop))
        peak = 0
        t0 = time.perf_counter()
        reading = asyncio.create_task(source.run())
        while not reading.done():
            peak = max(peak, writer.backlog)
            await asyncio.sleep(0.05)
        read_s = time.perf_counter() - t0
        stop.set()
        await monitor
        await writer.close()
        await store.dispose()
    lag_ms = sorted(x * 1000 for x in lags)
    turn_ms = sorted(x * 1000 for x in TURNS)
    return Figures(
        frames=source.frames,
        frames_per_s=source.frames / read_s,
        batches=writer.stats.batches,
        turns=len(turn_ms),
        turn_max=turn_ms[-1],
        turn_p99=p99(turn_ms),
        turn_max_without_full_gc=max(CLEAN_TURNS) * 1000,
        lag_max=lag_ms[-1],
        lag_p99=p99(lag_ms),
        gc={g: (len(v), max(v) * 1000) for g, v in sorted(GC_PAUSES.items())},
        backlog_peak=peak,
    )


def report(runs: list[Figures], delay: float) -> None:
    def row(name: str, values: list[float], fmt: str = "{:.2f}") -> list[str]:
        shown = [fmt.format(v) for v in values]
        return [name, fmt.format(statistics.median(values)), " / ".join(shown)]

    full = [r.gc.get(2, (0, 0.0)) for r in runs]
    rows = [
        row("frames read per second", [r.frames_per_s for r in runs], "{:,.0f}"),
        row("longest turn (reader or sinks), ms", [r.turn_max for r in runs]),
        row("  without a full gc inside, ms", [r.turn_max_without_full_gc for r in runs]),
        row("turn p99, ms", [r.turn_p99 for r in runs]),
        row("event loop lag max, ms", [r.lag_max for r in runs]),
        row("event loop lag p99, ms", [r.lag_p99 for r in runs]),
        row("full (gen 2) collections", [float(n) for n, _ in full], "{:.0f}"),
        row("  longest, ms", [ms for _, ms in full]),
        row("young (gen 0/1) gc max, ms",
            [max(ms for g, (_, ms) in r.gc.items() if g < 2) for r in runs]),
        row("store backlog peak, rows", [float(r.backlog_peak) for r in runs], "{:,.0f}"),
    ]  # fmt: skip
    first = runs[0]
    print(f"{first.frames:,} frames a run, {first.turns:,} timed turns, store delay "
          f"{delay * 1000:.0f} ms per batch ({first.batches} batches)\n")  # fmt: skip
    print(table(["", "median", "runs"], rows))
    stall = statistics.median(r.stall for r in runs)
    worst = max(r.stall for r in runs)
    print(
        f"\nreader stall (longest turn or loop lag): median {stall:.2f} ms, "
        f"worst {worst:.2f} ms (target < 20 ms)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}\n")
    ports: Any = multiprocessing.Queue()
    pbx = multiprocessing.Process(target=_serve, args=(args.events, ports), daemon=True)
    pbx.start()
    port, _frames = ports.get(timeout=120)
    _timed_turns()
    _gc_pauses()
    try:
        report([asyncio.run(run(args.delay, port)) for _ in range(args.runs)], args.delay)
    finally:
        pbx.terminate()


if __name__ == "__main__":
    main()
