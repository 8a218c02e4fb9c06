"""The MQTT topic tree and the broker connection, in one place so the
relay, ``alerts tail``, discovery and the schema index agree on it."""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass

import aiomqtt

from pbxwatch.settings import DEFAULT_PBX, MqttSettings, Settings
from pbxwatch.stamp import PbxStamp

#: the alerts of a record without a configured unit
NO_UNIT = "unassigned"


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}"

    @property
    def status(self) -> str:
        """pbxwatch's own availability (the last will)."""
        return f"{self.base}/status"

    @property
    def pbx(self) -> str:
        """Whether pbxwatch can see the PBX (the AMI session after its state
        read): the one PBX's, or ``main``'s of many."""
        return f"{self.base}/status/pbx"

    def pbx_status(self, pbx: str = DEFAULT_PBX) -> str:
        """Whether pbxwatch can see PBX ``pbx``: :attr:`pbx` for ``main``,
        ``status/pbx/<id>`` for any other (as its ids are ``<id>:...``)."""
        return self.pbx if pbx == DEFAULT_PBX else f"{self.pbx}/{pbx}"

    @property
    def gap(self) -> str:
        return f"{self.base}/status/gap"

    def alerts(self, unit: str | None) -> str:
        return f"{self.base}/units/{unit or NO_UNIT}/alerts"

    def unit_state(self, unit: str) -> str:
        return f"{self.base}/units/{unit}/state"

    def queue(self, name: str, pbx: str = DEFAULT_PBX) -> str:
        """A queue's live state; a queue of a PBX other than ``main`` is
        ``<id>:<name>`` (two PBXs may have queues of one name)."""
        return f"{self.base}/queues/{PbxStamp(pbx).id(name)}/state"

    def all_alerts(self, unit: str | None = None) -> str:
        return self.alerts(unit) if unit else f"{self.base}/units/+/alerts"


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.mqtt.topic_prefix, settings.site)


_NOT_ID = re.compile(r"[^A-Za-z0-9_-]")


def ha_id(*parts: str) -> str:
    """A Home Assistant node or object id: only ``[A-Za-z0-9_-]`` is allowed."""
    return _NOT_ID.sub("_", "_".join(parts))


def client_for(
    m: MqttSettings, identifier: str, will: aiomqtt.Will | None = None
) -> aiomqtt.Client:
    tls: aiomqtt.TLSParameters | None = None
    if m.tls:
        tls = aiomqtt.TLSParameters(
            ca_certs=str(m.tls_ca_file) if m.tls_ca_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    return aiomqtt.Client(
        hostname=m.host,
        port=m.port,
        username=m.username,
        password=m.password(),
        identifier=identifier,
        keepalive=m.keepalive_seconds,
        will=will,
        tls_params=tls,
        clean_session=True,
        timeout=10,
    )
