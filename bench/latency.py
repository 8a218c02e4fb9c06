"""Latency: from the moment an event's bytes are written to the socket to
(i) the core and the metrics having taken it and (ii) the unit chief's MQTT
subscriber holding the alert it raised, at steady rates over TCP.

Three processes, as in production: this one is the PBX (the simulator's
AMI server, answering status actions) and the MQTT subscriber; a real
Mosquitto; and ``pbxwatch run`` (SQLite store, metrics on, MQTT on) with a
probe that notes when each marked frame has been through the core and
every sink.  Times are ``CLOCK_MONOTONIC``, which Linux shares between
processes.

The load is the mixed-load recording, re-timed to the rate (its own queue
member events and every call that reaches the Bygglov group left out, so
that they do not move the group's staffing).
Every tenth frame carries a ``BenchSent`` header (i).  Every 200 ms both
members of the Bygglov group pause, then one comes back: the second pause
makes the group unstaffed (alert ``firing``), the return staffs it again
(``resolved``) (ii).

Each rate runs ``--runs`` times (in turn, one pbxwatch process); the table
shows the median over the runs of each run's p50, p99 and max.

Usage: .venv/bin/python bench/latency.py [--seconds S] [--rates 500,2000,10000] [--runs R]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import datetime as dt
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt
import yaml
from common import LAB_CONFIG, MIXED_LOAD, machine, p99, start_probed, table

from pbxwatch.ami.codec import encode_frame
from pbxwatch.ami.server import load_recording
from pbxwatch.settings import load_settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from pbxwatch.sim.repeat import repeated

MARK_EVERY = 10
CYCLE = 0.2  # seconds between pause cycles
TICK = 0.005  # the sender's pace
START = dt.datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo("Europe/Stockholm")).timestamp()
#: the group the cycles drive: its queue events, and calls that reach it
_BYGGLOV = re.compile(rb"^(Queue|AppData): bygglov\b", re.MULTILINE)
_LINKEDID = re.compile(rb"^Linkedid: (\S+)", re.MULTILINE)
_TIMESTAMP = re.compile(rb"^Timestamp: [0-9.]+", re.MULTILINE)

PROBE = """
import asyncio, json, logging, sys, time
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
from pbxwatch.app import run_live
from pbxwatch.settings import load_settings
marks = []
def probe(fields):
    sent = fields.get("BenchSent")
    if sent:
        marks.append((int(sent), time.monotonic_ns()))
try:
    asyncio.run(run_live(load_settings(sys.argv[1]), frame_probe=probe))
finally:
    with open(sys.argv[2], "w") as out:
        json.dump(marks, out)
"""


def _background() -> list[bytes]:
    frames = list(repeated(load_recording(MIXED_LOAD), 30))
    group_calls = {m[1] for f in frames if _BYGGLOV.search(f)
                   for m in [_LINKEDID.search(f)] if m}  # fmt: skip
    return [f for f in frames if b"Event: QueueMember" not in f.split(b"\r\n", 1)[0]
            and not _BYGGLOV.search(f)
            and not ((m := _LINKEDID.search(f)) and m[1] in group_calls)]  # fmt: skip


def _member(pbx_time: float, ext: str, paused: bool) -> bytes:
    return encode_frame({
        "Event": "QueueMemberPause", "Privilege": "agent,all", "Timestamp": f"{pbx_time:.6f}",
        "Queue": "bygglov", "MemberName": ext, "Interface": f"Local/{ext}@grp-member",
        "StateInterface": f"IAX2/{ext}", "Membership": "dynamic", "Penalty": "0",
        "CallsTaken": "0", "LastCall": "0", "LastPause": "0", "LoginTime": "0", "InCall": "0",
        "Status": "1", "Paused": "1" if paused else "0", "PausedReason": "bench",
        "Ringinuse": "0", "Wrapuptime": "0",
    }).rstrip(b"\r\n")  # fmt: skip


class Run:
    """One rate: what was sent when, and what came back."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.triggers: dict[str, list[int]] = {"firing": [], "resolved": []}
        self.alerts: dict[str, list[int]] = {"firing": [], "resolved": []}
        self.marks: list[tuple[int, int]] = []
        self.sent = 0
        self.window: tuple[int, int] = (0, 0)


async def _send(sim: SimulatedPbx, run: Run, seconds: float, frames: list[bytes],
                cursor: list[int]) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    start = loop.time()
    next_cycle = start
    paused = False
    owed = 0.0
    run.window = (time.monotonic_ns(), 0)
    while (now := loop.time()) - start < seconds:
        owed += run.rate * TICK
        pbx = sim.server.clock()
        while owed >= 1:
            owed -= 1
            stamp = f"Timestamp: {sim.server.clock():.6f}".encode()
            raw = _TIMESTAMP.sub(stamp, frames[cursor[0] % len(frames)])
            cursor[0] += 1
            if cursor[0] % MARK_EVERY == 0:
                raw += f"\r\nBenchSent: {time.monotonic_ns()}".encode()
            sim.server.publish(raw)
            run.sent += 1
        if now >= next_cycle:  # half a cycle unstaffed, half staffed
            next_cycle += CYCLE / 2
            paused = not paused
            if paused:  # the second pause leaves nobody: the alert fires
                sim.server.publish(_member(pbx, "1003", True))
                run.triggers["firing"].append(time.monotonic_ns())
                sim.server.publish(_member(pbx, "1004", True))
            else:  # the first return staffs the group again
                run.triggers["resolved"].append(time.monotonic_ns())
                sim.server.publish(_member(pbx, "1003", False))
                sim.server.publish(_member(pbx, "1004", False))
        await sim.server.drain()
        await asyncio.sleep(max(0.0, TICK - (loop.time() - now)))
    run.window = (run.window[0], time.monotonic_ns())


