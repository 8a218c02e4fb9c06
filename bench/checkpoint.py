"""Checkpoints: what saving and restoring the core's live state costs.

A core holds N calls in progress (N copies of an answered call of the
mixed-load recording cut before its first hangup, 7 channels each, as in
``bench/memory.py``).  Then, round after round, every size and every step
in turn (interleaved, so a slower moment of the machine touches them all):

  a. ``checkpoint.dump(engine)``: on the event loop, so the AMI reader
     waits that long;
  b. ``encode`` (JSON, zlib level 1, base64) in a worker thread, as
     ``Checkpointer.every`` does, and the event loop's lag meanwhile (a
     1 ms timer's lateness): a thread frees the loop only while it does
     not hold the GIL;
  c. the sizes: the raw JSON and the encoded text stored;
  d. the row written to SQLite by a ``StoreWriter`` (``note_checkpoint``,
     one batch: the time of the transaction) and the loop's lag meanwhile;
  e. the same on PostgreSQL (a throw-away server; skipped without Debian's
     postgresql binaries);
  f. a restart: the row read and decoded (``load_checkpoint``), the store
     asked which calls it reported since (``reported_calls``), and
     ``checkpoint.load`` into a fresh engine.

Each cell is the median and the maximum over the rounds.  The process is
set up as ``pbxwatch run`` sets itself up (``pbxwatch.heap.settle`` before
the calls exist: calls in progress come and go, they are not frozen).

Usage: .venv/bin/python bench/checkpoint.py [--calls 100,1000,10000] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import statistics
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from common import (
    LAB_CONFIG,
    calls_in_progress,
    fresh_database,
    lag_monitor,
    machine,
    one_call,
    postgres,
    table,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch import heap
from pbxwatch.core import checkpoint
from pbxwatch.core.engine import Engine
from pbxwatch.pipeline import build_engine
from pbxwatch.settings import Settings, load_settings
from pbxwatch.store.checkpoints import (
    checkpoint_row,
    decode,
    encode,
    load_checkpoint,
    reported_calls,
)
from pbxwatch.store.db import make_engine, upgrade
from pbxwatch.store.writer import StoreWriter

T = TypeVar("T")


@dataclass
class Store:
    """One database the checkpoints are written to."""

    name: str
    engine: AsyncEngine
    writer: StoreWriter


@dataclass
class Sizes:
    channels: int = 0
    raw_json: int = 0
    compressed: int = 0
    encoded: int = 0


@dataclass
class Results:
    """Per size: step -> seconds of every round."""

    times: dict[int, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    sizes: dict[int, Sizes] = field(default_factory=dict)


async def _lagged(work: Callable[[], Awaitable[T]]) -> tuple[T, float]:
    """``work()``'s result, and the longest the event loop was held meanwhile."""
    lags: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(lag_monitor(lags, stop))
    await asyncio.sleep(0.005)  # the monitor is ticking
    lags.clear()
    try:
        result = await work()
    finally:
        stop.set()
        await monitor
    return result, max(lags, default=0.0)


def _encode_timed(state: dict[str, Any]) -> tuple[str, float]:
    """Encode, timed inside the worker thread (the thread's own time)."""
    t0 = time.perf_counter()
    text = encode(state)
    return text, time.perf_counter() - t0


def _core(settings: Settings, n: int) -> Engine:
    engine = build_engine(settings)
    for ev in calls_in_progress(n):
        engine.process(ev)
    assert engine.tracked_calls == n, (engine.tracked_calls, n)
    return engine


async def _round(
    settings: Settings, n: int, core: Engine, stores: list[Store], res: Results
) -> None:
    times = res.times[n]
    source = f"bench-{n}"

    t0 = time.perf_counter()
    state = checkpoint.dump(core)  # on the loop, as Checkpointer.every does
    times["dump"].append(time.perf_counter() - t0)

    async def encoded() -> tuple[str, float, float]:
        t0 = time.perf_counter()
        text, inside = await asyncio.to_thread(_encode_timed, state)
        return text, inside, time.perf_counter() - t0

    (text, inside, wall), lag = await _lagged(encoded)
    times["encode"].append(inside)
    times["encode lag"].append(lag)
    times["dump + encode"].append(times["dump"][-1] + wall)  # Checkpointer.last_seconds

    if n not in res.sizes:
        raw = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()
        zipped = len(base64.b64decode(text))
        res.sizes[n] = Sizes(core.tracked_channels, len(raw), zipped, len(text))

    for store in stores:
        row = checkpoint_row(source, state, text, time.time())

        async def write(store: Store = store, row: Any = row) -> None:
            store.writer.note_checkpoint(row)
            await store.writer.flush()

        _, lag = await _lagged(write)
        times[f"{store.name} write"].append(store.writer.stats.last_batch_seconds)
        times[f"{store.name} write lag"].append(lag)

    store = stores[0]  # the restart, from SQLite
    t0 = time.perf_counter()
    loaded_state = await load_checkpoint(store.engine, source)
    read = time.perf_counter() - t0
    assert loaded_state is not None
    t0 = time.perf_counter()
    reported = await reported_calls(store.engine, checkpoint.call_ids(loaded_state))
    asked = time.perf_counter() - t0
    fresh = build_engine(settings)
    t0 = time.perf_counter()
    loaded = checkpoint.load(fresh, loaded_state, reported)
    put_back = time.perf_counter() - t0
    assert (loaded.calls, loaded.channels) == (n, core.tracked_channels), loaded
    t0 = time.perf_counter()
    decode(text)
    times["decode"].append(time.perf_counter() - t0)
    times["read + decode"].append(read)
    times["reported_calls"].append(asked)
    times["load"].append(put_back)
    times["restart"].append(read + asked + put_back)


