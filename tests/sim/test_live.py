"""The simulator as a live AMI server, over real TCP.

- Status actions are answered with the responses, list items and header
  lists of the real Asterisk 22 (``status_actions.transcript.json``).
- A real ``pbxwatch run`` process connected to the simulator for a
  simulated hour reports exactly the totals the simulator's own record of
  that hour holds.
- ``pbxwatch demo`` runs, its numbers move and its metrics endpoint answers.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from pbxwatch.ami.codec import FrameDecoder, encode_frame
from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimCall, simulate_day
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.conftest import FIXTURES, LAB_CONFIG
from tests.live import run_whole_plan
from tests.services import free_port, pbxwatch, wait_for_port
from tests.sim.expect import DAY

TRANSCRIPT = FIXTURES / "status_actions.transcript.json"


async def _ask(port: int, actions: list[dict[str, str]]) -> list[list[dict[str, str]]]:
    """Log in with events off, send each action, collect its answer frames."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await reader.readline()  # banner
    decoder = FrameDecoder()
    decoder.banner = ""
    pending: list[dict[str, str]] = []

    async def frames_until(done: str | None) -> list[dict[str, str]]:
        out: list[dict[str, str]] = []
        while True:
            while pending:
                f = pending.pop(0)
                out.append(f)
                if (
                    done is None
                    or f.get("Event", "").endswith("Complete")
                    or ("Response" in f and f.get("EventList") != "start")
                ):
                    return out
            pending.extend(decoder.feed(await asyncio.wait_for(reader.read(65536), 5)))

    writer.write(encode_frame({"Action": "Login", "Username": "u", "Secret": "s",
                               "Events": "off", "ActionID": "login"}))  # fmt: skip
    await frames_until(None)
    answers = []
    for i, action in enumerate(actions):
        writer.write(encode_frame({**action, "ActionID": f"a{i}"}))
        answers.append(await frames_until("list"))
    writer.close()
    return answers


def test_status_actions_answer_like_asterisk(lab_settings: Settings) -> None:
    """Asked while a caller waits in the group queue and calls are up, so
    that every kind of list item the transcript holds is in the answers and
    its header list is compared."""
    transcript = json.loads(TRANSCRIPT.read_text(encoding="utf-8"))
    wanted = [a for a in transcript if "IAXpeerlist" not in a["request"]]

    async def main() -> list[list[dict[str, str]]]:
        sim = SimulatedPbx(lab_settings, SimPlan(DAY), "u", "s")
        for _, fields in simulate_day(lab_settings, DAY, calls_per_hour=60, seed=3).frames:
            sim.state.apply(fields)
            if sim.state.callers.get("bygglov") and len(sim.state.channels) >= 3:
                break
        else:
            raise AssertionError("no moment with a caller waiting for Bygglov")
        port = await sim.start()
        try:
            return await _ask(port, [_request(a["request"]) for a in wanted])
        finally:
            await sim.close()

    answers = asyncio.run(main())
    for recorded, ours in zip(wanted, answers, strict=True):
        action = recorded["request"].split("\r\n")[0]
        response, items = ours[0], ours[1:]
        assert list(response) == list(recorded["response"]), action
        assert response.get("Message") == recorded["response"].get("Message"), action
        shapes = {e["Event"]: list(e) for e in recorded.get("list_events", [])}
        assert set(shapes) <= {i["Event"] for i in items}, action  # every kind is compared
        for item in items:
            if item["Event"] in shapes:
                assert list(item) == shapes[item["Event"]], (action, item["Event"])
        if recorded.get("list_events"):
            assert items[-1]["ListItems"] == str(len(items) - 1), action


def _request(raw: str) -> dict[str, str]:
    lines = [ln for ln in raw.split("\r\n") if ln and not ln.startswith("ActionID")]
    return dict(ln.split(": ", 1) for ln in lines)


# ------------------------------------------------------------ a simulated hour


def _totals(calls: list[SimCall]) -> dict[str, Any]:
    inbound = [c for c in calls if c.kind not in ("outbound", "listen")]
    return {
        "calls": len(calls),
        "inbound by outcome": Counter(c.outcome for c in inbound),
        "answered by": Counter(c.answered_by for c in inbound if c.answered_by),
        "diverted": sum(c.diverted for c in calls),
        "transferred": sum(bool(c.transferred_to) for c in calls),
        "messages": Counter(c.mailbox for c in calls if c.mailbox),
        "unanswered rings": Counter(e for c in calls for e in c.unanswered_rings),
        "missing forwards": Counter(c.target for c in calls if c.missing_forward),
    }


