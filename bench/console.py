"""The web console against the AMI read path, and call search on a year.

``live``: does serving the console slow the AMI reader?  As in
``bench/latency.py``, three processes: this one is the PBX (the project's
simulator's AMI server) and the unit chief's MQTT subscriber; a real
Mosquitto; and ``pbxwatch run`` (SQLite store, metrics, MQTT, the web
console on its own loop, login off on loopback) with a probe.  A fourth,
the SSE clients: ``--clients`` real HTTP clients (httpx, streaming) on the
console's ``/events``, each reading every wallboard event.  The stream is
``bench/latency.py``'s (the mixed-load recording re-timed to ``--rate``
events/s, the Bygglov group made unstaffed and staffed again every 200 ms,
an MQTT alert each time).  Rounds with 0 and with ``--clients`` SSE clients
alternate in the same ``pbxwatch run`` (0, N, 0, N ...).  Measured in the
``run`` process, per round:

* the AMI reader's longest turn (``_Protocol._handle``: decode and hand up
  to ``FRAMES_PER_TURN`` frames to the core, metrics and store queue) and
  the sinks' (``Pipeline.catch_up``), as ``bench/slow_store.py``;
* the event loop's lag (a 1 ms timer's lateness): how long a socket read
  could have waited for its turn; the worst stall is the larger of the two;
* the garbage collector's pauses (by generation, with when they ran), so
  that a long stall can be told from a collection;
* event -> MQTT alert at the chief's subscriber (``bench/latency.py``).

``search``: ``pbxwatch.web.search.search_calls``, the console's own
search, on a year of one large municipality in PostgreSQL (a throw-away
server, ``bench/common.postgres``): 3,000 extensions in 30 units, a group
number per unit and a contact centre, 8,000 calls a working day for 250
working days (2 million calls and their rings), the rows generated
directly from the simulator's call mix (``pbxwatch.sim.day``: 55 % direct,
30 % to a queue, 15 % outbound; direct ones answered, abandoned, busy or
unanswered and on to voicemail or the contact centre as the planner rolls
them; the contact centre rings one agent at a time, a group all its
members).  Every filter the search offers, each ``--samples`` times with
fresh values, one page of 50 newest first and the capped count, as the
console asks: p50, p95 and max.

Usage: .venv/bin/python bench/console.py [live|search|both] [--rate 2000] [--clients 100]
           [--seconds 10] [--runs 3] [--calls 2000000] [--samples 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing
import random
import signal
import statistics
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from common import ROOT, machine, p99, postgres, start_probed, table

TZ = ZoneInfo("Europe/Stockholm")

# ------------------------------------------------------------------ live

PROBE = """
import asyncio, gc, json, sys, time
import logging
logging.basicConfig(level=logging.WARNING)
from pbxwatch.app import run_live
from pbxwatch.ami import client as ami_client
from pbxwatch.pipeline import Pipeline
from pbxwatch.settings import load_settings

marks, lags, turns, gcs = [], [], [], []

def probe(fields):
    sent = fields.get("BenchSent")
    if sent:
        marks.append((int(sent), time.monotonic_ns()))

def timed(owner, name, kind):
    original = getattr(owner, name)
    def wrapper(*args):
        t0, c0 = time.monotonic(), time.thread_time()
        try:
            return original(*args)
        finally:
            t1 = time.monotonic()
            if t1 - t0 > 0.002:  # only the long ones (the count is kept)
                turns.append((t0, t1 - t0, kind, time.thread_time() - c0))
            counts[kind] = counts.get(kind, 0) + 1
    setattr(owner, name, wrapper)

counts = {}
timed(ami_client._Protocol, "_handle", "reader")
timed(Pipeline, "catch_up", "sinks")
started = [0.0]
def on_gc(phase, info):
    if phase == "start":
        started[0] = time.monotonic()
    else:
        gcs.append((started[0], time.monotonic() - started[0], info["generation"]))
gc.callbacks.append(on_gc)

