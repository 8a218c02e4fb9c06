"""Home Assistant MQTT discovery: the retained config topics that make the
queue sensors and each unit's counters appear in Home Assistant, with no
YAML on its side.

Each unit is one Home Assistant *device* ("pbxwatch Socialtjänst"); its
counters and the sensors of its queues are that device's entities.  Every
entity is available only while both pbxwatch (``status``, the last will)
and its view of the PBX (``status/pbx``) are ``online``
(``availability_mode: all``): a figure pbxwatch cannot see being made is
shown as unavailable rather than as a stale number.

The configs follow HA's documented discovery schema
(``<prefix>/<component>/<node_id>/<object_id>/config``, full key names, not
the abbreviations); this module is pure, the relay publishes what it makes.
Names are Swedish, as the alerts' first text is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pbxwatch import __version__
from pbxwatch.mqtt.topics import Topics, ha_id
from pbxwatch.settings import DEFAULT_PBX, Settings


@dataclass(frozen=True)
class Entity:
    """One sensor of a state topic: which JSON value, named and typed how."""

    key: str
    name: str
    value_template: str
    component: Literal["sensor", "binary_sensor"] = "sensor"
    unit_of_measurement: str | None = None
    device_class: str | None = None
    state_class: str | None = None
    icon: str | None = None


QUEUE_ENTITIES = (
    Entity("waiting", "väntande samtal", "{{ value_json.waiting }}",
           unit_of_measurement="samtal", state_class="measurement", icon="mdi:phone-in-talk"),
    Entity("longest_wait", "längsta väntetid", "{{ value_json.longest_wait_seconds }}",
           unit_of_measurement="s", device_class="duration", state_class="measurement"),
    Entity("members_available", "lediga medlemmar", "{{ value_json.members.available }}",
           state_class="measurement", icon="mdi:account-check"),
    Entity("members_logged_in", "inloggade medlemmar", "{{ value_json.members.logged_in }}",
           state_class="measurement", icon="mdi:account-multiple"),
    Entity("unstaffed", "obemannad", "{{ 'ON' if value_json.unstaffed else 'OFF' }}",
           component="binary_sensor", device_class="problem"),
)  # fmt: skip

UNIT_ENTITIES = (
    Entity("missing_forwards_today", "saknade hänvisningar idag",
           "{{ value_json.missing_forwards_today }}", unit_of_measurement="samtal",
           state_class="total_increasing", icon="mdi:phone-missed"),
    Entity("unanswered_rings_today", "obesvarade signaler idag",
           "{{ value_json.unanswered_rings_today }}", unit_of_measurement="signaler",
           state_class="total_increasing", icon="mdi:phone-alert"),
    Entity("unforwarded_absences_today", "frånvaro utan hänvisning idag",
           "{{ value_json.unforwarded_absences_today }}", state_class="total_increasing",
           icon="mdi:account-off"),
    Entity("callbacks_pending", "återuppringningar att göra",
           "{{ value_json.callbacks_pending }}", unit_of_measurement="återuppringningar",
           state_class="measurement", icon="mdi:phone-return"),
    Entity("callbacks_overdue", "försenade återuppringningar",
           "{{ value_json.callbacks_overdue }}", unit_of_measurement="återuppringningar",
           state_class="measurement", icon="mdi:phone-alert"),
)  # fmt: skip


def discovery_configs(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every config topic and its payload: each unit's counters, each
    queue's sensors (of each PBX that has it) on its unit's device.  A
    queue's sensors are available while its PBX is seen; a unit's, which
    may span PBXs, while the one PBX (or ``main``) is, or with many PBXs
    and no ``main`` while pbxwatch is up."""
    topics = Topics(settings.mqtt.topic_prefix, settings.site)
    node = ha_id("pbxwatch", settings.site)
    views = settings.pbx_views()
    unit_pbx = topics.pbx if any(v.pbx_id == DEFAULT_PBX for v in views) else None
    out: dict[str, dict[str, Any]] = {}
    for unit in sorted(settings.directory.units):
        for e in UNIT_ENTITIES:
            object_id = ha_id("unit", unit, e.key)
            out[_topic(settings, e, node, object_id)] = _config(
                settings, topics, unit, e, object_id, topics.unit_state(unit), e.name, unit_pbx
            )
    for view in views:
        pbx = view.pbx_id
        for name, queue in sorted(view.directory.queues.items()):
            for e in QUEUE_ENTITIES:
                ids = (name,) if pbx == DEFAULT_PBX else (pbx, name)
                object_id = ha_id("queue", *ids, e.key)
                label = name if pbx == DEFAULT_PBX else f"{name} ({pbx})"
                out[_topic(settings, e, node, object_id)] = _config(
                    settings, topics, queue.unit, e, object_id, topics.queue(name, pbx),
                    f"kö {label}: {e.name}", topics.pbx_status(pbx),
                )  # fmt: skip
    return out


def _topic(settings: Settings, e: Entity, node: str, object_id: str) -> str:
    return f"{settings.mqtt.discovery.prefix}/{e.component}/{node}/{object_id}/config"


def _config(
    settings: Settings,
    topics: Topics,
    unit: str,
    e: Entity,
    object_id: str,
    state_topic: str,
    name: str,
    pbx_topic: str | None,
) -> dict[str, Any]:
    availability: list[dict[str, str]] = [
        {"topic": topics.status, "payload_available": "online",
         "payload_not_available": "offline"},
    ]  # fmt: skip
    if pbx_topic is not None:
        availability.append({"topic": pbx_topic, "value_template": "{{ value_json.state }}",
                             "payload_available": "online",
                             "payload_not_available": "offline"})  # fmt: skip
    config: dict[str, Any] = {
        "name": name,
        "unique_id": ha_id("pbxwatch", settings.site, object_id),
        "state_topic": state_topic,
        "value_template": e.value_template,
        "availability": availability,
        "availability_mode": "all",
        "qos": 1,
        "device": _device(settings, unit),
        "origin": {"name": "pbxwatch", "sw_version": __version__},
    }  # fmt: skip
    if e.component == "binary_sensor":
        config |= {"payload_on": "ON", "payload_off": "OFF"}
    optional = {"unit_of_measurement": e.unit_of_measurement, "device_class": e.device_class,
                "state_class": e.state_class, "icon": e.icon}  # fmt: skip
    return config | {k: v for k, v in optional.items() if v is not None}


def _device(settings: Settings, unit: str) -> dict[str, Any]:
    u = settings.directory.units[unit]
    return {
        "identifiers": [ha_id("pbxwatch", settings.site, unit)],
        "name": f"pbxwatch {u.name}",
        "manufacturer": "pbxwatch",
        "model": "telefoni per enhet",
        "sw_version": __version__,
    }
