"""The whole MQTT tree of a live run, on a real Mosquitto, against the
shipped JSON Schemas, across a PBX outage.

A real ``pbxwatch run`` follows the simulator with Home Assistant discovery
on, while a client subscribed to ``#`` records every message.  Halfway
through the day the simulator's AMI server goes away (listener closed,
sessions hung up) and comes back on the same port; pbxwatch keeps running.
Then it is stopped with SIGINT.  Every message must have a schema for its
topic and fit it; ``status/pbx`` must go offline and online again while
``status`` stays online; no queue state may come before the first state
read; and what is retained at the end is the tree a newcomer (Home
Assistant) would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from pbxwatch.mqtt.discovery import discovery_configs
from pbxwatch.mqtt.schemas import errors, schema_for
from pbxwatch.mqtt.topics import Topics
from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.live import logged_in, run_config, start_run
from tests.services import Mosquitto, free_port, pbxwatch
from tests.sim.expect import DAY

pytestmark = pytest.mark.chaos

SPEED = 600  # simulated seconds per second: the hour in six seconds
TOPICS = Topics("pbxwatch", "exempelkommun")


@dataclass
class Seen:
    topic: str
    payload: bytes
    retain: bool
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.payload)


class Recorder:
    """Subscribed to ``#``: every message, in the order it came."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[Seen] = []
        self.ready = asyncio.Event()
        self.error: str | None = None

    async def run(self) -> None:
        try:
            async with aiomqtt.Client("127.0.0.1", self.port, identifier="recorder") as client:
                await client.subscribe("#", qos=1)
                self.ready.set()
                async for msg in client.messages:
                    assert isinstance(msg.payload, bytes)
                    self.seen.append(Seen(str(msg.topic), msg.payload, msg.retain))
        except Exception as exc:  # said by the waits, which would only time out
            self.error = repr(exc)
            raise

    def on(self, topic: str) -> list[Seen]:
        return [m for m in self.seen if m.topic == topic]

    def pbx_states(self) -> list[str]:
        return [m.json()["state"] for m in self.on(TOPICS.pbx)]


async def _until(check: Callable[[], bool], what: str, rec: Recorder,
                 timeout: float = 30.0) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what}; pbx {rec.pbx_states()}, {rec.error or 'recording'}"
        )
        await asyncio.sleep(0.05)


