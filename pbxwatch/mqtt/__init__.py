"""MQTT: the outbox relay for unit chiefs' alerts, retained state, Home
Assistant discovery, ``alerts tail``, and the JSON Schema of every payload.

Topics (``<prefix>`` is ``mqtt.topic_prefix``, default ``pbxwatch``; each
payload's schema is ``pbxwatch/mqtt/schemas/<name>.schema.json``):

- ``<prefix>/<site>/status``: ``online`` / ``offline``, plain text,
  retained; offline is the last will, so it also covers a crash
  (``status``);
- ``<prefix>/<site>/status/pbx``: whether pbxwatch sees the PBX, JSON,
  retained: online after the AMI login's state read, offline when the
  connection is lost and when pbxwatch stops (``pbx``);
- ``<prefix>/<site>/status/gap``: the last gap in the AMI stream, JSON,
  retained (``gap``);
- ``<prefix>/<site>/units/<unit>/alerts``: alerts, QoS 1, not retained
  (``alert``);
- ``<prefix>/<site>/units/<unit>/state``: the unit's counters today and
  its open callbacks, retained (``unit_state``);
- ``<prefix>/<site>/queues/<queue>/state``: live queue state, retained,
  only after the state read (``queue_state``);
- with many PBXs, ``main``'s are the topics above, and any other PBX
  ``<id>`` has ``<prefix>/<site>/status/pbx/<id>`` (``pbx``) and
  ``<prefix>/<site>/queues/<id>:<queue>/state`` (``queue_state``);
- ``<discovery prefix>/{sensor,binary_sensor}/pbxwatch_<site>/<object>/config``:
  Home Assistant discovery, retained, with ``mqtt.discovery.enabled``
  (``ha_sensor``, ``ha_binary_sensor``).
"""

from pbxwatch.mqtt.relay import AlertRelay
from pbxwatch.mqtt.state import LiveView, engine_view
from pbxwatch.mqtt.tail import tail
from pbxwatch.mqtt.topics import NO_UNIT, Topics, client_for, topics_for

__all__ = ["NO_UNIT", "AlertRelay", "LiveView", "Topics", "client_for", "engine_view", "tail",
           "topics_for"]  # fmt: skip
