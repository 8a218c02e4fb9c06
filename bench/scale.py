"""Scale: one ``pbxwatch run`` following many PBXs.

This process is every PBX (``--pbxs`` of the project's simulator's AMI
servers on loopback, each answering the status actions) and the unit
chief's MQTT subscriber; a real Mosquitto; and one ``pbxwatch run``
(SQLite store, metrics, MQTT; one AMI session and one core per PBX, on one
loop) with ``bench/console.py``'s probe (the reader's turns, the loop's
lag, the collector's pauses, and when each marked frame was through the
core and its sinks).

``peak``: each PBX sends ``bench/latency.py``'s stream (the mixed-load
recording re-timed, the Bygglov group's own events left out) at ``--rate``
events/s, a large municipality's peak; the first PBX (``main``) also has
its Bygglov group made unstaffed and staffed again every 200 ms, an MQTT
alert each time.  Per round of ``--seconds``: the worst stall of the AMI
reader (its longest turn, or the loop's longest lag), event -> MQTT alert
(p50, p99), event -> core (p99, over every PBX), and the run process's
RSS; RSS per PBX is its growth over a one-PBX run of the same kind,
divided by the PBXs added.

``saturate``: every PBX sends as fast as this process can, and the run
process's CPU time (``/proc/<pid>/stat``) and the frames its cores took
(``pbxwatch_ami_events_total``) give the events per CPU second: where one
process saturates, per core.

How N processes share 500 PBXs (the hot standby's leases) is
``bench/share.py``.

Usage: .venv/bin/python bench/scale.py [peak|saturate|both] [--pbxs 50] [--rate 100]
           [--seconds 10] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import signal
import statistics
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from common import LAB_CONFIG, machine, p99, start_probed, table
from console import PROBE
from latency import (
    _TIMESTAMP,
    CYCLE,
    MARK_EVERY,
    START,
    TICK,
    Run,
    _alert_latency,
    _background,
    _member,
    subscribed,
)

from pbxwatch.settings import load_settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx

PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _ids(n: int) -> list[str]:
    """``main`` first (its alert ids are unprefixed), then p01, p02 ..."""
    return ["main", *(f"p{i:02d}" for i in range(1, n))]


def _config(tmp: Path, ports: dict[str, int], mqtt: int, metrics: int) -> Path:
    config = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    ami, inbound = config.pop("ami"), config.pop("inbound")
    ami.update(username="u", secret_env="BENCH_SECRET")
    config["pbxs"] = [{"id": pbx, "ami": {**ami, "port": port}, "inbound": inbound}
                      for pbx, port in ports.items()]  # fmt: skip
    config["metrics"] = {"listen": f"127.0.0.1:{metrics}"}
    config["mqtt"] = {"enabled": True, "port": mqtt, "queue_state_seconds": 5}
    config["web"] = {"enabled": False}
    config["storage"] = {"data_dir": str(tmp / "data")}
    path = tmp / "pbxwatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def _rss_mib(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 2**20


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS_PER_SECOND  # utime + stime


def _events_taken(metrics: int) -> float:
    url = f"http://127.0.0.1:{metrics}/metrics"
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("pbxwatch_ami_events_total{"))  # fmt: skip


@dataclass
class Round:
    pbxs: int
    run: Run
    window: tuple[float, float] = (0.0, 0.0)  # time.monotonic()
    rss_mib: float = 0.0
    sent: int = 0
    cpu: float = 0.0
    taken: float = 0.0
    marks: list[tuple[int, int]] = field(default_factory=list)


class Pbxs:
    """The simulated PBXs, their clocks from one start, and a sender for all."""

    def __init__(self, n: int) -> None:
        settings = load_settings(LAB_CONFIG)
        self.sims = {pbx: SimulatedPbx(settings, SimPlan(dt.date(2026, 11, 23)), "u", "s")
                     for pbx in _ids(n)}  # fmt: skip
        began = time.monotonic()
        for sim in self.sims.values():
            sim.server.clock = lambda: START + (time.monotonic() - began)
        self.frames = _background()
        self.cursors = {pbx: i * 997 for i, pbx in enumerate(self.sims)}  # each its own calls

    async def start(self) -> dict[str, int]:
        return {pbx: await sim.start() for pbx, sim in self.sims.items()}

    async def close(self) -> None:
        for sim in self.sims.values():
            await sim.close()

    def logged_in(self) -> bool:
        return all(sim.server.listeners for sim in self.sims.values())

    async def send(self, rnd: Round, seconds: float, rate: float | None) -> None:
        """Every PBX at ``rate`` events/s (None: as fast as this process
        can), ``main`` with the Bygglov cycles; marks every tenth frame."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        next_cycle = start
        paused = False
        owed = 0.0
        main = self.sims["main"]
        rnd.run.window = (time.monotonic_ns(), 0)
        frames, n = self.frames, len(self.frames)
        last = start
        while (now := loop.time()) - start < seconds:
            # by the time passed (a tick is often longer than TICK): the rate holds
            owed += (rate if rate is not None else 2000.0) * (now - last)
            last = now
            per_pbx = int(owed)
            owed -= per_pbx
            for pbx, sim in self.sims.items():
                cursor = self.cursors[pbx]
                stamp = f"Timestamp: {sim.server.clock():.6f}".encode()
                for _ in range(per_pbx):
                    raw = _TIMESTAMP.sub(stamp, frames[cursor % n])
                    cursor += 1
                    if cursor % MARK_EVERY == 0:
                        raw += f"\r\nBenchSent: {time.monotonic_ns()}".encode()
                    sim.server.publish(raw)
                rnd.sent += per_pbx
                self.cursors[pbx] = cursor
            if now >= next_cycle:  # half a cycle unstaffed, half staffed
                next_cycle += CYCLE / 2
                paused = not paused
                pbx_time = main.server.clock()
                if paused:  # the second pause leaves nobody: the alert fires
                    main.server.publish(_member(pbx_time, "1003", True))
                    rnd.run.triggers["firing"].append(time.monotonic_ns())
                    main.server.publish(_member(pbx_time, "1004", True))
                else:
                    rnd.run.triggers["resolved"].append(time.monotonic_ns())
                    main.server.publish(_member(pbx_time, "1003", False))
                    main.server.publish(_member(pbx_time, "1004", False))
            for sim in self.sims.values():
                await sim.server.drain()
            await asyncio.sleep(max(0.0, TICK - (loop.time() - now)))
        rnd.run.window = (rnd.run.window[0], time.monotonic_ns())


