"""MQTT: the outbox relay for unit chiefs' alerts, and retained queue state.

Alerts are never published from the read path.  The store writer commits
each alert row in the same transaction as the records that raised it (the
transactional outbox); this relay reads committed, unsent rows in order,
publishes each at QoS 1 and marks it sent only after the broker's PUBACK.
A broker outage, a pbxwatch crash or a restart only delays them: unsent
rows are still there.  A crash between PUBACK and the mark sends that one
alert again, with the same ``alert_id`` (at least once; consumers
de-duplicate on the id).

Topics (``<prefix>`` is ``mqtt.topic_prefix``, default ``pbxwatch``):

- ``<prefix>/<site>/status``: ``online`` / ``offline`` (retained; offline is
  the last will, so it also covers a crash);
- ``<prefix>/<site>/status/gap``: the last gap in the AMI stream (a lost
  connection, a restart), JSON, retained: when pbxwatch was blind, why,
  and what the state read after it reconciled;
- ``<prefix>/<site>/units/<unit>/alerts``: alerts, QoS 1, not retained;
- ``<prefix>/<site>/queues/<queue>/state``: live queue state, retained.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import aiomqtt
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pbxwatch.backoff import backoff_delay
from pbxwatch.core.records import iso
from pbxwatch.settings import MqttSettings, Settings
from pbxwatch.store import models

log = logging.getLogger(__name__)

BATCH = 100
NO_UNIT = "unassigned"


@dataclass(frozen=True)
class Topics:
    prefix: str
    site: str

    @property
    def status(self) -> str:
        return f"{self.prefix}/{self.site}/status"

    def alerts(self, unit: str | None) -> str:
        return f"{self.prefix}/{self.site}/units/{unit or NO_UNIT}/alerts"

    def queue(self, name: str) -> str:
        return f"{self.prefix}/{self.site}/queues/{name}/state"

    @property
    def gap(self) -> str:
        return f"{self.prefix}/{self.site}/status/gap"

    def all_alerts(self, unit: str | None = None) -> str:
        return self.alerts(unit) if unit else f"{self.prefix}/{self.site}/units/+/alerts"


def topics_for(settings: Settings) -> Topics:
    return Topics(settings.mqtt.topic_prefix, settings.site)


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


class AlertRelay:
    """Publishes the outbox and the queue state while the broker is up."""

    def __init__(
        self,
        settings: Settings,
        store: AsyncEngine,
        queue_state: Callable[[], dict[str, dict[str, Any]]] | None = None,
        poll_seconds: float = 0.5,
    ) -> None:
        self.m = settings.mqtt
        self.topics = topics_for(settings)
        self.tz = ZoneInfo(settings.timezone)
        self.store = store
        self.queue_state = queue_state
        self.poll = poll_seconds
        self.identifier = self.m.client_id or f"pbxwatch-{settings.site}"
        self.published = 0
        self.backlog = 0
        self.connected = False
        self.connect_failures = 0  # refused logins, unreachable broker: counted, retried
        self._last_state: dict[str, str] = {}
        self._last_state_at = 0.0
        self._last_gap: str | None = None  # gap_id of the one on the broker
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()  # new alerts committed, or stopping

    def wake(self) -> None:
        """New alerts were committed to the outbox: publish now rather than
        at the next poll."""
        self._wakeup.set()

    def stop(self) -> None:
        """Publish what the outbox holds, say ``offline`` and return from
        ``run`` (a graceful shutdown; the will covers the other kind)."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Connect, publish, reconnect with backoff; until stopped or
        cancelled."""
        attempt = 0
        will = aiomqtt.Will(self.topics.status, b"offline", qos=1, retain=True)
        while not self._stopping.is_set():
            try:
                async with client_for(self.m, self.identifier, will) as client:
                    attempt = 0
                    self.connected = True
                    log.info("MQTT connected to %s:%d", self.m.host, self.m.port)
                    await client.publish(self.topics.status, b"online", qos=1, retain=True)
                    self._last_state.clear()  # the broker may have lost retained state
                    self._last_gap = None
                    await self._serve(client)
                    await client.publish(self.topics.status, b"offline", qos=1, retain=True)
                    log.info("MQTT: outbox sent, status offline, disconnecting")
                    return
            except aiomqtt.MqttError as exc:
                self.connected = False
                self.connect_failures += 1
                delay = backoff_delay(
                    attempt, self.m.reconnect_initial_seconds, self.m.reconnect_max_seconds
                )
                attempt += 1
                await self.refresh_backlog()
                log.warning("MQTT: %s; %d alerts waiting; retrying in %.1f s",
                            exc, self.backlog, delay)  # fmt: skip
                await self._wait_for_retry(delay)

    async def _serve(self, client: aiomqtt.Client) -> None:
        while True:
            self._wakeup.clear()  # before reading: a wake from now on is not lost
            try:
                sent = await self._publish_outbox(client)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("outbox unreadable (database down?): %s", exc)
                sent = 0
            await self._publish_queues(client)
            await self._publish_gap(client)
            if sent < BATCH:
                if self._stopping.is_set():
                    return  # the outbox is empty (or unreadable): done
                await self._idle()

    async def _idle(self) -> None:
        """Until new alerts are committed, shutdown begins or the poll
        interval (the queue state's pace, and a safety net) passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self.poll)

    async def _publish_outbox(self, client: aiomqtt.Client) -> int:
        t = models.AlertRow
        async with self.store.connect() as conn:
            self.backlog = await self._count(conn)
            rows = (
                await conn.execute(
                    select(t.alert_id, t.unit, t.payload)
                    .where(t.sent_at.is_(None), t.withheld.is_(None))
                    .order_by(t.created_at, t.alert_id)
                    .limit(BATCH)
                )
            ).all()
        for row in rows:
            # QoS 1: returns once the broker's PUBACK arrived
            await client.publish(self.topics.alerts(row.unit), row.payload.encode(), qos=1,
                                 timeout=15)  # fmt: skip
            async with self.store.begin() as conn:
                await conn.execute(
                    update(t)
                    .where(t.alert_id == row.alert_id)
                    .values(sent_at=time.time(), attempts=t.attempts + 1)
                )
            self.published += 1
            self.backlog = max(0, self.backlog - 1)
        return len(rows)

    @staticmethod
    async def _count(conn: AsyncConnection) -> int:
        t = models.AlertRow
        unsent = select(func.count()).where(t.sent_at.is_(None), t.withheld.is_(None))
        return int(await conn.scalar(unsent) or 0)

    async def refresh_backlog(self) -> None:
        """Count the outbox while the broker cannot be reached, so the
        backlog gauge (and its alert rule) sees alerts pile up."""
        try:
            async with self.store.connect() as conn:
                self.backlog = await self._count(conn)
        except (SQLAlchemyError, OSError) as exc:
            log.debug("outbox not counted: %s", exc)

    async def _wait_for_retry(self, delay: float) -> None:
        """Back off ``delay`` seconds, counting the outbox as alerts come."""
        loop = asyncio.get_running_loop()
        until = loop.time() + delay
        while not self._stopping.is_set():
            await self.refresh_backlog()
            left = until - loop.time()
            if left <= 0:
                return
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), min(left, self.poll * 4))

    async def _publish_queues(self, client: aiomqtt.Client) -> None:
        if self.queue_state is None:
            return
        now = time.monotonic()
        if now - self._last_state_at < self.m.queue_state_seconds and self._last_state:
            return
        self._last_state_at = now
        for name, state in self.queue_state().items():
            body = json.dumps(state, ensure_ascii=False, sort_keys=True)
            same = {k: v for k, v in state.items() if k != "at"}
            key = json.dumps(same, sort_keys=True)
            if self._last_state.get(name) == key:
                continue
            await client.publish(self.topics.queue(name), body.encode(), qos=1, retain=True,
                                 timeout=15)  # fmt: skip
            self._last_state[name] = key

    async def _publish_gap(self, client: aiomqtt.Client) -> None:
        """The newest committed gap, retained, once each."""
        t = models.AmiGap
        try:
            async with self.store.connect() as conn:
                row = (await conn.execute(select(t).order_by(t.ended_at.desc()).limit(1))).first()
        except (SQLAlchemyError, OSError):
            return  # the outbox reader has said so already
        if row is None or row.gap_id == self._last_gap:
            return
        body = {"type": "ami_gap", "gap_id": row.gap_id, "source": row.source,
                "started_at": iso(row.started_at, self.tz), "ended_at": iso(row.ended_at, self.tz),
                "seconds": round((row.ended_at or row.started_at) - row.started_at, 3),
                "reason": row.reason,
                "reconciled": json.loads(row.reconciled or "{}")}  # fmt: skip
        await client.publish(self.topics.gap, json.dumps(body, ensure_ascii=False).encode(),
                             qos=1, retain=True, timeout=15)  # fmt: skip
        self._last_gap = row.gap_id


