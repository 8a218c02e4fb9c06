"""Throughput: events per second for the same stream, from panoramisk's own
parser alone (the library's ceiling) to the whole pbxwatch pipeline.

The stream is the mixed-load recording repeated to at least a million
events, handed over in 64 KiB reads as a socket would.  Each variant runs
``--runs`` times in this one process; the table shows the median.

  a. panoramisk: ``AMIProtocol.data_received`` with a no-op dispatch
  b. pbxwatch's protocol (byte framing, ordered delivery), no-op handler
  c. b + the core + the Prometheus metrics
  d. c + the store on SQLite, alerts into the outbox (until written)
  e. c + the store on PostgreSQL (a throw-away server; skipped without
     Debian's postgresql binaries)

Usage: .venv/bin/python bench/throughput.py [--events N] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from common import LAB_CONFIG, machine, median_of, reads, rss_mib, stream, table
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
    proto.connection_made(_Transport())
    proto.on_frame = on_frame
    return proto


async def _feed(proto: _Protocol, data: bytes) -> None:
    """Each read as the event loop hands it over, the next one only when the
    protocol reads again; other tasks (the store's writer) run in between."""
    transport = proto.transport
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


async def _with_store(settings: Settings, data: bytes, url: str, data_dir: Path) -> float:
    st = settings.model_copy(update={"storage": StorageSettings(url=url, data_dir=data_dir)})
    store = make_engine(url)
    await upgrade(store)
    pipeline = _pipeline(st)
    writer = writer_for(st, store, "bench")
    pipeline.sinks.append(writer.submit)
    writer.start()
    t0 = time.perf_counter()
    await _feed_live(pipeline, data)
    await writer.close()
    took = time.perf_counter() - t0
    await store.dispose()
    return took


def pbxwatch_sqlite(settings: Settings, data: bytes) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        return asyncio.run(_with_store(settings, data, url, Path(tmp)))


@contextlib.contextmanager
def _postgres() -> Iterator[Any]:
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


def pbxwatch_postgres(settings: Settings, data: bytes, server: Any) -> float:
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    async def fresh_db() -> str:
        admin = create_async_engine(server.url.rsplit("/", 1)[0] + "/postgres",
                                    isolation_level="AUTOCOMMIT")  # fmt: skip
        name = f"b{time.monotonic_ns()}"
        async with admin.connect() as conn:
            await conn.execute(sa.text(f"CREATE DATABASE {name}"))
        await admin.dispose()
        return server.url.rsplit("/", 1)[0] + f"/{name}"

    with tempfile.TemporaryDirectory() as tmp:
        url = asyncio.run(fresh_db())
        return asyncio.run(_with_store(settings, data, url, Path(tmp)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    settings = load_settings(LAB_CONFIG)
    data, events = stream(args.events)
    print(f"machine: {machine()}")
    print(f"stream: mixed_load.ami x{events // 18600} = {events:,} events, "
          f"{len(data) / 2**20:.0f} MiB, {args.runs} runs each (median)\n")  # fmt: skip
    variants: list[tuple[str, Callable[[], float]]] = [
        ("a. panoramisk parse, no-op handler", lambda: panoramisk_parse(data)),
        ("b. pbxwatch protocol, no-op handler", lambda: pbxwatch_parse(data)),
        ("c. b + core + metrics", lambda: pbxwatch_core(settings, data)),
        ("d. c + store (SQLite) + outbox", lambda: pbxwatch_sqlite(settings, data)),
    ]
    rows = []
    results: dict[str, float] = {}
    with _postgres() as server:
        if server is not None:
            variants.append(("e. c + store (PostgreSQL) + outbox",
                             lambda: pbxwatch_postgres(settings, data, server)))  # fmt: skip
        for name, fn in variants:
            gc.collect()
            med, runs = median_of(args.runs, fn)
            results[name[0]] = med
            rows.append([name, f"{events / med:,.0f}", f"{med:.2f}",
                         f"{min(runs):.2f}-{max(runs):.2f}",
                         f"{events / med / (events / results['a']):.2f}"])  # fmt: skip
    print(table(["variant", "events/s", "median s", "range s", "x panoramisk"], rows))
    print(f"\nfull pipeline with SQLite / panoramisk parse-only: {results['a'] / results['d']:.2f}"
          f" (target >= 0.5); peak RSS {rss_mib():.0f} MiB")  # fmt: skip


if __name__ == "__main__":
    main()
