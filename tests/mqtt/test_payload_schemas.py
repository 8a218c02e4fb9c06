"""The shipped JSON Schemas against the payloads pbxwatch makes, without a
broker: every schema is a valid Draft 2020-12 schema and ships in the
package, every topic maps to one, and the payloads the core and the relay
make from a recording fit them.  ``test_mqtt_tree.py`` checks the same
against everything a live run publishes on a real Mosquitto."""

from __future__ import annotations

import json
from collections import Counter
from importlib import resources
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from jsonschema import Draft202012Validator

from pbxwatch.mqtt.discovery import QUEUE_ENTITIES, UNIT_ENTITIES, discovery_configs
from pbxwatch.mqtt.schemas import SCHEMAS, errors, load, schema_for
from pbxwatch.mqtt.state import PbxStatus, unit_payload
from pbxwatch.mqtt.topics import topics_for
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import DiscoverySettings, Settings
from tests.mqtt.test_alerts_over_mqtt import RECORDING, expected_alerts


def _fits(name: str, body: Any) -> None:
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    assert errors(name, raw) == [], (name, body)


@pytest.mark.parametrize("name", SCHEMAS)
def test_every_schema_is_valid_and_shipped(name: str) -> None:
    Draft202012Validator.check_schema(load(name))
    shipped = resources.files("pbxwatch.mqtt").joinpath("schemas", f"{name}.schema.json")
    assert shipped.is_file()


def test_no_stray_schema_files() -> None:
    folder = resources.files("pbxwatch.mqtt").joinpath("schemas")
    found = {p.name.removesuffix(".schema.json") for p in folder.iterdir()
             if p.name.endswith(".schema.json")}  # fmt: skip
    assert found == set(SCHEMAS)


def test_every_topic_has_its_schema(lab_settings: Settings) -> None:
    t = topics_for(lab_settings)
    want = {
        t.status: "status", t.pbx: "pbx", t.gap: "gap",
        t.alerts("bygglov"): "alert", t.alerts(None): "alert",
        t.unit_state("bygglov"): "unit_state", t.queue("kontaktcenter"): "queue_state",
        "homeassistant/sensor/pbxwatch_x/queue_a_waiting/config": "ha_sensor",
        "homeassistant/binary_sensor/pbxwatch_x/queue_a_unstaffed/config": "ha_binary_sensor",
    }  # fmt: skip
    for topic, name in want.items():
        assert schema_for(topic, lab_settings) == name, topic
    for stranger in (
        "pbxwatch/othersite/status",
        "pbxwatch/exempelkommun/units/a/b/alerts",
        "homeassistant/light/x/y/config",
        "pbxwatch/exempelkommun/status/other",
    ):
        assert schema_for(stranger, lab_settings) is None, stranger  # fmt: skip


def test_discovery_configs_fit_and_cover_every_queue_and_unit(lab_settings: Settings) -> None:
    configs = discovery_configs(lab_settings)
    d = lab_settings.directory
    assert len(configs) == len(d.units) * len(UNIT_ENTITIES) + len(d.queues) * len(QUEUE_ENTITIES)
    t = topics_for(lab_settings)
    for topic, config in configs.items():
        name = schema_for(topic, lab_settings)
        assert name is not None, topic
        _fits(name, config)
        assert [a["topic"] for a in config["availability"]] == [t.status, t.pbx]
        assert config["state_topic"] in {t.queue(q) for q in d.queues} | {
            t.unit_state(u) for u in d.units
        }
    ids = Counter(c["unique_id"] for c in configs.values())
    assert max(ids.values()) == 1  # Home Assistant keys entities on it
    # the unstaffed binary sensor is a problem; the longest wait a duration in seconds
    unstaffed = configs["homeassistant/binary_sensor/pbxwatch_exempelkommun/"
                        "queue_bygglov_unstaffed/config"]  # fmt: skip
    assert unstaffed["device_class"] == "problem"
    wait = configs["homeassistant/sensor/pbxwatch_exempelkommun/queue_bygglov_longest_wait/config"]
    assert (wait["device_class"], wait["unit_of_measurement"]) == ("duration", "s")


def test_discovery_prefix_is_the_setting(lab_settings: Settings) -> None:
    discovery = DiscoverySettings(enabled=True, prefix="ha")
    s = lab_settings.model_copy(
        update={"mqtt": lab_settings.mqtt.model_copy(update={"discovery": discovery})}
    )
    assert s.mqtt.discovery.prefix == "ha"
    topics = list(discovery_configs(s))
    assert all(t.startswith("ha/") for t in topics)
    assert schema_for(topics[0], s) is not None


def test_recorded_payloads_fit(lab_settings: Settings) -> None:
    """Alerts, queue state and a unit's counters made from a recording."""
    for alert in expected_alerts(lab_settings).values():
        _fits("alert", alert)
    pipeline = Pipeline(build_engine(lab_settings))
    replay_file(RECORDING, pipeline)
    engine, tz = pipeline.engine, ZoneInfo(lab_settings.timezone)
    for name in lab_settings.directory.queues:
        _fits("queue_state", engine.queues.snapshot(name, engine.now, tz))
    counts = Counter({"missing_forwards_today": 3})
    _fits("unit_state", unit_payload(lab_settings, "bygglov", engine.now, counts, {}))


def test_pbx_and_status_payloads(lab_settings: Settings) -> None:
    tz = ZoneInfo(lab_settings.timezone)
    _fits("pbx", PbxStatus("online", 1_796_000_000.0).payload(tz))
    _fits("pbx", PbxStatus("offline", 1_796_000_000.0, "connection refused").payload(tz))
    for bad in (PbxStatus("offline", 1_796_000_000.0), PbxStatus("online", 1.0e9, "why")):
        assert errors("pbx", json.dumps(bad.payload(tz)).encode())
    _fits("status", "online")
    _fits("status", "offline")
    assert errors("status", b"up")
    # times are ISO 8601 with the offset, never an epoch float or a naive time
    body = PbxStatus("online", 1_796_000_000.0).payload(tz)
    assert body["since"].endswith("+01:00")
    for since in (1_796_000_000.0, "2026-11-24T09:00:00"):
        assert errors("pbx", json.dumps({**body, "since": since}).encode())
