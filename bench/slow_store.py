"""Slow consumer: the store takes 200 ms per batch; does the AMI reader stall?

Asterisk drops a manager session whose reader falls behind (its
``writetimeout``), so reading must never wait for the database.  A real
``AmiSource`` reads the mixed-load recording, repeated, from the project's
AMI server (in a child process, as a PBX would be) over TCP as fast as the
socket goes, into the core, the metrics and a SQLite store whose every
batch is made 200 ms slower.  The process is set up as ``pbxwatch run``
sets itself up (``pbxwatch.heap.settle`` once built).  Measured:

* the longest turn of the reader (decode and handle up to
  ``FRAMES_PER_TURN`` frames: core, metrics, store queue);
* the event loop's lag (a 1 ms timer's lateness): how long a read, or the
  watchdog's Ping answer, could have waited for its turn;
* garbage-collector pauses, by generation (they land on the loop too);
* the store's peak backlog (rows waiting, in memory or spilled).

Usage: .venv/bin/python bench/slow_store.py [--events N] [--delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import statistics
import tempfile
import time
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

    original = writer_module.write_rows

    def write_rows(conn: Any, batch: Any) -> None:
        conn.exec_driver_sql(f"SELECT bench_sleep({delay})")
        original(conn, batch)

    writer_module.write_rows = write_rows


def _timed_turns(durations: list[float], clean: list[float]) -> None:
    """Every turn's duration; ``clean`` gets those with no full (generation
    2) collection inside, to tell our code's stalls from the collector's."""
    original = ami_client._Protocol._handle

    def _handle(self: Any, limit: int | None) -> None:
        full = gc.get_stats()[2]["collections"]
        t0 = time.perf_counter()
        original(self, limit)
        took = time.perf_counter() - t0
        durations.append(took)
        if gc.get_stats()[2]["collections"] == full:
            clean.append(took)

    ami_client._Protocol._handle = _handle  # type: ignore[method-assign]


def _gc_pauses(pauses: dict[int, list[float]]) -> None:
    started = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.setdefault(info["generation"], []).append(time.perf_counter() - started[0])

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


async def run(events: int, delay: float, port: int) -> None:
    settings = load_settings(LAB_CONFIG)
    durations: list[float] = []
    clean: list[float] = []
    lags: list[float] = []
    pauses: dict[int, list[float]] = {}
    _timed_turns(durations, clean)
    with tempfile.TemporaryDirectory() as tmp:
        st = settings.model_copy(update={"storage": StorageSettings(data_dir=Path(tmp))})
        store = make_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await upgrade(store)
        _slowed(store, delay)
        await store.dispose()  # new connections, with the slow function
        pipeline = Pipeline(build_engine(st))
        pipeline.sinks.append(Metrics(st))
        writer = writer_for(st, store, "bench")
        pipeline.sinks.append(writer.submit)
        heap.settle()
        _gc_pauses(pauses)
        writer.start()
        ami = settings.ami.model_copy(update={"port": port, "username": "u"})
        source = AmiSource(ami, SecretStr("s"), pipeline.feed_fields, reconnect=False)
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
        backlog_at_end = writer.backlog
        await writer.close()
        await store.dispose()
    n = source.frames
    lag_ms = sorted(x * 1000 for x in lags)
    turn_ms = sorted(x * 1000 for x in durations)
    gc_rows = [f"gen {g}: {len(v):,}, max {max(v) * 1000:.1f} ms"
               for g, v in sorted(pauses.items())]  # fmt: skip
    rows = [
        ["frames read", f"{n:,} in {read_s:.1f} s ({n / read_s:,.0f}/s)"],
        ["store delay per batch", f"{delay * 1000:.0f} ms; {writer.stats.batches} batches"],
        ["longest reader turn", f"{turn_ms[-1]:.2f} ms (p99 {p99(turn_ms):.2f}, median "
                                f"{statistics.median(turn_ms):.2f}, {len(turn_ms):,} turns)"],
        ["  without a full gc", f"{max(clean) * 1000:.2f} ms"],
        ["event loop lag (max)", f"{lag_ms[-1]:.2f} ms (p99 {p99(lag_ms):.2f})"],
        ["gc pauses", "; ".join(gc_rows)],
        ["store backlog peak", f"{peak:,} rows ({backlog_at_end:,} left when reading ended)"],
    ]  # fmt: skip
    print(table(["", ""], rows))
    stall = max(turn_ms[-1], lag_ms[-1])
    print(f"\nreader stall (max of the two): {stall:.2f} ms (target < 20 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--delay", type=float, default=0.2)
    args = ap.parse_args()
    print(f"machine: {machine()}\n")
    ports: Any = multiprocessing.Queue()
    pbx = multiprocessing.Process(target=_serve, args=(args.events, ports), daemon=True)
    pbx.start()
    port, _frames = ports.get(timeout=120)
    try:
        asyncio.run(run(args.events, args.delay, port))
    finally:
        pbx.terminate()


if __name__ == "__main__":
    main()