async def _session(n: int, rounds: int, seconds: float, rate: float | None,
                   tmp: Path) -> tuple[list[Round], dict[str, Any]]:  # fmt: skip
    """One ``pbxwatch run`` following ``n`` PBXs for ``rounds`` rounds."""
    from tests.services import Mosquitto, free_port

    broker = Mosquitto(tmp)
    broker.start()
    pbxs = Pbxs(n)
    ports = await pbxs.start()
    metrics = free_port()
    config = _config(tmp, ports, broker.port, metrics)
    result = tmp / "probe.json"
    runs: list[Run] = []
    subscriber = await subscribed(broker.port, runs)
    proc = start_probed(tmp, PROBE, config, result)
    done: list[Round] = []
    try:
        deadline = time.monotonic() + 120
        while not pbxs.logged_in():
            assert proc.poll() is None, (tmp / "run.log").read_text()
            assert time.monotonic() < deadline, "not every PBX logged in"
            await asyncio.sleep(0.05)
        await asyncio.sleep(2.0 + n * 0.05)  # the state reads after login
        for _ in range(rounds):
            rnd = Round(n, Run(int(rate or 0)))
            runs.append(rnd.run)
            cpu0, taken0, t0 = _cpu_seconds(proc.pid), _events_taken(metrics), time.monotonic()
            await pbxs.send(rnd, seconds, rate)
            rnd.window = (t0, time.monotonic())
            await asyncio.sleep(1.0)  # what was sent is taken, the last alerts come
            rnd.cpu = _cpu_seconds(proc.pid) - cpu0
            rnd.taken = _events_taken(metrics) - taken0
            rnd.rss_mib = _rss_mib(proc.pid)
            done.append(rnd)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(proc.wait, 60)
        subscriber.cancel()
        with contextlib.suppress(BaseException):
            await subscriber
        await pbxs.close()
        broker.stop()
    return done, json.loads(result.read_text())


def _stall_ms(probe: dict[str, Any], window: tuple[float, float]) -> tuple[float, float]:
    """The reader's longest turn and the loop's longest lag in ``window``."""
    lo, hi = window
    reader = [d for t, d, k, _ in probe["turns"] if k == "reader" and lo <= t <= hi]
    lags = [x for t, x, _ in probe["lags"] if lo <= t <= hi]
    return max(reader, default=0.0) * 1000, max(lags, default=0.0) * 1000


def _core_p99(probe: dict[str, Any], run: Run) -> float:
    lo, hi = run.window
    got = sorted((done - sent) / 1e6 for sent, done in probe["marks"] if lo <= sent <= hi)
    return p99(got) if got else float("nan")


