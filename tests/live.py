"""For the tests that run a real ``pbxwatch run`` process against the
project's AMI server or simulator (login ``u`` / ``s``): its configuration,
its start, and counting what it reported or stored."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import IO, Any

import yaml

from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.conftest import LAB_CONFIG
from tests.services import free_port, pbxwatch

#: the environment a run needs: the simulator's secret
RUN_ENV = {"SIM_SECRET": "s"}


def run_config(tmp: Path, ami_port: int, *, ami: dict[str, Any] | None = None,
               **sections: Any) -> Path:  # fmt: skip
    """The lab configuration pointed at ``ami_port``, metrics and console off, the
    default SQLite store in ``tmp/data``; ``ami`` adds AMI settings, any
    other keyword replaces a whole section.  Written to ``tmp/pbxwatch.yaml``."""
    config = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    config["ami"].update(port=ami_port, username="u", secret_env="SIM_SECRET", **(ami or {}))
    config["metrics"] = {"enabled": False}
    config["web"] = {"enabled": False}  # runs side by side would fight over its port
    config["storage"] = {"data_dir": str(tmp / "data")}
    config.update(sections)
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "pbxwatch.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def as_many_pbxs(path: Path, ports: dict[str, int]) -> Path:
    """A ``run_config`` turned into ``pbxs:``, one PBX per id of ``ports``
    (its AMI port), each with the lab's AMI settings (reconnecting fast) and
    inbound rules."""
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    ami, inbound = config.pop("ami"), config.pop("inbound")
    ami |= {"reconnect_initial_seconds": 0.1, "reconnect_max_seconds": 0.5}
    config["pbxs"] = [{"id": pbx, "ami": {**ami, "port": port}, "inbound": inbound}
                      for pbx, port in ports.items()]  # fmt: skip
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def start_run(config: Path, stdout: IO[bytes], stderr: IO[bytes] | int = subprocess.STDOUT, *,
              json: bool = False, verbose: bool = False, pbx_speed: float = 0.0,
              env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:  # fmt: skip
    """``pbxwatch [-v] run --config CONFIG --pbx-speed X [--json]`` with the
    secret set.  ``pbx_speed`` is the simulator's speed, 0 for a server that
    sends as fast as it can."""
    cmd = pbxwatch(*(["-v"] if verbose else []), "run", "--config", str(config),
                   "--pbx-speed", str(pbx_speed), *(["--json"] if json else []))  # fmt: skip
    return subprocess.Popen(
        cmd, stdout=stdout, stderr=stderr, env={**os.environ, **RUN_ENV, **(env or {})}
    )


async def logged_in(sim: SimulatedPbx, proc: subprocess.Popen[bytes], log: Path,
                    interval: float = 0.05) -> None:  # fmt: skip
    """Until the run has logged in to the simulator (failing if it died)."""
    while sim.server.listeners == 0:
        assert proc.poll() is None, log.read_text()
        await asyncio.sleep(interval)


def reported(path: Path, kind: str = "call") -> int:
    """Records of ``kind`` a ``run --json`` has printed so far."""
    if not path.exists():
        return 0
    return sum(f'"type": "{kind}"' in line for line in path.read_text().splitlines())


async def until_reported(out: Path, expected: int, timeout: float = 30.0) -> None:
    """Until a ``run --json`` has printed ``expected`` calls, or ``timeout``
    (the caller's assertions then say what is missing)."""
    deadline = time.monotonic() + timeout
    while reported(out) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.2)


async def stop_run(proc: subprocess.Popen[bytes], sim: SimulatedPbx,
                   sig: signal.Signals = signal.SIGINT, timeout: float = 20.0) -> None:  # fmt: skip
    """Stop the run as an operator would (its exit status is the caller's to
    check), then the simulator."""
    proc.send_signal(sig)
    await asyncio.to_thread(proc.wait, timeout)
    await sim.close()


def stored_calls(db: Path) -> int:
    """Calls in a run's SQLite store so far (0 before it exists)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM calls").fetchone()[0])
        except sqlite3.Error:
            return 0  # not migrated yet


def run_whole_plan(settings: Settings, plan: SimPlan, tmp: Path,
                   **sections: Any) -> tuple[SimulatedPbx, list[dict[str, Any]], str]:  # fmt: skip
    """A real ``pbxwatch run --json --pbx-speed`` (the plan's speed) against
    the simulator for all of ``plan``: logged in first, then every day
    played, then waited for (up to 30 s) until every simulated call was
    reported, then stopped with SIGINT.  Returns the simulator (its own
    record), the records the run printed and its log."""
    port = free_port()
    config = run_config(tmp, port, **sections)
    out, err = tmp / "run.jsonl", tmp / "run.log"

    async def main() -> SimulatedPbx:
        sim = SimulatedPbx(settings, plan, "u", "s")
        await sim.start("127.0.0.1", port)
        with out.open("wb") as so, err.open("wb") as se:
            proc = start_run(config, so, se, json=True, pbx_speed=plan.speed)
            try:
                await logged_in(sim, proc, err)
                await asyncio.sleep(1.0)  # the state read after login
                await sim.run()
                await until_reported(out, sum(len(day.calls) for day in sim.days))
            finally:
                await stop_run(proc, sim)
        assert proc.returncode == 0, err.read_text()
        return sim

    sim = asyncio.run(main())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    return sim, records, err.read_text()