async def tail(settings: Settings, unit: str | None, as_json: bool, queues: bool,
               out: Callable[[str], None] = print) -> None:  # fmt: skip
    """``pbxwatch alerts tail``: print alerts (and queue state) as they
    come, until interrupted; a broker that goes away is waited for (capped
    backoff, one line when it goes and one when it is back)."""
    topics = topics_for(settings)
    ident = f"pbxwatch-tail-{int(time.time() * 1000) % 10**9}"
    m, attempt, lost = settings.mqtt, 0, False
    while True:
        try:
            async with client_for(m, ident) as client:
                await client.subscribe(topics.all_alerts(unit), qos=1)
                await client.subscribe(topics.gap, qos=1)
                if queues:
                    await client.subscribe(topics.queue("+"), qos=1)
                if lost:
                    log.warning("MQTT: connected to %s:%d again", m.host, m.port)
                attempt, lost = 0, False
                async for message in client.messages:
                    _print(message, as_json, out)
        except aiomqtt.MqttError as exc:
            delay = backoff_delay(attempt, m.reconnect_initial_seconds, m.reconnect_max_seconds)
            attempt += 1
            if not lost:
                log.warning("MQTT: %s; reconnecting", exc)
                lost = True
            await asyncio.sleep(delay)


def _print(message: aiomqtt.Message, as_json: bool, out: Callable[[str], None]) -> None:
    text = message.payload.decode() if isinstance(message.payload, bytes) else ""
    if as_json:
        out(text)
        return
    with contextlib.suppress(ValueError):
        out(_pretty(str(message.topic), json.loads(text)))


def _pretty(topic: str, body: dict[str, Any]) -> str:
    if body.get("type") == "ami_gap":
        return (f"{str(body.get('ended_at', ''))[11:16]} ?? AMI gap {body.get('started_at')} "
                f"to {body.get('ended_at')} ({body.get('seconds')} s): {body.get('reason')}; "
                "figures for that time may be incomplete")  # fmt: skip
    if "alert_id" in body:
        when = str(body.get("created_at", ""))[11:16]
        mark = (
            "OK "
            if body.get("state") == "resolved"
            else {"warning": "!! ", "critical": "!!!"}.get(str(body.get("severity")), "   ")
        )
        return (f"{when} {mark} [{body.get('unit_name') or body.get('unit')}] "
                f"{body.get('text', {}).get('sv')}  ({body.get('alert_id')})")  # fmt: skip
    m = body.get("members", {})
    flag = "  UNSTAFFED" if body.get("unstaffed") else ""
    return (f"queue {body.get('queue')}: {body.get('waiting')} waiting "
            f"(longest {body.get('longest_wait_seconds')} s), {m.get('available')} available, "
            f"{m.get('in_call')} in call, {m.get('paused')} paused{flag}")  # fmt: skip