async def peak(n: int, rate: float, seconds: float, runs: int) -> None:
    with tempfile.TemporaryDirectory() as one_dir, tempfile.TemporaryDirectory() as many_dir:
        one, _ = await _session(1, runs, seconds, rate, Path(one_dir))
        many, probe = await _session(n, runs, seconds, rate, Path(many_dir))
    rows = []
    for i, rnd in enumerate(many):
        reader, lag = _stall_ms(probe, rnd.window)
        alerts = sorted(_alert_latency(rnd.run))
        rows.append([f"{i + 1}", f"{rnd.sent / seconds:,.0f}", f"{rnd.taken / seconds:,.0f}",
                     f"{reader:.1f}", f"{lag:.1f}", f"{max(reader, lag):.1f}",
                     f"{statistics.median(alerts):.1f}" if alerts else "-",
                     f"{p99(alerts):.1f}" if alerts else "-", f"{len(alerts)}",
                     f"{_core_p99(probe, rnd.run):.1f}", f"{rnd.rss_mib:.0f}",
                     f"{rnd.cpu / seconds:.2f}"])  # fmt: skip
    base = statistics.median(r.rss_mib for r in one)
    grown = statistics.median(r.rss_mib for r in many)
    per_pbx = (grown - base) / max(n - 1, 1)
    print(f"{n} PBXs at {rate:g} events/s each ({n * rate:,.0f} events/s), {runs} rounds of "
          f"{seconds:g} s, one pbxwatch run; {machine()}\n")  # fmt: skip
    print(table(["round", "sent/s", "taken/s", "reader max ms", "loop lag max ms",
                 "worst stall ms", "alert p50 ms", "alert p99 ms", "alerts",
                 "event->core p99 ms", "RSS MiB", "CPU s/s"], rows))  # fmt: skip
    worst = max(max(_stall_ms(probe, r.window)) for r in many)
    alert_p99 = max((p99(sorted(a)) for r in many if (a := _alert_latency(r.run))), default=0.0)
    print("\ncallbacks on the loop over 10 ms in the rounds (count, longest ms), by what ran:")
    seen: dict[str, list[float]] = {}
    gen2 = [(t, t + d) for t, d, gen in probe["gcs"] if gen == 2]
    for rnd in many:
        for t, took, what, _ in probe["slow"]:
            if rnd.window[0] <= t <= rnd.window[1]:
                gc_in = any(a < t + took and b > t for a, b in gen2)
                name = what + (" (a full collection in it)" if gc_in else "")
                seen.setdefault(name, []).append(took * 1000)
    full = [d * 1000 for t, d, gen in probe["gcs"] if gen == 2
            and any(r.window[0] <= t <= r.window[1] for r in many)]  # fmt: skip
    listed = sorted(seen.items(), key=lambda kv: -max(kv[1]))
    print("  " + ("; ".join(f"{name} {len(v)}, {max(v):.1f}" for name, v in listed) or "none"))
    print(f"  full collections: {len(full)}, longest {max(full, default=0.0):.1f} ms")
    print(f"\nworst stall {worst:.1f} ms (target <= 20); worst round's alert p99 "
          f"{alert_p99:.1f} ms (target <= 50); RSS {grown:.0f} MiB with {n} PBXs, "
          f"{base:.0f} MiB with one: {per_pbx:.2f} MiB per PBX added")  # fmt: skip


async def saturate(n: int, seconds: float, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rounds, _ = await _session(n, runs, seconds, None, Path(tmp))
    rows = [[f"{i + 1}", f"{r.sent / seconds:,.0f}", f"{r.taken / seconds:,.0f}",
             f"{r.cpu / seconds:.2f}", f"{r.taken / r.cpu:,.0f}" if r.cpu else "-"]
            for i, r in enumerate(rounds)]  # fmt: skip
    per_core = statistics.median(r.taken / r.cpu for r in rounds if r.cpu)
    print(f"\n{n} PBXs sending as fast as this process can, {runs} rounds of {seconds:g} s; "
          f"{machine()}\n")  # fmt: skip
    print(table(["round", "sent/s", "taken/s", "run CPU s/s", "events per CPU s"], rows))
    print(f"\none process saturates at about {per_core:,.0f} events per CPU second (one core)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", default="both", choices=["peak", "saturate", "both"])
    parser.add_argument("--pbxs", type=int, default=50)
    parser.add_argument("--rate", type=float, default=100.0, help="events/s per PBX (peak)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if args.what in ("peak", "both"):
        asyncio.run(peak(args.pbxs, args.rate, args.seconds, args.runs))
    if args.what in ("saturate", "both"):
        asyncio.run(saturate(args.pbxs, args.seconds, args.runs))


if __name__ == "__main__":
    main()