async def retained(port: int, quiet: float = 1.5) -> dict[str, Seen]:
    """What a client subscribing now gets: the retained tree."""
    got: dict[str, Seen] = {}
    async with aiomqtt.Client("127.0.0.1", port, identifier="newcomer") as client:
        await client.subscribe("#", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(quiet):
                async for msg in client.messages:
                    assert isinstance(msg.payload, bytes)
                    got[str(msg.topic)] = Seen(str(msg.topic), msg.payload, msg.retain)
    return got


def _check_schemas(settings: Settings, messages: list[Seen]) -> None:
    wrong = {}
    for m in messages:
        name = schema_for(m.topic, settings)
        if name is None:
            wrong[m.topic] = ["no schema for this topic"]
        elif problems := errors(name, m.payload):
            wrong[m.topic] = [*problems, m.payload.decode()[:300]]
    assert not wrong, json.dumps(wrong, indent=1, ensure_ascii=False)


def test_the_tree_fits_its_schemas_across_a_pbx_outage(
    lab_settings: Settings, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    ami = free_port()
    mqtt = {"enabled": True, "port": broker.port, "reconnect_initial_seconds": 0.2,
            "reconnect_max_seconds": 1.0, "queue_state_seconds": 0.3,
            "discovery": {"enabled": True}}  # fmt: skip
    config = run_config(tmp_path, ami, ami={"reconnect_initial_seconds": 0.1,
                                            "reconnect_max_seconds": 0.5}, mqtt=mqtt)  # fmt: skip
    plan = SimPlan(DAY, days=1, calls_per_hour=120, speed=SPEED, seed=5, open_hour=9,
                   close_hour=10)  # fmt: skip
    log = tmp_path / "run.log"
    seen: dict[str, Any] = {}

    async def main() -> tuple[Recorder, dict[str, Seen]]:
        rec = Recorder(broker.port)
        recording = asyncio.create_task(rec.run())
        await asyncio.wait_for(rec.ready.wait(), 10)
        sim = SimulatedPbx(lab_settings, plan, "u", "s")
        await sim.start("127.0.0.1", ami)
        with log.open("wb") as out:
            proc = start_run(config, out, pbx_speed=SPEED)
            try:
                await logged_in(sim, proc, log)
                await _until(lambda: "online" in rec.pbx_states(), "pbx online", rec)
                playing = asyncio.create_task(sim.run())
                await _until(lambda: sim.now is not None and bool(sim.days)
                             and sim.now > sim.days[0].calls[0].start + 1200,
                             "calls", rec)  # fmt: skip
                # the outage: the PBX's AMI goes away, pbxwatch keeps running
                sim.pause()
                await sim.server.close()
                await _until(lambda: rec.pbx_states()[-1] == "offline", "pbx offline", rec)
                seen["offline"] = rec.on(TOPICS.pbx)[-1].json()
                await asyncio.sleep(2.0)  # a while without the PBX: reconnects refused
                assert proc.poll() is None, log.read_text()
                await sim.server.start("127.0.0.1", ami)
                await _until(lambda: rec.pbx_states()[-1] == "online"
                             and rec.pbx_states().count("online") >= 2, "pbx online again",
                             rec)  # fmt: skip
                sim.resume()
                await asyncio.sleep(1.0)  # calls after the outage, then the rest at once
                sim.plan = replace(plan, speed=1e9)
                await playing
                await _until(lambda: bool(rec.on(TOPICS.gap)), "the gap", rec)
                await asyncio.sleep(1.5)  # the last state published
            finally:
                proc.send_signal(signal.SIGINT)
                await asyncio.to_thread(proc.wait, 30)
                await sim.close()
        assert proc.returncode == 0, log.read_text()
        await asyncio.sleep(0.5)  # the last messages reach the recorder
        recording.cancel()
        return rec, await retained(broker.port)

    try:
        rec, tree = asyncio.run(main())
    finally:
        broker.stop()
    messages = rec.seen

    # every message has a schema for its topic, and fits it
    assert len(messages) > 50, [m.topic for m in messages]
    _check_schemas(lab_settings, messages)
    kinds = {schema_for(m.topic, lab_settings) for m in messages}
    assert kinds == {"status", "pbx", "gap", "alert", "queue_state", "unit_state", "ha_sensor",
                     "ha_binary_sensor"}, kinds  # fmt: skip
    _check_schemas(lab_settings, list(tree.values()))

    # pbxwatch's own availability: online throughout, offline only at the end
    assert [m.payload for m in rec.on(TOPICS.status)] == [b"online", b"offline"]
    # the PBX's: (not yet, unless the state read was over by the relay's
    # first look), online, lost, online again, pbxwatch stopped
    pbx = [m.json() for m in rec.on(TOPICS.pbx)]
    if pbx[0]["state"] == "offline":
        assert "not connected yet" in pbx.pop(0)["reason"]
    assert [p["state"] for p in pbx] == ["online", "offline", "online", "offline"]
    assert seen["offline"]["reason"], seen["offline"]
    assert pbx[-1]["reason"] == "pbxwatch stopped"
    status_off = rec.on(TOPICS.status)[-1].at
    on_pbx = rec.on(TOPICS.pbx)
    first = next(i for i, m in enumerate(on_pbx) if m.json()["state"] == "online")
    lost = next(m for m in on_pbx[first:] if m.json()["state"] == "offline")
    assert lost.at < status_off  # the outage was seen with pbxwatch up

    # no queue state before the first state read, and never an epoch time
    first_online = next(m.at for m in rec.on(TOPICS.pbx) if m.json()["state"] == "online")
    queue_msgs = [m for m in messages if m.topic.startswith(f"{TOPICS.base}/queues/")]
    assert queue_msgs, "no queue state at all"
    assert min(m.at for m in queue_msgs) >= first_online
    timed = [m.json() for m in messages if m.payload.startswith(b"{")]
    assert not [b for b in timed if str(b.get("at", "")).startswith("1970")]
    # while the PBX was offline, no queue state was published
    back = [m.at for m in rec.on(TOPICS.pbx) if m.json()["state"] == "online"][1]
    assert not [m for m in queue_msgs if lost.at < m.at < back]

    # the retained tree: what Home Assistant finds when it subscribes
    configs = discovery_configs(lab_settings)
    assert set(configs) <= set(tree), sorted(set(configs) - set(tree))
    assert all(tree[t].retain for t in tree)
    assert tree[TOPICS.status].payload == b"offline"
    assert tree[TOPICS.pbx].json()["state"] == "offline"
    for topic, config in configs.items():
        assert tree[topic].json() == config
        assert config["state_topic"] in tree, config["state_topic"]
        for a in config["availability"]:
            assert a["topic"] in tree
    for q in lab_settings.directory.queues:
        assert tree[TOPICS.queue(q)].json()["queue"] == q
    for u in lab_settings.directory.units:
        assert tree[TOPICS.unit_state(u)].json()["unit"] == u
    gap = tree[TOPICS.gap].json()
    assert gap["reconciled"].get("items_QueueStatus", 0) > 0, gap
    print(f"{len(messages)} messages on {len({m.topic for m in messages})} topics; "
          f"pbx {[p['state'] for p in pbx]}; lost: {seen['offline']['reason']}")  # fmt: skip


async def test_alerts_tail_prints_the_pbx_availability(
    lab_settings: Settings, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    config = run_config(tmp_path, free_port(), mqtt={"enabled": True, "port": broker.port})
    body = {"type": "pbx", "state": "offline", "since": "2026-11-24T09:12:00.000+01:00",
            "reason": "connection refused"}  # fmt: skip
    try:
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="pub") as client:
            await client.publish(TOPICS.pbx, json.dumps(body).encode(), qos=1, retain=True)
        cmd = pbxwatch("alerts", "tail", "--config", str(config))
        tail = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert tail.stdout is not None
            line = await asyncio.wait_for(asyncio.to_thread(tail.stdout.readline), 30)
        finally:
            tail.terminate()
            tail.wait(timeout=10)
    finally:
        broker.stop()
    assert "PBX offline" in line, line
    assert "2026-11-24T09:12:00.000+01:00" in line, line
    assert "connection refused" in line, line
