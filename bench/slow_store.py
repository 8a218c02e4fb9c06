"""Slow consumer: the store takes 200 ms per batch; does the AMI reader stall?

Asterisk drops a manager session whose reader falls behind (its
``writetimeout``), so reading must never wait for the database.  A real
``AmiSource`` reads the mixed-load recording, repeated, from the project's
AMI server over TCP as fast as the socket goes, into the core, the metrics
and a SQLite store whose every batch is made 200 ms slower.  Measured:

* the longest single read handled (``data_received``: decode, core, sinks);
* the event loop's lag (a 1 ms timer's lateness): how long any read could
  have waited for its turn;
* the store's peak backlog (rows waiting, in memory or spilled).

Usage: .venv/bin/python bench/slow_store.py [--events N] [--delay S]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import LAB_CONFIG, MIXED_LOAD, machine, p99, table
from pydantic import SecretStr
from sqlalchemy import event

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


def _timed_reads(durations: list[float]) -> None:
    original = ami_client._Protocol.data_received

    def data_received(self: Any, data: bytes) -> None:
        t0 = time.perf_counter()
        original(self, data)
        durations.append(time.perf_counter() - t0)

    ami_client._Protocol.data_received = data_received  # type: ignore[method-assign]


async def _lag_monitor(lags: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append(time.perf_counter() - t0 - 0.001)


async def run(events: int, delay: float) -> None:
    settings = load_settings(LAB_CONFIG)
    recorded = load_recording(MIXED_LOAD)
    times = -(-events // len(recorded))
    frames = [RecordedFrame(raw, None) for raw in repeated(recorded, times)]
    durations: list[float] = []
    lags: list[float] = []
    _timed_reads(durations)
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
        writer.start()
        server = AmiServer(frames, "u", "s", close_when_done=True)
        port = await server.start()
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
        await server.close()
        backlog_at_end = writer.backlog
        await writer.close()
        await store.dispose()
    n = source.frames
    lag_ms = sorted(x * 1000 for x in lags)
    read_ms = sorted(x * 1000 for x in durations)
    rows = [
        ["frames read", f"{n:,} in {read_s:.1f} s ({n / read_s:,.0f}/s)"],
        ["store delay per batch", f"{delay * 1000:.0f} ms; {writer.stats.batches} batches"],
        ["longest read handled", f"{read_ms[-1]:.2f} ms (p99 {p99(read_ms):.2f}, median "
                                 f"{statistics.median(read_ms):.2f}, {len(read_ms):,} reads)"],
        ["event loop lag (max)", f"{lag_ms[-1]:.2f} ms (p99 {p99(lag_ms):.2f})"],
        ["store backlog peak", f"{peak:,} rows ({backlog_at_end:,} left when reading ended)"],
    ]  # fmt: skip
    print(table(["", ""], rows))
    stall = max(read_ms[-1], lag_ms[-1])
    print(f"\nreader stall (max of the two): {stall:.2f} ms (target < 20 ms)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--delay", type=float, default=0.2)
    args = ap.parse_args()
    print(f"machine: {machine()}\n")
    asyncio.run(run(args.events, args.delay))


if __name__ == "__main__":
    main()
