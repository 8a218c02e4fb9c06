"""Throughput: events per second for the same stream, from panoramisk's own
parser alone (the library's ceiling) to the whole pbxwatch pipeline.

The stream is the mixed-load recording repeated to at least a million
events, handed over in 64 KiB reads as a socket would.  The variants run
in rounds (a, b, c, d, d', e, e', a, b, ...) in this one process, ``--runs``
rounds; the table shows each variant's median, and the ratios come from
the same rounds.

  a. panoramisk: ``AMIProtocol.data_received`` with a no-op dispatch
  b. pbxwatch's protocol (byte framing, ordered delivery), no-op handler
  c. b + the core + the Prometheus metrics
  d. c + the store on SQLite, alerts into the outbox (until written), and
     a ``Checkpointer`` saving the core's state every
     ``--checkpoint-seconds`` (default 1 s; ``pbxwatch run``: 5 s), as
     ``run`` does, and once more at the end as ``run`` does at shutdown
  d'. d with checkpointing off (what checkpointing costs; not run with
     ``--checkpoint-seconds 0``, which turns it off in d and e)
  e. d on PostgreSQL (a throw-away server; skipped without Debian's
     postgresql binaries), and e'. e with checkpointing off

A save copies and encodes the calls on the event loop a slice at a time
and compresses in a worker thread; one still waiting for the store is
overwritten in place, and a save is skipped only while the writer spills
to disk (``Checkpointer.every``).  The lines under the table say, for each
round, how many were saved and skipped, the longest slice of a save on the
loop, a save's loop time in all and its time from start until queued.

Usage: .venv/bin/python bench/throughput.py [--events N] [--runs R]
           [--checkpoint-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from common import (
    DUMPS,
    LAB_CONFIG,
    TimedCheckpointer,
    fresh_database,
    machine,
    postgres,
    reads,
    rss_mib,
    stream,
    table,
)
from panoramisk.ami_protocol import AMIProtocol

from pbxwatch.ami.client import _Protocol
from pbxwatch.metrics import Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import Settings, StorageSettings, load_settings
from pbxwatch.store.db import make_engine, upgrade
from pbxwatch.store.session import writer_for


class _Transport:
    """A socket that is always ready: reading pauses only when the protocol
    asks (pbxwatch's does, between turns of a few frames)."""

    paused = False

    def write(self, data: bytes) -> None: ...

    def close(self) -> None: ...

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False


class _NoopFactory:
    """Stands in for panoramisk's Manager: dispatch does nothing."""

    def dispatch(self, event: Any) -> None: ...

    def connection_lost(self, exc: Any) -> None: ...


def panoramisk_parse(data: bytes) -> float:
    proto = AMIProtocol()
    proto.connection_made(_Transport())
    proto.factory = _NoopFactory()
    t0 = time.perf_counter()
    for chunk in reads(data):
        proto.data_received(chunk)
    return time.perf_counter() - t0


def _our_protocol(on_frame: Callable[[Any], None]) -> _Protocol:
    proto = _Protocol()
    proto.connection_made(cast(asyncio.Transport, _Transport()))
    proto.on_frame = on_frame
    return proto


async def _feed(proto: _Protocol, data: bytes) -> None:
    """Each read as the event loop hands it over, the next one only when the
    protocol reads again; other tasks (the store's writer) run in between."""
    transport = cast(_Transport, proto.transport)
    for chunk in reads(data):
        proto.data_received(chunk)
        await asyncio.sleep(0)
        while transport.paused:
            await asyncio.sleep(0)


async def _timed(work: Awaitable[None]) -> float:
    t0 = time.perf_counter()
    await work
    return time.perf_counter() - t0


def pbxwatch_parse(data: bytes) -> float:
    return asyncio.run(_timed(_feed(_our_protocol(lambda fields: None), data)))


def _pipeline(settings: Settings) -> Pipeline:
    pipeline = Pipeline(build_engine(settings))
    pipeline.sinks.append(Metrics(settings))
    return pipeline


async def _feed_live(pipeline: Pipeline, data: bytes) -> None:
    """As ``pbxwatch run`` wires them: the sinks take records a slice per
    turn, and the reader waits while they catch up."""
    pipeline.schedule = asyncio.get_running_loop().call_soon
    proto = _our_protocol(pipeline.feed_fields)
    proto.busy = lambda: pipeline.behind
    await _feed(proto, data)
    pipeline.catch_up_all()


def pbxwatch_core(settings: Settings, data: bytes) -> float:
    return asyncio.run(_timed(_feed_live(_pipeline(settings), data)))


@dataclass
class Saves:
    """The checkpoints of one store run."""

    saved: int = 0
    skipped: int = 0
    last_seconds_max: float = 0.0  # the longest from a save's start until queued
    loop_max: float = 0.0  # the longest time on the loop of a save, in all
    slice_max: float = 0.0  # the longest slice of a save on the loop
    last_bytes: int = 0  # stored size of the last one


async def _with_store(
    settings: Settings, data: bytes, url: str, data_dir: Path, every: float, saves: list[Saves]
) -> float:
    st = settings.model_copy(update={"storage": StorageSettings(url=url, data_dir=data_dir)})
    store = make_engine(url)
    await upgrade(store)
    pipeline = _pipeline(st)
    writer = writer_for(st, store, "bench")
    pipeline.sinks.append(writer.submit)
    writer.start()
    saver = TimedCheckpointer(pipeline.engine, writer, "bench")
    DUMPS.clear()
    t0 = time.perf_counter()
    saving = asyncio.create_task(saver.every(every))  # 0: returns at once
    await _feed_live(pipeline, data)
    saving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await saving
    during = Saves(saver.saved, saver.skipped, last_seconds_max=max(saver.took, default=0.0),
                   loop_max=max(saver.loop, default=0.0), slice_max=max(DUMPS, default=0.0),
                   last_bytes=saver.last_bytes)  # fmt: skip
    if every > 0:
        saver.save_now()  # as run does at shutdown: the reader has stopped
    await writer.close()
    took = time.perf_counter() - t0
    await store.dispose()
    saves.append(during)
    return took


def pbxwatch_sqlite(settings: Settings, data: bytes, every: float, saves: list[Saves]) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        return asyncio.run(_with_store(settings, data, url, Path(tmp), every, saves))


def pbxwatch_postgres(
    settings: Settings, data: bytes, server: Any, every: float, saves: list[Saves]
) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = asyncio.run(fresh_database(server))
        return asyncio.run(_with_store(settings, data, url, Path(tmp), every, saves))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--checkpoint-seconds", type=float, default=1.0,
                    help="checkpoint interval in d and e (default 1; 0: off)")  # fmt: skip
    args = ap.parse_args()
    every = args.checkpoint_seconds
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(LAB_CONFIG)
    data, events = stream(args.events)
    print(f"machine: {machine()}")
    print(f"stream: mixed_load.ami x{events // 18600} = {events:,} events, "
          f"{len(data) / 2**20:.0f} MiB, {args.runs} interleaved rounds (median)")  # fmt: skip
    cp = f"checkpoints every {every:g} s" if every > 0 else "no checkpoints"
    print(f"d and e: {cp}\n")
    saves: dict[str, list[Saves]] = {"d": [], "d'": [], "e": [], "e'": []}
    variants: list[tuple[str, str, Callable[[], float]]] = [
        ("a", "a. panoramisk parse, no-op handler", lambda: panoramisk_parse(data)),
        ("b", "b. pbxwatch protocol, no-op handler", lambda: pbxwatch_parse(data)),
        ("c", "c. b + core + metrics", lambda: pbxwatch_core(settings, data)),
        ("d", f"d. c + store (SQLite) + outbox, {cp}",
         lambda: pbxwatch_sqlite(settings, data, every, saves["d"])),
    ]  # fmt: skip
    if every > 0:
        variants.append(("d'", "d'. d with checkpointing off",
                         lambda: pbxwatch_sqlite(settings, data, 0.0, saves["d'"])))  # fmt: skip
    times: dict[str, list[float]] = {key: [] for key, _, _ in variants}
    with postgres() as server:
        if server is not None:
            variants.append(("e", f"e. d on PostgreSQL, {cp}",
                             lambda: pbxwatch_postgres(settings, data, server, every,
                                                       saves["e"])))  # fmt: skip
            times["e"] = []
            if every > 0:
                variants.append(("e'", "e'. e with checkpointing off",
                                 lambda: pbxwatch_postgres(settings, data, server, 0.0,
                                                           saves["e'"])))  # fmt: skip
                times["e'"] = []
        for _ in range(args.runs):
            for key, _, fn in variants:  # a, b, c, d, d', e, e', a, b, ...
                gc.collect()
                times[key].append(fn())
    med = {key: statistics.median(v) for key, v in times.items()}
    rows = [[name, f"{events / med[key]:,.0f}", f"{med[key]:.2f}",
             f"{min(times[key]):.2f}-{max(times[key]):.2f}", f"{med['a'] / med[key]:.2f}"]
            for key, name, _ in variants]  # fmt: skip
    print(table(["variant", "events/s", "median s", "range s", "x panoramisk"], rows))
    per_round = [a / d for a, d in zip(times["a"], times["d"], strict=True)]
    shown = " / ".join(f"{r:.2f}" for r in per_round)
    print(f"\nfull pipeline with SQLite ({cp}) / panoramisk parse-only: "
          f"{med['a'] / med['d']:.2f} (target >= 0.8); each round: {shown}")  # fmt: skip
    for key in ("d", "e"):
        if f"{key}'" in med:
            cost = med[key] / med[f"{key}'"] - 1
            print(f"checkpointing's cost in {key}: {cost:+.1%} time (medians of {key} and {key}')")
    for key in ("d", "e"):
        for i, sv in enumerate(saves[key] if every > 0 else []):
            print(f"  {key} round {i + 1}: {sv.saved} checkpoints saved while reading (and one "
                  f"at the end), {sv.skipped} skipped (writer spilling); longest slice on the "
                  f"loop {sv.slice_max * 1000:.1f} ms, loop time of a save max "
                  f"{sv.loop_max * 1000:.1f} ms, start to queued max "
                  f"{sv.last_seconds_max * 1000:.1f} ms, last "
                  f"{sv.last_bytes / 1024:.1f} KiB")  # fmt: skip
    print(f"peak RSS {rss_mib():.0f} MiB")


if __name__ == "__main__":
    main()
