"""``pbxwatch run`` serves the console on its own loop: against the
project's PBX simulator, the wallboard's figures come over SSE while the
AMI stream flows, the health says the AMI is up, and SIGINT stops run
cleanly (exit 0) with an SSE client still connected."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import signal
import time
from pathlib import Path

import httpx

from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.live import logged_in, run_config, start_run
from tests.services import free_port, wait_for_port

DAY = dt.date(2026, 11, 23)  # a Monday


def test_run_serves_the_console_live(lab_settings: Settings, tmp_path: Path) -> None:
    ami, web = free_port(), free_port()
    config = run_config(tmp_path, ami, web={"listen": f"127.0.0.1:{web}"})
    plan = SimPlan(DAY, days=1, calls_per_hour=120, speed=600, seed=3, lead_in_seconds=60,
                   call_at_open=True)  # fmt: skip
    log = tmp_path / "run.log"
    base = f"http://127.0.0.1:{web}"

    async def main() -> None:
        sim = SimulatedPbx(lab_settings, plan, "u", "s")
        await sim.start("127.0.0.1", ami)
        with log.open("wb") as out:
            proc = start_run(config, out, pbx_speed=plan.speed)
        try:
            await logged_in(sim, proc, log)
            await asyncio.to_thread(wait_for_port, web, 30, proc)
            player = asyncio.create_task(sim.run())
            events = await asyncio.to_thread(_events, base, 4)
            health = (await asyncio.to_thread(httpx.get, base + "/api/v1/health")).json()
            assert health["ami_up"] is True
            assert health["last_event_at"] is not None
            assert [e["ami_up"] for e in events] == [True] * len(events)
            assert {q["queue"] for q in events[-1]["queues"]} == {"bygglov", "kontaktcenter"}
            # a client still on /events while run is told to stop
            with httpx.stream("GET", base + "/events", timeout=10) as stream:
                next(stream.iter_text())
                started = time.monotonic()
                proc.send_signal(signal.SIGINT)
                code = await asyncio.to_thread(proc.wait, 30)
            assert code == 0, log.read_text()
            assert time.monotonic() - started < 15, log.read_text()
            player.cancel()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            await sim.close()

    asyncio.run(main())
    assert "console on http://127.0.0.1:" in log.read_text()


def _events(base: str, n: int) -> list[dict[str, object]]:
    """The first ``n`` wallboard events of the SSE stream."""
    out: list[dict[str, object]] = []
    with httpx.stream("GET", base + "/events", timeout=20) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                out.append(json.loads(line[6:]))
                if len(out) == n:
                    break
    return out
