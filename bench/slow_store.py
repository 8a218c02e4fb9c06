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
* the store's peak backlog (rows waiting, in memory or spilled);
* with checkpointing on, a ``Checkpointer`` saving the core's live state
  every ``--checkpoint-seconds`` (default 1 s, harsher than the 5 s of
  ``pbxwatch run``), as ``run`` does: the calls copied and encoded on the
  loop a slice at a time (``SLICE_SECONDS``), compressed in a worker
  thread, queued behind the records (one still waiting is overwritten in
  place).  How many were saved and skipped (only while the writer spills
  to disk), the longest slice of a save on the loop (what the reader may
  have waited), a save's time on the loop in all, from its start until
  queued, and the loop's lag at its worst while a save ran and outside.

Runs with checkpointing off and on alternate (off, on, off, on ...), so
both columns come from the same stretch of the machine's time.  Each
figure is the median of ``--runs`` runs of each (each run's value shown
too).  ``--calls-in-progress N`` adds N calls that stay up through the run
(answered calls begun just before the stream starts, as in
``bench/memory.py``): the mixed-load recording alone has few at a time.

Usage: .venv/bin/python bench/slow_store.py [--events N] [--delay S] [--runs R]
           [--checkpoint-seconds S (0: off only)] [--calls-in-progress N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    DUMPS,
    LAB_CONFIG,
    MIXED_LOAD,
    TimedCheckpointer,
    calls_in_progress,
    lag_monitor,
    machine,
    p99,
    table,
)
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

    names = vars(writer_module)  # the writer's own name for db.write_rows
    if getattr(names["write_rows"], "slowed", False):
        return
    original = names["write_rows"]

    def write_rows(conn: Any, batch: Any) -> int:
        conn.exec_driver_sql(f"SELECT bench_sleep({delay})")
        return int(original(conn, batch))

    setattr(write_rows, "slowed", True)  # noqa: B010 - a mark on a function
    names["write_rows"] = write_rows


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
    lag_max_saving: float = 0.0  # lag samples that overlap a save
    lag_max_between: float = 0.0  # the others
    gc: dict[int, tuple[int, float]] = field(default_factory=dict)  # gen -> count, max ms
    backlog_peak: int = 0
    checkpoints_saved: int = 0
    checkpoints_skipped: int = 0
    slice_max: float = 0.0  # the longest slice of a save on the loop (last_slice_seconds)
    loop_max: float = 0.0  # a save's time on the loop in all (last_loop_seconds)
    save_max: float = 0.0  # from a save's start until queued (last_seconds)
    checkpoint_calls_max: int = 0
    checkpoint_bytes_max: int = 0

    @property
    def stall(self) -> float:
        return max(self.turn_max, self.lag_max)


async def run(
    delay: float, port: int, checkpoint_seconds: float, preload: int, first_time: float
) -> Figures:
    settings = load_settings(LAB_CONFIG)
    TURNS.clear()
    CLEAN_TURNS.clear()
    GC_PAUSES.clear()
    DUMPS.clear()
    lags: list[float] = []
    measured: list[float] = []  # when each lag was measured
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
        # calls up since before the stream (after settle: they come and go);
        # their ids are far from the stream's
        if preload:
            for ev in calls_in_progress(preload, spread=60, ids=-2_000_000, before=first_time):
                pipeline.engine.process(ev)
            assert pipeline.engine.tracked_calls == preload, pipeline.engine.tracked_calls
        GC_PAUSES.clear()
        writer.start()
        saver = TimedCheckpointer(pipeline.engine, writer, "bench")
        saving = asyncio.create_task(saver.every(checkpoint_seconds))  # 0: returns at once
        ami = settings.ami.model_copy(update={"port": port, "username": "u"})
        source = AmiSource(
            ami, SecretStr("s"), pipeline.feed_fields, reconnect=False, busy=lambda: pipeline.behind
        )
        stop = asyncio.Event()
        monitor = asyncio.create_task(lag_monitor(lags, stop, measured))
        peak = 0
        t0 = time.perf_counter()
        reading = asyncio.create_task(source.run())
        while not reading.done():
            peak = max(peak, writer.backlog)
            await asyncio.sleep(0.05)
        read_s = time.perf_counter() - t0
        stop.set()
        await monitor
        saving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await saving
        await writer.close()
        await store.dispose()
    lag_ms = sorted(x * 1000 for x in lags)
    saving, between = _split(lags, measured, saver.windows)
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
        lag_max_saving=max(saving, default=0.0) * 1000,
        lag_max_between=max(between, default=0.0) * 1000,
        gc={g: (len(v), max(v) * 1000) for g, v in sorted(GC_PAUSES.items())},
        backlog_peak=peak,
        checkpoints_saved=saver.saved,
        checkpoints_skipped=saver.skipped,
        slice_max=max(DUMPS, default=0.0) * 1000,
        loop_max=max(saver.loop, default=0.0) * 1000,
        save_max=max(saver.took, default=0.0) * 1000,
        checkpoint_calls_max=max(saver.calls, default=0),
        checkpoint_bytes_max=max(saver.sizes, default=0),
    )