slow = []
def describe(handle):
    cb = handle._callback
    owner = getattr(cb, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return "task " + getattr(coro, "__qualname__", type(coro).__name__)
    return getattr(cb, "__qualname__", None) or type(cb).__name__

original_run = asyncio.events.Handle._run
def timed_run(self):
    t0, c0 = time.monotonic(), time.thread_time()
    try:
        return original_run(self)
    finally:
        took = time.monotonic() - t0
        if took > 0.010:
            slow.append((t0, took, describe(self), time.thread_time() - c0))
asyncio.events.Handle._run = timed_run

async def lag_monitor():
    while True:
        t0, c0 = time.monotonic(), time.thread_time()
        await asyncio.sleep(0.001)
        t1 = time.monotonic()
        lags.append((t0, t1 - t0 - 0.001, time.thread_time() - c0))

snaps = []
def snapshot():
    import collections
    objs = gc.get_objects(generation=2)
    top = collections.Counter(type(o).__qualname__ for o in objs).most_common(8)
    snaps.append({"objects": len(objs), "frozen": gc.get_freeze_count(), "top": top})
    del objs

async def main():
    import signal
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, snapshot)
    monitor = asyncio.create_task(lag_monitor())
    try:
        return await run_live(load_settings(sys.argv[1]), frame_probe=probe)
    finally:
        monitor.cancel()

try:
    asyncio.run(main())
finally:
    with open(sys.argv[2], "w") as out:
        json.dump({"marks": marks, "lags": lags, "turns": turns, "gcs": gcs,
                   "counts": counts, "slow": slow, "snaps": snaps}, out)
