"""Alerts over a real Mosquitto, from a real ``pbxwatch run`` fed a recording
by ``pbxwatch serve-recording``: every alert exactly once per ``alert_id``
with its text and data; nothing lost when the broker stops for a while or
when pbxwatch is killed with alerts in its outbox; retained queue state
equal to the core's snapshot.

The alerts a recording should raise are what the pure core makes of it
in-process (``tests/unit/test_alerts.py`` checks texts and ids; the missing
forwards themselves are checked against the truth files elsewhere).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
import yaml

from pbxwatch.core.alerts import Alert
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings
from tests.conftest import LAB_CONFIG, RECORDINGS
from tests.services import Mosquitto, free_port, pbxwatch, process, wait_for_port
from tests.truth import load_truth

RECORDING = next(r for r in RECORDINGS if r.stem == "mixed_load")
ENV = {"PBXWATCH_AMI_SECRET": "pbxwatch-lab-ro"}


def expected_alerts(settings: Settings) -> dict[str, dict[str, Any]]:
    alerts: list[Alert] = []
    pipeline = Pipeline(build_engine(settings), [lambda r: alerts.append(r)
                                                 if isinstance(r, Alert) else None])  # fmt: skip
    replay_file(RECORDING, pipeline)
    return {a.alert_id: a.payload() for a in alerts}


def test_the_recording_raises_the_alerts_its_truth_implies(lab_settings: Settings) -> None:
    alerts = expected_alerts(lab_settings)
    truth = load_truth(RECORDING)
    people = lab_settings.directory.people
    missed = [t for t in truth["calls"] if t["expected"].get("missed_without_absence_diversion")]
    units = {people[t["expected"]["extension"]].unit for t in missed}
    alerted = {a["unit"] for a in alerts.values() if a["kind"] == "missing_forward"}
    assert alerted == units
    assert any(a["kind"] == "group_unstaffed" for a in alerts.values())


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    m = Mosquitto(tmp_path)
    m.start()
    yield m
    m.stop()


class Pbx:
    """serve-recording plus a pbxwatch run configuration pointing at it."""

    def __init__(self, tmp: Path, broker: Mosquitto, speed: float = 0.0) -> None:
        self.tmp = tmp
        self.ami = free_port()
        self.speed = speed
        raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
        raw["ami"]["port"] = self.ami
        raw["metrics"] = {"enabled": False}
        raw["storage"] = {"data_dir": str(tmp / "data")}
        raw["mqtt"] = {"enabled": True, "port": broker.port, "reconnect_initial_seconds": 0.2,
                       "reconnect_max_seconds": 1.0, "queue_state_seconds": 0.5}  # fmt: skip
        self.config = tmp / "pbxwatch.yaml"
        self.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    def server(self) -> Any:
        args = ["serve-recording", str(RECORDING), "--port", str(self.ami),
                "--speed", str(self.speed)]  # fmt: skip
        return process(pbxwatch(*args), self.tmp / "server.log", ENV)

    def run(self, n: int = 0) -> Any:
        cmd = pbxwatch("run", "--config", str(self.config), "--pbx-speed", str(self.speed))
        return process(cmd, self.tmp / f"run{n}.log", ENV)

    def unsent(self) -> int:
        db = self.tmp / "data" / "pbxwatch.db"
        if not db.exists():
            return 0
        with sqlite3.connect(db) as conn:
            try:
                return int(conn.execute("SELECT count(*) FROM alerts WHERE sent_at IS NULL")
                           .fetchone()[0])  # fmt: skip
            except sqlite3.OperationalError:
                return 0


class Subscriber:
    """A unit chief's client: persistent session, QoS 1, reconnects."""

    def __init__(self, port: int, topic: str) -> None:
        self.port, self.topic = port, topic
        self.messages: list[dict[str, Any]] = []
        self.subscribed = asyncio.Event()  # the session exists on the broker

    async def run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client("127.0.0.1", self.port, identifier="chief-test",
                                          clean_session=False) as client:  # fmt: skip
                    await client.subscribe(self.topic, qos=1)
                    self.subscribed.set()
                    async for msg in client.messages:
                        assert isinstance(msg.payload, bytes)
                        self.messages.append(json.loads(msg.payload))
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def ids(self) -> Counter[str]:
        return Counter(m["alert_id"] for m in self.messages)


@pytest.fixture
async def chief(broker: Mosquitto) -> AsyncIterator[Subscriber]:
    sub = Subscriber(broker.port, "pbxwatch/exempelkommun/units/+/alerts")
    task = asyncio.create_task(sub.run())
    # subscribed before pbxwatch publishes: an alert sent to nobody is gone
    await asyncio.wait_for(sub.subscribed.wait(), 10)
    yield sub
    task.cancel()


async def _until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError("timed out")