def _split(
    lags: list[float], measured: list[float], windows: list[tuple[float, float]]
) -> tuple[list[float], list[float]]:
    """The lag samples whose wait overlaps a save, and the others."""
    saving: list[float] = []
    between: list[float] = []
    for lag, t1 in zip(lags, measured, strict=True):
        t0 = t1 - lag - 0.001
        (saving if any(t0 < end and t1 > start for start, end in windows) else between).append(lag)
    return saving, between


def report(modes: dict[float, list[Figures]], delay: float) -> None:
    def cells(values: list[float], fmt: str = "{:.2f}") -> list[str]:
        shown = [fmt.format(v) for v in values]
        return [fmt.format(statistics.median(values)), " / ".join(shown)]

    def row(name: str, value: Any, fmt: str = "{:.2f}", only_on: bool = False) -> list[str]:
        out = [name]
        for seconds, runs in modes.items():
            out += ["-", "-"] if only_on and not seconds else cells([value(r) for r in runs], fmt)
        return out

    checkpointing = any(modes)  # a column with checkpoints on

    def full(r: Figures) -> tuple[int, float]:
        return r.gc.get(2, (0, 0.0))

    rows = [
        row("frames read per second", lambda r: r.frames_per_s, "{:,.0f}"),
        row("longest turn (reader or sinks), ms", lambda r: r.turn_max),
        row("  without a full gc inside, ms", lambda r: r.turn_max_without_full_gc),
        row("turn p99, ms", lambda r: r.turn_p99),
        row("event loop lag max, ms", lambda r: r.lag_max),
        row("event loop lag p99, ms", lambda r: r.lag_p99),
        row("full (gen 2) collections", lambda r: float(full(r)[0]), "{:.0f}"),
        row("  longest, ms", lambda r: full(r)[1]),
        row("young (gen 0/1) gc max, ms",
            lambda r: max(ms for g, (_, ms) in r.gc.items() if g < 2)),
        row("store backlog peak, rows", lambda r: float(r.backlog_peak), "{:,.0f}"),
    ]  # fmt: skip
    rows += [] if not checkpointing else [
        row("checkpoints saved", lambda r: float(r.checkpoints_saved), "{:.0f}", True),
        row("  skipped (spilling)", lambda r: float(r.checkpoints_skipped), "{:.0f}", True),
        row("  calls in progress, max", lambda r: float(r.checkpoint_calls_max), "{:,.0f}", True),
        row("  stored size max, KiB", lambda r: r.checkpoint_bytes_max / 1024, "{:,.1f}", True),
        row("  longest slice on the loop, ms", lambda r: r.slice_max, "{:.2f}", True),
        row("  a save's loop time max, ms", lambda r: r.loop_max, "{:.2f}", True),
        row("  a save's start to queued max, ms", lambda r: r.save_max, "{:.2f}", True),
        row("  loop lag max during saves, ms", lambda r: r.lag_max_saving, "{:.2f}", True),
        row("  loop lag max between saves, ms", lambda r: r.lag_max_between, "{:.2f}", True),
    ]  # fmt: skip
    first = next(iter(modes.values()))[0]
    print(f"{first.frames:,} frames a run, {first.turns:,} timed turns, store delay "
          f"{delay * 1000:.0f} ms per batch ({first.batches} batches); medians, then "
          "each run's value\n")  # fmt: skip
    header = [""]
    for seconds in modes:
        name = f"checkpoints every {seconds:g} s" if seconds else "checkpointing off"
        header += [name, "runs"]
    print(table(header, rows))
    print()
    for seconds, runs in modes.items():
        name = f"every {seconds:g} s" if seconds else "off"
        stall = statistics.median(r.stall for r in runs)
        worst = max(r.stall for r in runs)
        print(f"reader stall (longest turn or loop lag), checkpointing {name}: "
              f"median {stall:.2f} ms, worst {worst:.2f} ms (target <= 20 ms)")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--delay", type=float, default=0.2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--checkpoint-seconds", type=float, default=1.0,
                    help="checkpoint every S s in the runs with checkpointing on "
                         "(default 1; 0: only runs with it off)")  # fmt: skip
    ap.add_argument(
        "--calls-in-progress",
        type=int,
        default=0,
        help="calls up through the whole run besides the stream's (default 0)",
    )
    args = ap.parse_args()
    print(f"machine: {machine()}")
    if args.calls_in_progress:
        print(f"{args.calls_in_progress:,} calls in progress through each run besides the stream's")
    print()
    first_time = min(f.time for f in load_recording(MIXED_LOAD) if f.time is not None)
    ports: Any = multiprocessing.Queue()
    pbx = multiprocessing.Process(target=_serve, args=(args.events, ports), daemon=True)
    pbx.start()
    port, _frames = ports.get(timeout=120)
    _timed_turns()
    _gc_pauses()
    seconds = [0.0, args.checkpoint_seconds] if args.checkpoint_seconds > 0 else [0.0]
    modes: dict[float, list[Figures]] = {s: [] for s in seconds}
    try:
        for _ in range(args.runs):
            for s in seconds:  # off, on, off, on ...
                fig = asyncio.run(run(args.delay, port, s, args.calls_in_progress, first_time))
                modes[s].append(fig)
        report(modes, args.delay)
    finally:
        pbx.terminate()


if __name__ == "__main__":
    main()
