"""The outbox at its edges, against a real Mosquitto: its backlog gauge
while the broker is down, alerts a replay made never reaching a chief
through a later run, and ``alerts tail`` living through a broker restart."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import urllib.request
from pathlib import Path

import aiomqtt
import yaml

from pbxwatch.settings import Settings
from tests.conftest import RECORDINGS
from tests.mqtt.test_alerts_over_mqtt import (
    ENV,
    RECORDING,
    Pbx,
    Subscriber,
    _until,
    broker,
    chief,
    expected_alerts,
)
from tests.services import Mosquitto, free_port, pbxwatch, process, wait_for_port

__all__ = ["broker", "chief"]  # fixtures used by name
QUIET = next(r for r in RECORDINGS if r.stem == "answered_after_rings")  # raises no alert


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " ") or line.startswith(name + "{"))  # fmt: skip


async def test_outbox_backlog_is_seen_while_the_broker_is_down(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto
) -> None:
    want = expected_alerts(lab_settings)
    pbx = Pbx(tmp_path, broker)
    port = free_port()
    raw = yaml.safe_load(pbx.config.read_text(encoding="utf-8"))
    raw["metrics"] = {"listen": f"127.0.0.1:{port}"}
    pbx.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    broker.stop()
    with pbx.server(), pbx.run():
        await _until(lambda: pbx.unsent() >= len(want))
        await _until(lambda: _metric(port, "pbxwatch_alert_outbox_backlog") >= len(want), 20)
        assert _metric(port, "pbxwatch_mqtt_up") == 0
        assert _metric(port, "pbxwatch_mqtt_connect_failures_total") >= 1
        broker.start()
        await _until(lambda: _metric(port, "pbxwatch_alert_outbox_backlog") == 0, 30)
        assert _metric(port, "pbxwatch_mqtt_up") == 1


async def test_a_replays_alerts_never_reach_a_chief(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto, chief: Subscriber
) -> None:
    pbx = Pbx(tmp_path, broker)
    made = subprocess.run(pbxwatch("replay", str(RECORDING), "--config", str(pbx.config)),
                          check=False, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    db = tmp_path / "data" / "pbxwatch.db"
    with sqlite3.connect(db) as conn:
        kept = conn.execute("SELECT count(*), min(withheld), max(withheld), "
                            "count(sent_at) FROM alerts").fetchone()  # fmt: skip
    assert kept == (len(expected_alerts(lab_settings)), "replay", "replay", 0)
    server = pbxwatch("serve-recording", str(QUIET), "--port", str(pbx.ami))
    with process(server, tmp_path / "server.log", ENV), pbx.run():
        await _until(lambda: "MQTT connected" in (tmp_path / "run0.log").read_text(), 30)
        await asyncio.sleep(3.0)  # the outbox has been read several times
    assert chief.messages == []
    assert pbx.unsent() == kept[0]  # still there, as a record, never sent


async def test_alerts_tail_lives_through_a_broker_restart(
    lab_settings: Settings, tmp_path: Path, broker: Mosquitto
) -> None:
    pbx = Pbx(tmp_path, broker)
    alert = next(iter(expected_alerts(lab_settings).values()))
    cmd = pbxwatch("alerts", "tail", "--config", str(pbx.config), "--json")
    tail = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        await asyncio.sleep(2.0)
        broker.stop()
        await asyncio.sleep(1.5)
        assert tail.poll() is None  # waiting for the broker, not gone
        broker.start()
        await asyncio.sleep(3.0)  # reconnected and subscribed again
        async with aiomqtt.Client("127.0.0.1", broker.port, identifier="pub") as client:
            topic = f"pbxwatch/exempelkommun/units/{alert['unit']}/alerts"
            await client.publish(topic, json.dumps(alert).encode(), qos=1)
        assert tail.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(tail.stdout.readline), 15)
    finally:
        tail.terminate()
        tail.wait(timeout=10)
    assert json.loads(line)["alert_id"] == alert["alert_id"]


async def test_a_wrong_broker_password_is_retried_warned_and_counted(
    tmp_path: Path,
) -> None:
    (tmp_path / "broker").mkdir()
    secure = Mosquitto(tmp_path / "broker", users={"pbxwatch": "right"})
    secure.start()
    try:
        pbx = Pbx(tmp_path, secure)
        port = free_port()
        raw = yaml.safe_load(pbx.config.read_text(encoding="utf-8"))
        raw["metrics"] = {"listen": f"127.0.0.1:{port}"}
        raw["mqtt"].update(username="pbxwatch", password_env="MQTT_PASSWORD")
        pbx.config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
        cmd = pbxwatch("run", "--config", str(pbx.config), "--pbx-speed", "0")
        log = tmp_path / "wrong.log"
        with process(cmd, log, {**ENV, "MQTT_PASSWORD": "wrong"}) as proc:
            wait_for_port(port, proc=proc)
            await _until(lambda: _metric(port, "pbxwatch_mqtt_connect_failures_total") >= 3, 30)
            assert _metric(port, "pbxwatch_mqtt_up") == 0
            assert proc.poll() is None  # still running, still trying
        assert log.read_text().count("MQTT: ") >= 3  # said at every try, not once and silent
        with process(cmd, tmp_path / "right.log", {**ENV, "MQTT_PASSWORD": "right"}) as proc:
            wait_for_port(port, proc=proc)
            await _until(lambda: _metric(port, "pbxwatch_mqtt_up") == 1, 30)
    finally:
        secure.stop()


async def test_a_restart_gap_is_on_the_retained_status(tmp_path: Path, broker: Mosquitto) -> None:
    """#18: a restart is a gap, and operations see it on MQTT: retained JSON
    on ``<prefix>/<site>/status/gap`` saying when pbxwatch was blind."""
    pbx = Pbx(tmp_path, broker)
    server = pbxwatch("serve-recording", str(QUIET), "--port", str(pbx.ami))
    with process(server, tmp_path / "server.log", ENV):
        with pbx.run(0):
            await _until(lambda: "MQTT connected" in (tmp_path / "run0.log").read_text(), 30)
            await asyncio.sleep(2.0)  # the recording read, its position noted
        with pbx.run(1):
            await _until(lambda: "AMI gap of" in (tmp_path / "run1.log").read_text(), 30)
            topic = "pbxwatch/exempelkommun/status/gap"
            async with aiomqtt.Client("127.0.0.1", broker.port, identifier="ops") as client:
                await client.subscribe(topic, qos=1)
                async with asyncio.timeout(20):
                    await anext(aiter(client.messages))  # published
    # a dashboard that connects later gets it from the broker
    async with aiomqtt.Client("127.0.0.1", broker.port, identifier="ops-later") as client:
        await client.subscribe(topic, qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(client.messages))
    assert message.retain
    assert isinstance(message.payload, bytes)
    gap = json.loads(message.payload)
    assert gap["type"] == "ami_gap"
    assert gap["reason"] == "pbxwatch was not running (restart)"
    assert gap["seconds"] >= 0
    assert "calls_still_up" in gap["reconciled"]