async def _sqlite(tmp: str) -> Store:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp}/bench.db")
    await upgrade(engine)
    return Store("SQLite", engine, StoreWriter(engine, source="bench"))


async def _postgresql(server: Any) -> Store:
    engine = make_engine(await fresh_database(server))
    await upgrade(engine)
    return Store("PostgreSQL", engine, StoreWriter(engine, source="bench"))


async def bench(sizes: list[int], rounds: int, server: Any) -> tuple[Results, list[str]]:
    settings = load_settings(LAB_CONFIG)
    res = Results()
    with tempfile.TemporaryDirectory() as tmp:
        stores = [await _sqlite(tmp)]
        if server is not None:
            stores.append(await _postgresql(server))
        one_call()  # imports and caches, before the heap is settled
        heap.settle()
        t0 = time.perf_counter()
        cores = {n: _core(settings, n) for n in sizes}
        print(f"{sum(sizes):,} calls in progress built in {time.perf_counter() - t0:.1f} s\n")
        for n in sizes:  # a first round each, not counted: the first write makes the table
            await _round(settings, n, cores[n], stores, Results())
        for _ in range(rounds):
            for n in sizes:
                await _round(settings, n, cores[n], stores, res)
        for store in stores:
            await store.engine.dispose()
    return res, [s.name for s in stores]


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.1f} / {max(values) * 1000:,.1f}"


def report(res: Results, stores: list[str], rounds: int) -> None:
    sizes = sorted(res.sizes)
    steps = [
        ("a. dump, on the event loop", "dump"),
        ("b. encode, in a thread (its own time)", "encode"),
        ("   event loop lag meanwhile", "encode lag"),
        ("   dump + encode (Checkpointer.last_seconds)", "dump + encode"),
    ]
    for letter, name in zip("de", stores, strict=False):
        steps += [
            (f"{letter}. {name}: write transaction", f"{name} write"),
            ("   event loop lag meanwhile", f"{name} write lag"),
        ]
    steps += [
        ("f. restart: read row + decode (SQLite)", "read + decode"),
        ("   of which decode", "decode"),
        ("   reported_calls", "reported_calls"),
        ("   checkpoint.load into a fresh core", "load"),
        ("   restart total", "restart"),
    ]
    rows = [[label] + [_ms(res.times[n][key]) for n in sizes] for label, key in steps]
    print(f"times in ms, median / max of {rounds} rounds\n")
    print(table(["step"] + [f"{n:,} calls" for n in sizes], rows))
    if "PostgreSQL" not in stores:
        print("\n(e. PostgreSQL skipped: Debian's postgresql binaries not found)")

    size_rows = []
    for n in sizes:
        s = res.sizes[n]
        size_rows.append([f"{n:,}", f"{s.channels:,}", f"{s.raw_json / 1024:,.0f}",
                          f"{s.compressed / 1024:,.0f}", f"{s.encoded / 1024:,.0f}",
                          f"{s.raw_json / s.compressed:.1f}", f"{s.encoded / n:,.0f}"])  # fmt: skip
    print("\nc. sizes\n")
    print(table(["calls", "channels", "raw JSON KiB", "zlib KiB", "stored (base64) KiB",
                 "JSON / zlib", "stored bytes per call"], size_rows))  # fmt: skip

    print("\nthe event loop is held, per checkpoint, about dump + the lag while encoding:")
    for n in sizes:
        t = res.times[n]
        held = [d + e for d, e in zip(t["dump"], t["encode lag"], strict=True)]
        print(f"  {n:>6,} calls: median {statistics.median(held) * 1000:,.1f} ms, "
              f"max {max(held) * 1000:,.1f} ms (reader stall target <= 20 ms)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", default="100,1000,10000",
                    help="calls in progress, comma-separated (default 100,1000,10000)")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    sizes = sorted(int(x) for x in args.calls.split(","))
    print(f"machine: {machine()}")
    with postgres() as server:
        res, stores = asyncio.run(bench(sizes, args.rounds, server))
    report(res, stores, args.rounds)


if __name__ == "__main__":
    main()
