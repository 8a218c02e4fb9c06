"""The JSON Schemas of every MQTT payload (``pbxwatch/mqtt/schemas/``,
shipped in the package) and which topic each is for.

A consumer can check what it receives against the same files the tests
check every published message against.  ``status`` is plain text
(``online``/``offline``, as Home Assistant's availability expects): its
schema is a ``string`` one, and the instance is the payload's text, not a
JSON document.  Validating needs ``jsonschema`` (the ``test`` extra);
finding and loading the schemas does not.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from pbxwatch.mqtt.topics import Topics
from pbxwatch.settings import Settings

SCHEMAS = ("status", "pbx", "gap", "alert", "queue_state", "unit_state", "ha_sensor",
           "ha_binary_sensor")  # fmt: skip


@cache
def load(name: str) -> dict[str, Any]:
    """The schema ``name`` (one of :data:`SCHEMAS`)."""
    if name not in SCHEMAS:
        raise KeyError(f"no MQTT schema {name!r}")
    text = resources.files("pbxwatch.mqtt").joinpath("schemas", f"{name}.schema.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    return loaded


def schema_for(topic: str, settings: Settings) -> str | None:
    """The schema of what pbxwatch publishes on ``topic``; None for a
    topic that is not pbxwatch's."""
    t = Topics(settings.mqtt.topic_prefix, settings.site)
    fixed = {t.status: "status", t.pbx: "pbx", t.gap: "gap"}
    if topic in fixed:
        return fixed[topic]
    other_pbx = topic.removeprefix(t.pbx + "/")
    if other_pbx != topic and other_pbx and "/" not in other_pbx:
        return "pbx"  # status/pbx/<id>: a PBX other than main
    parts = topic.split("/")
    base = t.base.split("/")
    if parts[: len(base)] == base and len(parts) == len(base) + 3:
        kind, _, leaf = parts[len(base) :]
        return {("units", "alerts"): "alert", ("units", "state"): "unit_state",
                ("queues", "state"): "queue_state"}.get((kind, leaf))  # fmt: skip
    prefix = settings.mqtt.discovery.prefix.split("/")
    if parts[: len(prefix)] == prefix and len(parts) == len(prefix) + 4 and parts[-1] == "config":
        return {"sensor": "ha_sensor", "binary_sensor": "ha_binary_sensor"}.get(parts[len(prefix)])
    return None


def instance(name: str, payload: bytes) -> Any:
    """What schema ``name`` is checked against: the text for a string
    schema, else the payload parsed as JSON (ValueError if it is not)."""
    text = payload.decode("utf-8")
    return text if load(name).get("type") == "string" else json.loads(text)


def errors(name: str, payload: bytes) -> list[str]:
    """Why ``payload`` does not fit schema ``name`` (empty when it does)."""
    from jsonschema import Draft202012Validator

    try:
        doc = instance(name, payload)
    except ValueError as exc:
        return [f"not JSON: {exc}"]
    validator = Draft202012Validator(load(name))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
            for e in validator.iter_errors(doc)]  # fmt: skip