async def test_every_alert_arrives_exactly_once(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto, chief: Subscriber
) -> None:
    want = expected_alerts(lab_settings)
    pbx = Pbx(tmp_path, broker)
    with pbx.server(), pbx.run():
        wait_for_port(pbx.ami)
        await _until(lambda: set(chief.ids()) >= set(want))
        await asyncio.sleep(1.0)  # would a duplicate follow?
    assert chief.ids() == Counter(dict.fromkeys(want, 1))
    got = {m["alert_id"]: m for m in chief.messages}
    assert got == want  # the expected text and data, byte for byte
    assert pbx.unsent() == 0


async def test_broker_outage_in_the_middle_loses_nothing(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto, chief: Subscriber
) -> None:
    want = expected_alerts(lab_settings)
    pbx = Pbx(tmp_path, broker, speed=400.0)  # the recording takes about 8 s
    with pbx.server(), pbx.run():
        await _until(lambda: len(chief.ids()) > 0)
        broker.stop()
        await asyncio.sleep(3.0)  # alerts pile up in the outbox meanwhile
        assert pbx.unsent() > 0
        broker.start()
        await _until(lambda: set(chief.ids()) >= set(want))
    assert set(chief.ids()) == set(want)
    # QoS 1 is at least once: an alert the broker took just before it died
    # may come again when its PUBACK was lost with it.  Only those few, and
    # byte for byte the same, so the alert_id tells a subscriber it has it.
    again = [i for i, n in chief.ids().items() if n > 1]
    assert len(again) <= 2, chief.ids()
    for alert_id in again:
        copies = [m for m in chief.messages if m["alert_id"] == alert_id]
        assert all(c == copies[0] for c in copies)


async def test_sigkill_with_alerts_in_the_outbox_loses_nothing(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto, chief: Subscriber
) -> None:
    want = expected_alerts(lab_settings)
    pbx = Pbx(tmp_path, broker)
    broker.stop()  # nothing can be published: the outbox fills
    with pbx.server(), pbx.run(1) as first:
        await _until(lambda: pbx.unsent() >= len(want))
        first.send_signal(signal.SIGKILL)
        first.wait()
    broker.start()
    with pbx.server(), pbx.run(2):
        await _until(lambda: set(chief.ids()) >= set(want))
    assert set(chief.ids()) == set(want)
    assert pbx.unsent() == 0
    # duplicates, if any, share their alert_id (at-least-once); here none
    assert all(n == 1 for n in chief.ids().values())


async def test_retained_queue_state_matches_the_core(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto
) -> None:
    pipeline = Pipeline(build_engine(lab_settings))
    replay_file(RECORDING, pipeline)
    engine = pipeline.engine
    want = {s["queue"]: s for s in engine.snapshot(engine.calendar.tz, engine.now)
            if s["type"] == "queue" and s["queue"] in lab_settings.directory.queues}  # fmt: skip
    pbx = Pbx(tmp_path, broker)
    keep = ("waiting", "members", "offered", "answered", "abandoned", "unstaffed",
            "answered_within_service_level")  # fmt: skip
    with pbx.server(), pbx.run():
        # the retained state reaches the core's once the whole recording is
        # in, however long that takes on a loaded machine
        deadline = time.monotonic() + 60
        while True:
            got = await _retained_queue_states(broker.port, set(want))
            if all(q in got and _kept(got[q], keep) == _kept(want[q], keep) for q in want):
                break
            assert time.monotonic() < deadline, (got, want)
            await asyncio.sleep(0.5)


def _kept(state: dict[str, Any], keep: tuple[str, ...]) -> dict[str, Any]:
    return {k: state.get(k) for k in keep}


async def _retained_queue_states(port: int, queues: set[str]) -> dict[str, dict[str, Any]]:
    """The queue states retained on the broker now (a fresh subscriber's)."""
    got: dict[str, dict[str, Any]] = {}
    async with aiomqtt.Client("127.0.0.1", port, identifier="oncall") as client:
        await client.subscribe("pbxwatch/exempelkommun/queues/+/state", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                async for msg in client.messages:
                    if not msg.retain:
                        break  # published since: the retained ones came first
                    assert isinstance(msg.payload, bytes)
                    body = json.loads(msg.payload)
                    got[body["queue"]] = body
                    if set(got) >= queues:
                        break
    return got


async def test_alerts_tail_prints_a_unit_chiefs_view(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto
) -> None:
    import subprocess

    pbx = Pbx(tmp_path, broker)
    alert = next(a for a in expected_alerts(lab_settings).values()
                 if a["kind"] == "group_unstaffed")  # fmt: skip
    cmd = pbxwatch("alerts", "tail", "--config", str(pbx.config), "--unit", "bygglov")
    tail = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        await asyncio.sleep(2.0)  # subscribed
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="pub") as client:
            await client.publish("pbxwatch/exempelkommun/units/bygglov/alerts",
                                 json.dumps(alert).encode(), qos=1)  # fmt: skip
        assert tail.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(tail.stdout.readline), 15)
    finally:
        tail.terminate()
        tail.wait(timeout=10)
    assert "[Bygglov]" in line
    assert alert["text"]["sv"] in line
    assert alert["alert_id"] in line