"""


def _sse_clients(url: str, n: int, ready: Any, stop: Any, out: Any) -> None:
    """The child process: ``n`` SSE clients on ``url`` until ``stop``; puts
    the events each received and the clients that failed."""
    import httpx

    async def one(client: httpx.AsyncClient, got: list[int], connected: list[int]) -> None:
        async with client.stream("GET", url) as response:
            response.raise_for_status()
            connected[0] += 1
            async for line in response.aiter_lines():
                if line.startswith("event: wallboard"):
                    got[0] += 1

    async def main() -> None:
        limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
        timeout = httpx.Timeout(30.0, read=60.0)
        async with httpx.AsyncClient(limits=limits, timeout=timeout) as client:
            counts = [[0] for _ in range(n)]
            connected = [0]
            tasks = [asyncio.create_task(one(client, counts[i], connected)) for i in range(n)]
            while connected[0] < n and not any(t.done() for t in tasks):
                await asyncio.sleep(0.05)
            ready.set()
            while not stop.is_set():
                await asyncio.sleep(0.05)
            failed = sum(1 for t in tasks if t.done() and t.exception() is not None)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            out.put(([c[0] for c in counts], failed, connected[0]))

    asyncio.run(main())


@dataclass
class Round:
    clients: int
    window: tuple[float, float] = (0.0, 0.0)  # time.monotonic()
    run: Any = None  # latency.Run
    events: list[int] = field(default_factory=list)  # per SSE client
    failed: int = 0


def _in(window: tuple[float, float], t: float) -> bool:
    return window[0] <= t <= window[1]


async def live_async(rate: int, clients: int, seconds: float, runs: int) -> None:
    import yaml
    from latency import START, Run, _alert_latency, _background, _config, _send, subscribed

    from pbxwatch.settings import load_settings
    from pbxwatch.sim.live import SimPlan, SimulatedPbx
    from tests.services import Mosquitto, free_port, wait_for_port

    settings = load_settings(ROOT / "config/lab.yaml")
    rounds: list[Round] = []
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        broker = Mosquitto(tmp)
        broker.start()
        sim = SimulatedPbx(settings, SimPlan(dt.date(2026, 11, 23)), "u", "s")
        began = time.monotonic()
        sim.server.clock = lambda: START + (time.monotonic() - began)
        ami = await sim.start()
        config = _config(tmp, ami, broker.port)
        web_port = free_port()
        data = yaml.safe_load(config.read_text("utf-8"))
        data["web"] = {"enabled": True, "listen": f"127.0.0.1:{web_port}", "auth": {"mode": "none"}}
        config.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
        result_file = tmp / "probe.json"
        runs_seen: list[Run] = []
        subscriber = await subscribed(broker.port, runs_seen)
        proc = start_probed(tmp, PROBE, config, result_file)
        ctx = multiprocessing.get_context("spawn")
        try:
            while sim.server.listeners == 0:
                assert proc.poll() is None, (tmp / "run.log").read_text()
                await asyncio.sleep(0.05)
            await asyncio.to_thread(wait_for_port, web_port, 30, proc)
            await asyncio.sleep(1.5)  # the state read after login
            frames = _background()
            cursor = [0]
            url = f"http://127.0.0.1:{web_port}/events"
            for _ in range(runs):
                for n in (0, clients):
                    rnd = Round(n)
                    rounds.append(rnd)
                    child = None
                    if n:
                        sse_ready, sse_stop, sse_out = ctx.Event(), ctx.Event(), ctx.Queue()
                        child = ctx.Process(
                            target=_sse_clients, args=(url, n, sse_ready, sse_stop, sse_out)
                        )
                        child.start()
                        assert await asyncio.to_thread(sse_ready.wait, 60), "SSE clients"
                        await asyncio.sleep(1.0)  # every client has had its first event
                    run = Run(rate)
                    runs_seen.append(run)
                    rnd.run = run
                    t0 = time.monotonic()
                    await _send(sim, run, seconds, frames, cursor)
                    rnd.window = (t0, time.monotonic())
                    await asyncio.sleep(0.5)  # the last alerts
                    proc.send_signal(signal.SIGUSR1)  # what the full collections walk
                    await asyncio.sleep(0.5)
                    if child is not None:
                        sse_stop.set()
                        rnd.events, rnd.failed, _ = await asyncio.to_thread(sse_out.get, True, 30)
                        await asyncio.to_thread(child.join, 30)
                    await asyncio.sleep(1.0)
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
            subscriber.cancel()
            with contextlib.suppress(BaseException):
                await subscriber
            await sim.close()
            broker.stop()
        probe = json.loads(result_file.read_text())
    _report_live(rounds, probe, rate, clients, seconds, _alert_latency)


def _report_live(
    rounds: list[Round], probe: dict[str, Any], rate: int, clients: int, seconds: float, alert: Any
) -> None:
    lags = probe["lags"]
    turns = probe["turns"]
    gcs = probe["gcs"]
    per: dict[int, list[dict[str, float]]] = {0: [], clients: []}
    culprits: dict[int, dict[str, int]] = {0: {}, clients: {}}
    for rnd in rounds:
        lo, hi = rnd.window
        lag_ms = sorted(x * 1000 for t, x, _ in lags if _in(rnd.window, t))
        lag_cpu = [c * 1000 for t, _, c in lags if _in(rnd.window, t)]
        reader = [d * 1000 for t, d, k, _ in turns if k == "reader" and _in(rnd.window, t)]
        reader_cpu = [c * 1000 for t, _, k, c in turns if k == "reader" and _in(rnd.window, t)]
        sinks = [d * 1000 for t, d, k, _ in turns if k == "sinks" and _in(rnd.window, t)]
        mine = [g for g in gcs if _in(rnd.window, g[0])]
        full = [d * 1000 for _, d, gen in mine if gen == 2]
        young = [d * 1000 for _, d, gen in mine if gen < 2]
        alerts = sorted(alert(rnd.run))
        # what was on the loop during each lag over 20 ms
        kinds = culprits[rnd.clients]
        for t, x, cpu in lags:
            if not _in(rnd.window, t) or x <= 0.020:
                continue
            end = t + x + 0.001
            gc_in = [g for g in mine if g[0] < end and g[0] + g[1] > t]
            if any(g[2] == 2 for g in gc_in):
                kind = "full gc"
            elif any(g[1] > 0.010 for g in gc_in):
                kind = "young gc"
            elif any(t <= tt < end and d > 0.010 for tt, d, k, _ in turns if k == "reader"):
                kind = "reader turn"
            elif any(t <= tt < end and d > 0.010 for tt, d, k, _ in turns if k == "sinks"):
                kind = "sinks turn"
            else:
                kind = "other callback"
            if cpu < x / 2:  # the loop's thread ran less than half of it: not scheduled
                kind += " (mostly off the CPU)"
            kinds[kind] = kinds.get(kind, 0) + 1
        per[rnd.clients].append(
            {
                "sent/s": rnd.run.sent / seconds,
                "reader max": max(reader, default=0.0),
                "reader cpu max": max(reader_cpu, default=0.0),
                "lag cpu max": max(lag_cpu, default=0.0) if lag_cpu else 0.0,
                "sinks max": max(sinks, default=0.0),
                "lag max": lag_ms[-1] if lag_ms else 0.0,
                "lag p99": p99(lag_ms) if lag_ms else 0.0,
                "lags > 20 ms": float(sum(1 for x in lag_ms if x > 20)),
                "full gc": float(len(full)),
                "full gc max": max(full, default=0.0),
                "young gc max": max(young, default=0.0),
                "alert p50": statistics.median(alerts) if alerts else float("nan"),
                "alert p99": p99(alerts) if alerts else float("nan"),
                "alert max": alerts[-1] if alerts else float("nan"),
                "alerts": float(len(alerts)),
                "sse events/s": sum(rnd.events) / (hi - lo + 2.0) if rnd.clients else 0.0,
                "sse failed": float(rnd.failed),
                "stall": max(max(reader, default=0.0), lag_ms[-1] if lag_ms else 0.0),
            }
        )
    names = [
        ("sent events/s", "sent/s", "{:,.0f}"),
        ("reader's longest turn, ms", "reader max", "{:.1f}"),
        ("  its CPU time, longest, ms", "reader cpu max", "{:.1f}"),
        ("sinks' longest turn, ms", "sinks max", "{:.1f}"),
        ("event loop lag max, ms", "lag max", "{:.1f}"),
        ("event loop lag p99, ms", "lag p99", "{:.2f}"),
        ("  most CPU the loop used in one lag, ms", "lag cpu max", "{:.1f}"),
        ("lags over 20 ms", "lags > 20 ms", "{:.0f}"),
        ("full (gen 2) collections", "full gc", "{:.0f}"),
        ("  longest, ms", "full gc max", "{:.1f}"),
        ("young gc max, ms", "young gc max", "{:.1f}"),
        ("event -> MQTT alert p50, ms", "alert p50", "{:.1f}"),
        ("event -> MQTT alert p99, ms", "alert p99", "{:.1f}"),
        ("event -> MQTT alert max, ms", "alert max", "{:.1f}"),
        ("alerts timed", "alerts", "{:.0f}"),
        ("SSE events received/s (all clients)", "sse events/s", "{:,.0f}"),
        ("SSE clients failed", "sse failed", "{:.0f}"),
    ]
    rows = []
    for title, key, fmt in names:
        row = [title]
        for n in (0, clients):
            values = [r[key] for r in per[n]]
            each = " / ".join(fmt.format(v) for v in values)
            row += [fmt.format(statistics.median(values)), each]
        rows.append(row)
    print(f"{len(per[0])} rounds of {seconds:g} s at {rate:,} events/s with 0 and with "
          f"{clients} SSE clients, alternating; medians, then each round's value\n")  # fmt: skip
    print(table(["", "0 SSE clients", "rounds", f"{clients} SSE clients", "rounds"], rows))
    print()
    for n in (0, clients):
        worst = max(r["stall"] for r in per[n])
        alert_p99 = max(r["alert p99"] for r in per[n])
        print(f"{n:>3} SSE clients: worst stall (reader turn or loop lag) {worst:.1f} ms "
              f"(target <= 20), worst round's alert p99 {alert_p99:.1f} ms (target <= 50); "
              f"lags over 20 ms by what overlapped them: "
              f"{', '.join(f'{k} {v}' for k, v in sorted(culprits[n].items())) or 'none'}"
              )  # fmt: skip
    print(f"\nturns timed: {probe['counts']}")
    print("\nthe collector's oldest generation at each round's end (objects; the largest types):")
    for rnd, snap in zip(rounds, probe["snaps"], strict=False):
        top = ", ".join(f"{name} {n:,}" for name, n in snap["top"])
        print(f"  {rnd.clients:>3} SSE clients: {snap['objects']:,} "
              f"({snap['frozen']:,} frozen); {top}")  # fmt: skip
    print("\ncallbacks on the loop over 10 ms (count, longest ms), by what ran:")
    for n in (0, clients):
        seen: dict[str, list[float]] = {}
        for rnd in rounds:
            if rnd.clients != n:
                continue
            for t, took, name, cpu in probe["slow"]:
                if _in(rnd.window, t):
                    seen.setdefault(name, []).append(took * 1000)
                    seen.setdefault(name + " [CPU]", []).append(cpu * 1000)
        listed = sorted(seen.items(), key=lambda kv: -max(kv[1]))
        print(f"  {n:>3} SSE clients: " + ("; ".join(
            f"{name} {len(v)}, {max(v):.1f}" for name, v in listed) or "none"))  # fmt: skip


# ---------------------------------------------------------------- search

UNITS = [f"enhet{u:02d}" for u in range(30)]
EXTENSIONS = [str(2000 + i) for i in range(3000)]  # 100 a unit
CC_AGENTS = [str(5000 + i) for i in range(40)]
CC = "kontaktcenter"
GROUPS = {f"grupp{u:02d}": [str(2000 + 100 * u + k) for k in range(5)] for u in range(30)}
CALL_COLUMNS = (
    "call_id", "started_at", "ended_at", "direction", "caller", "caller_e164", "dialled",
    "target_kind", "target", "unit", "outcome", "answered_by", "answer_seconds",
    "rings_before_answer", "voicemail_mailbox", "diverted", "overflowed_to_contact_centre",
    "transferred_to", "abandoned_where", "short_abandon", "queues", "complete", "across_gap",
    "purged",
)  # fmt: skip
RING_COLUMNS = ("call_id", "seq", "extension", "unit", "queue", "started_at", "seconds",
                "rings", "result", "call_started_at")  # fmt: skip


def unit_of(ext: str) -> str:
    n = int(ext)
    return CC if n >= 5000 else UNITS[(n - 2000) // 100]


def working_days(last: dt.date, n: int) -> list[dt.date]:
    days: list[dt.date] = []
    d = last
    while len(days) < n:
        if d.weekday() < 5:
            days.append(d)
        d -= dt.timedelta(days=1)
    return days[::-1]


def generate(calls: int, seed: int = 1) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """``calls`` calls (and their rings) of the simulator's mix, 250 working
    days up to 2026-11-20, in time order."""
    rng = random.Random(seed)
    days = working_days(dt.date(2026, 11, 20), 250)
    per_day = -(-calls // len(days))
    made = 0
    for day in days:
        opening = dt.datetime.combine(day, dt.time(8, 0), TZ).timestamp()
        starts = sorted(opening + rng.uniform(0, 8.5 * 3600) for _ in range(per_day))
        for t in starts:
            if made >= calls:
                return
            made += 1
            yield _one(rng, f"{t:.6f}.{made}", t)


def _number(rng: random.Random) -> tuple[str, str]:
    n = "07" + "".join(rng.choice("0123456789") for _ in range(8))
    return n, "+46" + n[1:]


def _one(rng: random.Random, cid: str, t: float) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
    rings: list[tuple[Any, ...]] = []

    def ring(ext: str, at: float, seconds: float, result: str, queue: str | None = None) -> None:
        rings.append((cid, len(rings), ext, unit_of(ext), queue, t + at, seconds,
                      max(1, round(seconds / 5)), result, t))  # fmt: skip

    def to_cc(at: float, answer: bool = True) -> str | None:
        agents = rng.sample(CC_AGENTS, 2)
        if answer and rng.random() < 0.3:
            ring(agents[1], at, 15.0, "no_answer", CC)
            at += 17.0
        if answer:
            ring(agents[0], at, rng.uniform(3, 12), "answered", CC)
            return agents[0]
        ring(agents[0], at, 15.0, "no_answer", CC)
        ring(agents[1], at + 17.0, rng.uniform(3, 14), "cancelled", CC)
        return None

    e164: str | None
    caller, e164 = _number(rng)
    direction, dialled, kind, target = "inbound", "", "extension", ""
    outcome, answered_by, answer_s, mailbox = "answered", None, None, None
    diverted = overflowed = False
    transferred: str | None = None
    queues: list[str] = []
    length = rng.uniform(40, 400)
    roll = rng.random()
    if roll < 0.55:  # direct (pbxwatch.sim.day._Planner.direct)
        ext = rng.choice(EXTENSIONS)
        target, dialled, unit = ext, "08550" + ext, unit_of(ext)
        if rng.random() < 0.1:  # hänvisning set
            diverted = True
            if rng.random() < 0.3:
                overflowed, queues = True, [CC]
                answered_by = to_cc(1.4)
                outcome = "answered" if answered_by else "abandoned"
            else:
                outcome = "voicemail_no_message" if rng.random() < 0.2 else "voicemail"
        else:
            sub = rng.random()
            if sub < 0.6:
                answer_s = rng.uniform(2, 18)
                ring(ext, 0, answer_s, "answered")
                answered_by = ext
            elif sub < 0.72:
                ring(ext, 0, rng.uniform(2, 19), "cancelled")
                outcome, length = "abandoned", 20
            elif sub < 0.78:
                ring(ext, 0, 0.1, "busy")
                outcome = "voicemail" if rng.random() < 0.7 else "voicemail_no_message"
            else:
                ring(ext, 0, 20.0, "no_answer")
                if rng.random() < 0.3:
                    overflowed, queues = True, [CC]
                    answered_by = to_cc(21.4)
                    outcome = "answered" if answered_by else "abandoned"
                else:
                    outcome = "voicemail" if rng.random() < 0.75 else "voicemail_no_message"
        if outcome == "voicemail":
            mailbox = f"{ext}@default"
    elif roll < 0.85:  # a queue: half to the contact centre, half to a group
        answer = rng.random() < 0.8
        if rng.random() < 0.5:
            kind, target, unit, queues = "contact_centre", CC, CC, [CC]
            dialled = "0855000100"
            answered_by = to_cc(0.0, answer)
            if answered_by and rng.random() < 0.15:
                transferred = rng.choice(EXTENSIONS)
        else:
            name = rng.choice(sorted(GROUPS))
            kind, target, queues = "group", name, [name]
            unit = UNITS[int(name[-2:])]
            dialled = "08551" + name[-2:]
            wait = rng.uniform(3, 20)
            who = rng.choice(GROUPS[name]) if answer else None
            for e in GROUPS[name]:
                ring(e, 0, wait, "answered" if e == who else
                     ("answered_elsewhere" if who else "cancelled"), name)  # fmt: skip
            answered_by = who
        outcome = "answered" if answered_by else "abandoned"
    else:  # outbound
        ext = rng.choice(EXTENSIONS)
        direction, unit, kind = "outbound", unit_of(ext), "external"
        number, _ = _number(rng)
        caller, e164, dialled, target = ext, None, number, number
        outcome = "answered" if rng.random() < 0.75 else "no_answer"
        answered_by = number if outcome == "answered" else None
    if answered_by and answer_s is None and direction == "inbound":
        answer_s = next((r[5] - t + r[6] for r in rings if r[8] == "answered"), 5.0)
    rba = sum(r[7] for r in rings) if answered_by and direction == "inbound" else None
    call = (
        cid, t, t + length, direction, caller, e164, dialled, kind, target, unit, outcome,
        answered_by, answer_s, rba, mailbox, diverted, overflowed, transferred,
        "queue" if outcome == "abandoned" and queues else None, False, json.dumps(queues),
        True, False, False,
    )  # fmt: skip
    return call, rings


async def load(url: str, calls: int) -> dict[str, Any]:
    """The year into the database at ``url`` (migrated first); returns
    sample values for the searches."""
    import asyncpg

    from pbxwatch.store.db import make_engine, upgrade

    engine = make_engine(url)
    await upgrade(engine)
    await engine.dispose()
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    samples: dict[str, list[Any]] = {"callers": [], "days": []}
    t0 = time.perf_counter()
    try:
        batch_calls: list[tuple[Any, ...]] = []
        batch_rings: list[tuple[Any, ...]] = []
        n_calls = n_rings = 0
        for i, (call, rings) in enumerate(generate(calls)):
            batch_calls.append(call)
            batch_rings.extend(rings)
            if call[3] == "inbound" and i % 997 == 0:
                samples["callers"].append(call[5])
            if len(batch_calls) >= 50_000:
                await conn.copy_records_to_table("calls", records=batch_calls,
                                                 columns=CALL_COLUMNS)  # fmt: skip
                await conn.copy_records_to_table("rings", records=batch_rings,
                                                 columns=RING_COLUMNS)  # fmt: skip
                n_calls += len(batch_calls)
                n_rings += len(batch_rings)
                batch_calls, batch_rings = [], []
        if batch_calls:
            await conn.copy_records_to_table("calls", records=batch_calls, columns=CALL_COLUMNS)
            await conn.copy_records_to_table("rings", records=batch_rings, columns=RING_COLUMNS)
            n_calls += len(batch_calls)
            n_rings += len(batch_rings)
        loaded = time.perf_counter() - t0
        await conn.execute("VACUUM ANALYZE calls")
        await conn.execute("VACUUM ANALYZE rings")
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return {"calls": n_calls, "rings": n_rings, "seconds": loaded, "bytes": size, **samples}


async def search_async(calls: int, samples: int, url: str | None) -> None:
    with contextlib.ExitStack() as stack:
        if url is None:
            server = stack.enter_context(postgres())
            if server is None:
                print("search: no PostgreSQL binaries (apt-get install postgresql)")
                return
            from common import fresh_database

            url = await fresh_database(server)
        await _search(url, calls, samples)


async def _loaded(url: str, calls: int) -> dict[str, Any]:
    """Load the year, or (``--url`` of a database loaded before) read back
    the sample callers and migrate it to the newest schema."""
    import asyncpg

    from pbxwatch.store.db import make_engine, upgrade

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        there = await conn.fetchval("SELECT to_regclass('calls') IS NOT NULL")
        n = await conn.fetchval("SELECT count(*) FROM calls") if there else 0
        if not n:
            return await load(url, calls)
        engine = make_engine(url)
        await upgrade(engine)
        await engine.dispose()
        await conn.execute("ANALYZE calls")
        callers = await conn.fetch("SELECT caller_e164 FROM calls TABLESAMPLE SYSTEM (0.5) "
                                   "WHERE direction = 'inbound' LIMIT 2000")  # fmt: skip
        rings = await conn.fetchval("SELECT count(*) FROM rings")
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
    finally:
        await conn.close()
    return {"calls": n, "rings": rings, "seconds": 0.0, "bytes": size,
            "callers": [r[0] for r in callers]}  # fmt: skip


async def _search(url: str, calls: int, samples: int) -> None:
    from pbxwatch.store.db import make_engine
    from pbxwatch.web.search import CallFilter, search_calls

    if True:
        info = await _loaded(url, calls)
        print(f"{info['calls']:,} calls, {info['rings']:,} rings (loaded in "
              f"{info['seconds']:.0f} s); database {info['bytes'] / 2**20:,.0f} MiB\n")  # fmt: skip
        store = make_engine(url)
        rng = random.Random(2)
        days = working_days(dt.date(2026, 11, 20), 250)

        def day_range(n_days: int) -> tuple[float, float]:
            d = rng.choice(days[: len(days) - n_days])
            lo = dt.datetime.combine(d, dt.time(0, 0), TZ).timestamp()
            return lo, lo + n_days * 86400

        def masked(e164: str) -> str:
            return e164[:5] + "*" * (len(e164) - 7) + e164[-2:]

        every = frozenset([*UNITS, CC])
        cases: list[tuple[str, Any, frozenset[str] | None, bool]] = [
            ("no filter (newest first)", CallFilter, None, True),
            ("time range: one day", lambda: CallFilter(*day_range(1)), None, True),
            ("time range: one month", lambda: CallFilter(*day_range(30)), None, True),
            ("unit, the year", lambda: CallFilter(unit=rng.choice(UNITS)), None, True),
            ("unit, one week", lambda: CallFilter(*day_range(7), unit=rng.choice(UNITS)),
             None, True),
            ("target: an extension", lambda: CallFilter(target=rng.choice(EXTENSIONS)),
             None, True),
            ("target: a group number", lambda: CallFilter(target=rng.choice(sorted(GROUPS))),
             None, True),
            ("target: the contact centre", lambda: CallFilter(target=CC), None, True),
            ("outcome: voicemail", lambda: CallFilter(outcome="voicemail"), None, True),
            ("outcome: a rare one (no_answer), a week",
             lambda: CallFilter(*day_range(7), outcome="no_answer"), None, True),
            ("extension (rang, target, answered), the year",
             lambda: CallFilter(extension=rng.choice(EXTENSIONS)), None, True),
            ("extension, one month",
             lambda: CallFilter(*day_range(30), extension=rng.choice(EXTENSIONS)), None, True),
            ("extension: a contact-centre agent",
             lambda: CallFilter(extension=rng.choice(CC_AGENTS)), None, True),
            ("caller: the whole number", lambda: CallFilter(caller=rng.choice(info["callers"])),
             None, True),
            ("caller: four digits", lambda: CallFilter(caller=rng.choice(info["callers"])[-4:]),
             None, True),
            ("caller: masked form (a chief)",
             lambda: CallFilter(caller=masked(rng.choice(info["callers"]))),
             frozenset({rng.choice(UNITS)}), False),
            ("direction: outbound", lambda: CallFilter(direction="outbound"), None, True),
            ("a chief: own unit, voicemail, a month",
             lambda: CallFilter(*day_range(30), outcome="voicemail"),
             frozenset({rng.choice(UNITS)}), False),
            ("all units listed (staff of every unit)",
             lambda: CallFilter(*day_range(7)), every, False),
        ]  # fmt: skip
        rows = []
        worst = 0.0
        try:
            for name, make, units, clear in cases:
                times: list[float] = []
                found: list[int] = []
                await search_calls(store, make(), units, clear=clear, limit=50, offset=0)  # warm
                for _ in range(samples):
                    f = make()
                    t0 = time.perf_counter()
                    _page, total, _capped = await search_calls(store, f, units, clear=clear,
                                                               limit=50, offset=0)  # fmt: skip
                    times.append((time.perf_counter() - t0) * 1000)
                    found.append(total)
                times.sort()
                p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
                worst = max(worst, p95)
                rows.append([name, f"{statistics.median(times):.1f}", f"{p95:.1f}",
                             f"{times[-1]:.1f}", f"{statistics.median(found):,.0f}"])  # fmt: skip
        finally:
            await store.dispose()
        print(table(["filter", "p50 ms", "p95 ms", "max ms", "matches (median)"], rows))
        print(
            f"\nworst p95 {worst:.1f} ms (target <= 200 ms); {samples} searches a filter, "
            "a page of 50 and the count (capped at 10,000) each"
        )


# ------------------------------------------------------------------ main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("part", nargs="?", default="both", choices=["live", "search", "both"])
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--calls", type=int, default=2_000_000)
    ap.add_argument("--samples", type=int, default=30)
    ap.add_argument("--url", help="search: a PostgreSQL database to use (loaded if empty)")
    args = ap.parse_args()
    print(f"machine: {machine()}\n")
    if args.part in ("live", "both"):
        asyncio.run(live_async(args.rate, args.clients, args.seconds, args.runs))
        print()
    if args.part in ("search", "both"):
        asyncio.run(search_async(args.calls, args.samples, args.url))


if __name__ == "__main__":
    main()
