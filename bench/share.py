"""Scale, part two: how N ``pbxwatch run`` processes share 500 PBXs.

The hot standby (``cluster:``, issue #22) on a real PostgreSQL: this
process is every PBX (``--pbxs`` of the simulator's AMI servers on
loopback, each sending ``bench/scale.py``'s stream at ``--rate`` events/s,
an ordinary load) and starts the instances one after the other.  Each
instance follows every PBX (one AMI session and one core each) and owns
its share by lease.  Measured:

* per instance joining: how long until it had logged in to every PBX,
  and until the PBXs were shared evenly (it is given its share once it is
  ready, ``Follower.sees_everything``);
* per round of ``--seconds`` with every instance up: each one's CPU
  (s/s, from ``/proc``), RSS, and PBXs owned;
* the last instance stopped (SIGTERM: its leases given back) and the
  first one killed (SIGKILL: its leases lapse): how long until the others
  own everything.

Usage: .venv/bin/python bench/share.py [--instances 2] [--pbxs 500] [--rate 2]
           [--seconds 10] [--runs 3] [--lease 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from common import ROOT, machine, table
from latency import Run
from scale import Pbxs, Round, _config, _cpu_seconds, _rss_mib
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

#: seconds after its login a joining instance is given its share (see _cluster_config)
READY_MAX = 10.0


@dataclass
class Instance:
    name: str
    config: Path
    metrics: int
    proc: subprocess.Popen[bytes] | None = None


def _cluster_config(tmp: Path, name: str, ports: dict[str, int], mqtt: int, metrics: int,
                    url: str, lease: float) -> Path:  # fmt: skip
    where = tmp / name
    where.mkdir()
    path = _config(where, ports, mqtt, metrics)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    config["storage"] = {"url": url, "data_dir": str(where / "data")}
    # the stream is a recording cycled: some call is always one an instance
    # joined mid-way, so a joiner is ready only by ready_max_seconds
    config["cluster"] = {"enabled": True, "instance": name, "lease_seconds": lease,
                         "ready_max_seconds": READY_MAX}  # fmt: skip
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def _start(inst: Instance, tmp: Path) -> None:
    env = {**os.environ, "BENCH_SECRET": "s"}
    log = (tmp / f"{inst.name}.log").open("ab")
    inst.proc = subprocess.Popen([sys.executable, "-m", "pbxwatch", "run", "--config",
                                  str(inst.config)], stdout=log, stderr=subprocess.STDOUT,
                                 env=env, cwd=ROOT)  # fmt: skip


async def _owners(db: AsyncEngine) -> Counter[str]:
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT holder FROM pbx_leases WHERE expires_at >= :now AND pbx NOT LIKE '@%'"),
            {"now": time.time()})).all()  # fmt: skip
    return Counter(r.holder.split("/", 1)[0] for r in rows)


Check = Callable[[], Awaitable[bool]]


async def _until(check: Check, timeout: float, what: str) -> float:
    """Seconds until ``check()`` is true."""
    began = time.monotonic()
    while not await check():
        if time.monotonic() - began > timeout:
            raise TimeoutError(what)
        await asyncio.sleep(0.1)
    return time.monotonic() - began


async def _keep_sending(pbxs: Pbxs, rate: float, stop: asyncio.Event) -> None:
    """The ordinary load between the measured rounds too (instances join under it)."""
    while not stop.is_set():
        await pbxs.send(Round(len(pbxs.sims), Run(int(rate))), 1.0, rate)


async def share(n_inst: int, n: int, rate: float, seconds: float, runs: int,
                lease: float) -> None:  # fmt: skip
    from tests import pg
    from tests.services import Mosquitto, free_port

    with tempfile.TemporaryDirectory() as d, pg.postgres_server() as url:
        tmp = Path(d)
        broker = Mosquitto(tmp)
        broker.start()
        pbxs = Pbxs(n)
        ports = await pbxs.start()
        insts = [Instance(f"i{k + 1}", Path(), free_port()) for k in range(n_inst)]
        for inst in insts:
            inst.config = _cluster_config(tmp, inst.name, ports, broker.port, inst.metrics,
                                          url, lease)  # fmt: skip
        upgrade = [sys.executable, "-m", "pbxwatch", "db", "upgrade", "--config",
                   str(insts[0].config)]  # fmt: skip
        subprocess.run(upgrade, check=True, capture_output=True, cwd=ROOT)
        db = create_async_engine(url)
        stop = asyncio.Event()
        sender = asyncio.create_task(_keep_sending(pbxs, rate, stop))
        joins: list[list[str]] = []
        rows: list[list[str]] = []
        try:
            for k, inst in enumerate(insts):
                _start(inst, tmp)
                logged = await _until(_logged_in(pbxs, k + 1), 300, f"{inst.name} logged in")
                even = _even(db, [i.name for i in insts[: k + 1]], n)
                shared = await _until(even, 300, f"shared by {k + 1}")
                owned = sorted((await _owners(db)).items())
                joins.append([inst.name, f"{logged:.1f}", f"{shared:.1f}",
                              " ".join(f"{name} {c}" for name, c in owned)])  # fmt: skip
            for r in range(runs):
                # CPU from /proc, not the metrics: a scrape of 500 PBXs' series
                # outlasts 10 s and would load what it measures
                before = {i.name: _cpu_seconds(i.proc.pid) for i in insts if i.proc}
                await asyncio.sleep(seconds)
                owned = await _owners(db)
                for inst in insts:
                    assert inst.proc is not None
                    cpu = (_cpu_seconds(inst.proc.pid) - before[inst.name]) / seconds
                    rows.append([f"{r + 1}", inst.name, f"{owned[inst.name]}", f"{cpu:.2f}",
                                 f"{_rss_mib(inst.proc.pid):.0f}"])  # fmt: skip
            leave = await _leave(db, insts, signal.SIGTERM, n)
            dead = await _leave(db, insts, signal.SIGKILL, n) if n_inst > 2 else None
        finally:
            stop.set()
            await sender
            for inst in insts:
                if inst.proc is not None and inst.proc.poll() is None:
                    inst.proc.send_signal(signal.SIGTERM)
                    await asyncio.to_thread(inst.proc.wait, 60)
            await db.dispose()
            await pbxs.close()
            broker.stop()
    print(f"{n_inst} instances share {n} PBXs at {rate:g} events/s each ({n * rate:,.0f} "
          f"events/s), leases of {lease:g} s, PostgreSQL; {machine()}\n")  # fmt: skip
    print(table(["joined", "logged in to every PBX, s", "shared evenly after, s",
                 "PBXs owned"], joins))  # fmt: skip
    print()
    print(table(["round", "instance", "PBXs owned", "CPU s/s", "RSS MiB"], rows))
    cpu = statistics.median(float(r[3]) for r in rows)
    print(f"\nper instance: CPU {cpu:.2f} s/s (median), every instance following every PBX")
    print(f"the last instance stopped (SIGTERM): the others owned everything after {leave:.1f} s")
    if dead is not None:
        print(f"the first instance killed (SIGKILL): the others owned everything after "
              f"{dead:.1f} s")  # fmt: skip


def _logged_in(pbxs: Pbxs, count: int) -> Check:
    async def check() -> bool:
        return all(sim.server.listeners >= count for sim in pbxs.sims.values())

    return check


def _even(db: AsyncEngine, names: list[str], n: int) -> Check:
    """Every PBX owned, each instance at its fair share or one below."""
    least = n // len(names)

    async def check() -> bool:
        owned = await _owners(db)
        return sum(owned.values()) == n and all(owned[x] >= least for x in names)

    return check


async def _leave(db: AsyncEngine, insts: list[Instance], sig: signal.Signals, n: int) -> float:
    """Stop (SIGTERM: the last one) or kill (SIGKILL: the first one still up)
    an instance; seconds until the others own every PBX."""
    up = [i for i in insts if i.proc is not None and i.proc.poll() is None]
    gone = up[-1] if sig == signal.SIGTERM else up[0]
    assert gone.proc is not None
    began = time.monotonic()
    gone.proc.send_signal(sig)
    rest = {i.name for i in up if i is not gone}

    async def check() -> bool:
        owned = await _owners(db)
        return sum(owned[x] for x in rest) == n

    await _until(check, 120, f"the others own all after {sig.name}")
    took = time.monotonic() - began
    await asyncio.to_thread(gone.proc.wait, 60)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--pbxs", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2.0, help="events/s per PBX")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--lease", type=float, default=6.0)
    args = parser.parse_args()
    asyncio.run(share(args.instances, args.pbxs, args.rate, args.seconds, args.runs, args.lease))


if __name__ == "__main__":
    main()