def _reported(records: list[dict[str, Any]]) -> dict[str, Any]:
    calls = [r for r in records if r["type"] == "call"]
    inbound = [c for c in calls if c["direction"] == "inbound"]
    incidents = [r for r in records if r["type"] == "incident"]
    return {
        "calls": len(calls),
        "inbound by outcome": Counter(c["outcome"] for c in inbound),
        "answered by": Counter(c["answered_by"] for c in inbound if c["answered_by"]),
        "diverted": sum(c["diverted"] for c in calls),
        "transferred": sum(bool(c["transferred_to"]) for c in calls),
        "messages": Counter(c["voicemail_mailbox"] for c in calls if c["outcome"] == "voicemail"),
        "unanswered rings": _extensions(incidents, "unanswered_ring"),
        "missing forwards": _extensions(incidents, "missing_forward"),
    }


def _extensions(incidents: list[dict[str, Any]], kind: str) -> Counter[str]:
    return Counter(i["extension"] for i in incidents if i["kind"] == kind)


def test_a_simulated_hour_over_tcp(lab_settings: Settings, tmp_path: Path) -> None:
    """One hour of calls (09:00-10:00, with the messages' callbacks later that
    day) at 3600x, into a real ``pbxwatch run`` process."""
    plan = SimPlan(DAY, days=1, calls_per_hour=60, speed=3600, seed=5, open_hour=9,
                   close_hour=10)  # fmt: skip
    sim, records, _ = run_whole_plan(lab_settings, plan, tmp_path)
    [day] = sim.days
    assert sum(c.start < day.start + 3.5 * 3600 for c in day.calls) >= 40  # an hour's calls
    assert _reported(records) == _totals(day.calls)


def test_a_pause_holds_the_frame_it_waits_for(lab_settings: Settings) -> None:
    """Paused while it sleeps towards its next frame, the simulator sends
    nothing and its clock (what a Ping answers with) stands still until it
    resumes; the frame then comes as late as the pause was long."""

    async def main() -> None:
        plan = SimPlan(DAY, days=1, calls_per_hour=60, speed=60, seed=5, open_hour=9,
                       close_hour=9.2)  # fmt: skip
        sim = SimulatedPbx(lab_settings, plan, "u", "s")
        sim.fast_forward(plan.lead_in_seconds - plan.speed)  # a wall second before opening
        playing = asyncio.create_task(sim.run())
        try:
            while not sim.days:
                await asyncio.sleep(0.005)
            frames = [t for t, _ in sim.days[0].frames]
            opening = sim.days[0].start + plan.lead_in_seconds
            # a wait of at least a wall second before a frame of the day: pause in it
            waiting = next(i for i in range(1, len(frames)) if frames[i - 1] > opening
                           and frames[i] - frames[i - 1] > plan.speed)  # fmt: skip
            while sim.sent < waiting:
                await asyncio.sleep(0.005)
            sim.pause()
            sent, now = sim.sent, sim.now
            await asyncio.sleep((frames[waiting] - frames[waiting - 1]) / plan.speed + 0.3)
            assert (sim.sent, sim.now) == (sent, now)
            sim.resume()
            await asyncio.sleep(0.2)
            assert sim.sent == sent  # the pause's length is added to the wait
        finally:
            playing.cancel()

    asyncio.run(main())


# ------------------------------------------------------------ the demo


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") or line.startswith(name + " "))  # fmt: skip


def test_demo_runs_and_exposes_metrics(tmp_path: Path) -> None:
    metrics = free_port()
    cmd = pbxwatch("demo", "--config", str(LAB_CONFIG), "--speed", "900", "--duration", "25",
                   "--start", DAY.isoformat(), "--data-dir", str(tmp_path / "data"),
                   "--metrics-listen", f"127.0.0.1:{metrics}", "--lang", "sv")  # fmt: skip
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for_port(metrics, 20, proc)
            seen = []
            for _ in range(30):
                seen.append(_metric(metrics, "pbxwatch_calls_total"))
                if len(set(seen)) >= 3:
                    break
                time.sleep(0.5)
            assert len(set(seen)) >= 3, seen  # numbers that move
            assert seen == sorted(seen), seen
            assert proc.wait(40) == 0, log.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert "samtal klara" in text  # --lang sv: the summary speaks Swedish
    assert "svarstid" in text
    assert (tmp_path / "data" / "pbxwatch.db").exists()