async def _subscribe(port: int, runs: list[Run], ready: asyncio.Event) -> None:
    async with aiomqtt.Client("127.0.0.1", port, identifier="bench-chief") as client:
        await client.subscribe("pbxwatch/+/units/+/alerts", qos=1)
        ready.set()
        async for msg in client.messages:
            got = time.monotonic_ns()
            alert = json.loads(bytes(msg.payload))  # type: ignore[arg-type]
            if alert["alert_id"].startswith("group_unstaffed:bygglov:") and runs:
                runs[-1].alerts[alert["state"]].append(got)


async def subscribed(port: int, runs: list[Run]) -> asyncio.Task[None]:
    """The chief's subscriber, once it is subscribed (its task)."""
    ready = asyncio.Event()
    task = asyncio.create_task(_subscribe(port, runs, ready))
    await ready.wait()
    return task


def _config(tmp: Path, ami: int, mqtt: int) -> Path:
    from tests.services import free_port

    config = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    config["ami"].update(port=ami, username="u", secret_env="BENCH_SECRET")
    config["metrics"] = {"listen": f"127.0.0.1:{free_port()}"}
    config["mqtt"] = {"enabled": True, "port": mqtt, "queue_state_seconds": 5}
    config["storage"] = {"data_dir": str(tmp / "data")}
    path = tmp / "pbxwatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def _pct(values: list[float]) -> tuple[float, float, float] | None:
    """p50, p99 and max of one run's samples."""
    if not values:
        return None
    values = sorted(values)
    return statistics.median(values), p99(values), values[-1]


def _cells(per_run: list[tuple[float, float, float] | None], samples: int) -> list[str]:
    """Medians over the runs of each figure, and every run's p99."""
    got = [r for r in per_run if r is not None]
    if not got:
        return ["-", "-", "-", "-", "0"]
    medians = [f"{statistics.median(r[i] for r in got):.2f}" for i in range(3)]
    return [*medians, " / ".join(f"{r[1]:.1f}" for r in got), f"{samples:,}"]


async def main_async(rates: list[int], seconds: float, repeats: int) -> None:
    from tests.services import Mosquitto  # the repository's own helper (ROOT is on the path)

    settings = load_settings(LAB_CONFIG)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        broker = Mosquitto(tmp)
        broker.start()
        sim = SimulatedPbx(settings, SimPlan(dt.date(2026, 11, 23)), "u", "s")
        began = time.monotonic()
        sim.server.clock = lambda: START + (time.monotonic() - began)  # the PBX's clock
        ami = await sim.start()
        config = _config(tmp, ami, broker.port)
        marks_file = tmp / "marks.json"
        runs: list[Run] = []
        subscriber = await subscribed(broker.port, runs)
        proc = start_probed(tmp, PROBE, config, marks_file)
        try:
            while sim.server.listeners == 0:
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)  # the state read after login
            frames = _background()
            cursor = [0]
            for _ in range(repeats):
                for rate in rates:
                    run = Run(rate)
                    runs.append(run)
                    await _send(sim, run, seconds, frames, cursor)
                    await asyncio.sleep(1.0)  # the last alerts
        finally:
            proc.terminate()
            await asyncio.to_thread(proc.wait, 30)
            subscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await subscriber
            await sim.close()
            broker.stop()
        marks = json.loads(marks_file.read_text())
    rows = []
    for rate in rates:
        mine = [run for run in runs if run.rate == rate]
        metric = [_metric_latency(run, marks) for run in mine]
        alert = [_alert_latency(run) for run in mine]
        achieved = statistics.median(run.sent / seconds for run in mine)
        rows.append(
            [
                f"{rate:,}",
                f"{achieved:,.0f}",
                "event -> metric",
                *_cells([_pct(m) for m in metric], sum(map(len, metric))),
            ]
        )
        rows.append(["", "", "event -> MQTT alert",
                     *_cells([_pct(a) for a in alert], sum(map(len, alert)))])  # fmt: skip
    header = ["rate/s", "sent/s", "path", "p50 ms", "p99 ms", "max ms", "p99 each run", "samples"]
    print(table(header, rows))


def _metric_latency(run: Run, marks: list[tuple[int, int]]) -> list[float]:
    lo, hi = run.window
    return [(done - sent) / 1e6 for sent, done in marks if lo <= sent <= hi]


def _alert_latency(run: Run) -> list[float]:
    """Each alert against the last trigger of its state sent before it came."""
    out = []
    for state in ("firing", "resolved"):
        sent = run.triggers[state]
        for got in run.alerts[state]:
            i = bisect.bisect_right(sent, got) - 1
            if i >= 0:
                out.append((got - sent[i]) / 1e6)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rates", default="500,2000,10000")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    print(f"{args.runs} runs of {args.seconds:g} s per rate (medians over the runs); every "
          f"{MARK_EVERY}th frame timed; an unstaffed/staffed cycle every "
          f"{CYCLE * 1000:.0f} ms\n")  # fmt: skip
    asyncio.run(main_async([int(r) for r in args.rates.split(",")], args.seconds, args.runs))


if __name__ == "__main__":
    main()
