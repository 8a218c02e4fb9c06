"""Checkpoints: what saving and restoring the core's live state costs.

A core holds N calls in progress (N copies of an answered call of the
mixed-load recording cut before its first hangup, 7 channels each, as in
``bench/memory.py``).  Then, round after round, every size and every step
in turn (interleaved, so a slower moment of the machine touches them all):

  a. ``Checkpointer.save()``, as ``pbxwatch run`` calls it every
     ``storage.checkpoint_seconds``: the calls copied and encoded on the
     event loop a slice of ``SLICE_SECONDS`` at a time, the head assembled
     (the calls' JSON joined into it: the last slice), then compressed in
     a worker thread.  Measured: its time on the loop in all
     (``last_loop_seconds``), its longest slice (``last_slice_seconds``:
     what the AMI reader may have waited), the event loop's lag meanwhile
     (a 1 ms timer's lateness: the slices, the worker's hold of the GIL,
     a garbage collection), from its start until queued
     (``last_seconds``); and, to say what the longest slice is made of,
     the assembly alone (``_assemble``), the head alone (``checkpoint.dump``
     without the calls, and its JSON: the rest of the assembly is the join
     of the calls' JSON), ``pack``'s own time in its thread, and the full
     (generation 2) collections that fell in the save;
  b. the sizes: the raw JSON, zlib, and the base64 text stored;
  c. the row written to SQLite by a ``StoreWriter`` (the save's own
     ``note_checkpoint``, then one batch: the time of the transaction)
     and the loop's lag meanwhile;
  d. the same row on PostgreSQL (a throw-away server; skipped without
     Debian's postgresql binaries);
  e. a restart: the row read and decoded (``load_checkpoint``), the store
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
import gc
import json
import statistics
import tempfile
import time
import zlib
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
from pbxwatch.store import checkpoints
from pbxwatch.store.checkpoints import (
    SLICE_SECONDS,
    Checkpointer,
    checkpoint_row,
    decode,
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
    """Per size: step -> seconds (or a count) of every round."""

    times: dict[int, dict[str, list[float]]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(list))
    )
    sizes: dict[int, Sizes] = field(default_factory=dict)


class _Gc:
    """Garbage-collector pauses while ``on``: (generation, seconds, in the
    assembly)."""

    def __init__(self) -> None:
        self.on = False
        self.assembling = False
        self.pauses: list[tuple[int, float, bool]] = []
        self._started = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.on:
            took = time.perf_counter() - self._started
            self.pauses.append((info["generation"], took, self.assembling))


GC = _Gc()
PACKED: list[float] = []  # pack's own time in its worker thread, each call
_pack = checkpoints.pack


def _timed_pack(text: str) -> str:
    t0 = time.perf_counter()
    blob = _pack(text)
    PACKED.append(time.perf_counter() - t0)
    return blob


checkpoints.pack = _timed_pack  # what Checkpointer.save hands to its worker thread


class _Probed(Checkpointer):
    """``pbxwatch run``'s checkpointer, with its assembly timed and the row
    it queued kept (to write the same one to PostgreSQL)."""

    assembly = 0.0
    queued: tuple[dict[str, Any], str, int, float] | None = None

    def _assemble(self, parts: list[str]) -> tuple[str, dict[str, Any]]:
        GC.assembling = True
        t0 = time.perf_counter()
        try:
            return super()._assemble(parts)
        finally:
            self.assembly = time.perf_counter() - t0
            GC.assembling = False

    def _queue(self, state: dict[str, Any], text: str, calls: int, saved_at: float) -> None:
        self.queued = (state, text, calls, saved_at)
        super()._queue(state, text, calls, saved_at)


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


def _core(settings: Settings, n: int) -> Engine:
    engine = build_engine(settings)
    for ev in calls_in_progress(n):
        engine.process(ev)
    assert engine.tracked_calls == n, (engine.tracked_calls, n)
    return engine


async def _round(
    settings: Settings, n: int, saver: _Probed, stores: list[Store], res: Results
) -> None:
    times = res.times[n]
    core = saver.core

    GC.pauses.clear()
    PACKED.clear()
    GC.on = True
    try:
        _, lag = await _lagged(saver.save)
    finally:
        GC.on = False
    assert saver.queued is not None
    assert saver.last_calls == n, (saver.last_calls, n)
    state, text, calls, saved_at = saver.queued
    full = [took for gen, took, _ in GC.pauses if gen == 2]
    times["loop"].append(saver.last_loop_seconds)
    times["slice"].append(saver.last_slice_seconds)
    times["lag"].append(lag)
    times["wall"].append(saver.last_seconds)
    times["assembly"].append(saver.assembly)
    times["pack"].append(sum(PACKED))
    times["full gcs"].append(len(full))
    times["full gc max"].append(max(full, default=0.0))
    times["full gc in assembly"].append(
        max((t for gen, t, inside in GC.pauses if gen == 2 and inside), default=0.0)
    )

    t0 = time.perf_counter()
    head = checkpoint.dump(core, calls=False)
    json.dumps(head, ensure_ascii=False, separators=(",", ":"))
    times["head"].append(time.perf_counter() - t0)

    if n not in res.sizes:
        zipped = base64.b64decode(text)
        raw = len(zlib.decompress(zipped))
        res.sizes[n] = Sizes(core.tracked_channels, raw, len(zipped), len(text))

    sqlite, others = stores[0], stores[1:]

    async def flush(store: Store) -> None:
        await store.writer.flush()

    _, lag = await _lagged(lambda: flush(sqlite))  # the row the save queued
    times[f"{sqlite.name} write"].append(sqlite.writer.stats.last_batch_seconds)
    times[f"{sqlite.name} write lag"].append(lag)
    for store in others:
        store.writer.note_checkpoint(checkpoint_row(saver.source, state, text, saved_at, calls))
        _, lag = await _lagged(lambda store=store: flush(store))
        times[f"{store.name} write"].append(store.writer.stats.last_batch_seconds)
        times[f"{store.name} write lag"].append(lag)

    t0 = time.perf_counter()  # the restart, from SQLite
    loaded_state = await load_checkpoint(sqlite.engine, saver.source)
    read = time.perf_counter() - t0
    assert loaded_state is not None
    t0 = time.perf_counter()
    reported = await reported_calls(sqlite.engine, checkpoint.call_ids(loaded_state))
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
        savers = {n: _Probed(_core(settings, n), stores[0].writer, f"bench-{n}") for n in sizes}
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        gc.collect()
        full = time.perf_counter() - t0
        print(f"{sum(sizes):,} calls in progress built in {built:.1f} s; the collector "
              f"tracks {len(gc.get_objects()):,} objects besides {gc.get_freeze_count():,} "
              f"frozen: a full collection takes {full * 1000:.0f} ms\n")  # fmt: skip
        for n in sizes:  # a first round each, not counted: the first write makes the table
            await _round(settings, n, savers[n], stores, Results())
        for _ in range(rounds):
            for n in sizes:
                await _round(settings, n, savers[n], stores, res)
        for store in stores:
            await store.engine.dispose()
    return res, [s.name for s in stores]


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.1f} / {max(values) * 1000:,.1f}"


def _count(values: list[float]) -> str:
    return f"{statistics.median(values):.0f} / {max(values):.0f}"


def report(res: Results, stores: list[str], rounds: int) -> None:
    sizes = sorted(res.sizes)
    steps: list[tuple[str, str, Callable[[list[float]], str]]] = [
        ("a. Checkpointer.save: on the event loop in all", "loop", _ms),
        ("   longest slice (the reader's wait)", "slice", _ms),
        ("   event loop lag meanwhile", "lag", _ms),
        ("   start until queued (last_seconds)", "wall", _ms),
        ("   assembly (join into the head: the last slice)", "assembly", _ms),
        ("   the head alone (dump without calls + JSON)", "head", _ms),
        ("   pack (zlib + base64), its thread's time", "pack", _ms),
        ("   full gcs during the save (count)", "full gcs", _count),
        ("   longest full gc during the save", "full gc max", _ms),
        ("   longest full gc in the assembly", "full gc in assembly", _ms),
    ]
    for letter, name in zip("cd", stores, strict=False):
        steps += [
            (f"{letter}. {name}: write transaction", f"{name} write", _ms),
            ("   event loop lag meanwhile", f"{name} write lag", _ms),
        ]
    steps += [
        ("e. restart: read row + decode (SQLite)", "read + decode", _ms),
        ("   decode alone (again, after the load)", "decode", _ms),
        ("   reported_calls", "reported_calls", _ms),
        ("   checkpoint.load into a fresh core", "load", _ms),
        ("   restart total", "restart", _ms),
    ]
    rows = [[label] + [fmt(res.times[n][key]) for n in sizes] for label, key, fmt in steps]
    print(f"times in ms, median / max of {rounds} rounds (slices of "
          f"{SLICE_SECONDS * 1000:g} ms)\n")  # fmt: skip
    print(table(["step"] + [f"{n:,} calls" for n in sizes], rows))
    if "PostgreSQL" not in stores:
        print("\n(d. PostgreSQL skipped: Debian's postgresql binaries not found)")

    size_rows = []
    for n in sizes:
        s = res.sizes[n]
        size_rows.append([f"{n:,}", f"{s.channels:,}", f"{s.raw_json / 1024:,.0f}",
                          f"{s.compressed / 1024:,.0f}", f"{s.encoded / 1024:,.0f}",
                          f"{s.raw_json / s.compressed:.1f}", f"{s.encoded / n:,.0f}"])  # fmt: skip
    print("\nb. sizes\n")
    print(table(["calls", "channels", "raw JSON KiB", "zlib KiB", "stored (base64) KiB",
                 "JSON / zlib", "stored bytes per call"], size_rows))  # fmt: skip

    print("\nthe reader's wait per checkpoint (longest slice; loop lag, which adds the "
          "worker's hold of the GIL and any collection), target <= 20 ms:")  # fmt: skip
    for n in sizes:
        t = res.times[n]
        print(f"  {n:>6,} calls: longest slice median {statistics.median(t['slice']) * 1000:,.1f}"
              f" ms, max {max(t['slice']) * 1000:,.1f} ms; lag max "
              f"{max(t['lag']) * 1000:,.1f} ms; full gcs in the saves: {sum(t['full gcs']):.0f}"
              f" in {rounds}")  # fmt: skip


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
