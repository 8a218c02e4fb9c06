"""The relay: everything ``run`` publishes, from one MQTT session.

Alerts are never published from the read path.  The store writer commits
each alert row in the same transaction as the records that raised it (the
transactional outbox); this relay reads committed, unsent rows in order,
publishes each at QoS 1 and marks it sent only after the broker's PUBACK.
A broker outage, a pbxwatch crash or a restart only delays them: unsent
rows are still there.  A crash between PUBACK and the mark sends that one
alert again, with the same ``alert_id`` (at least once; consumers
de-duplicate on the id).

Between outbox batches it keeps the retained state topics current: the
PBX's availability, each queue (only once the state read after a login has
given the queues, so never the empty state of an engine that has not heard
from the PBX yet), each unit's counters, the last AMI gap and, when
enabled, Home Assistant's discovery configs.  The topic tree is in
``pbxwatch/mqtt/__init__.py``.

In a hot standby (``claims``, a ``pbxwatch.cluster.Cluster``) each
instance publishes only what it owns: the alerts and queues of the PBXs
whose lease it holds, claimed in a transaction that checks the lease
epoch, and the site's topics (units, gap, discovery, ``status``) while it
does the site's jobs.  Its own availability is ``status/instance/<name>``
(its last will); ``status`` says the site, published by whoever does its
jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import aiomqtt
from sqlalchemy import func, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pbxwatch.backoff import backoff_delay
from pbxwatch.core.records import iso
from pbxwatch.mqtt.discovery import discovery_configs
from pbxwatch.mqtt.state import LiveView, PbxStatus, day_counts, day_start, unit_payload
from pbxwatch.mqtt.topics import client_for, topics_for
from pbxwatch.settings import DEFAULT_PBX, Settings
from pbxwatch.store import models

log = logging.getLogger(__name__)

BATCH = 100

#: the PBX as pbxwatch first says it: not seen yet
NOT_YET = "not connected yet: waiting for the AMI login and its state read"
STOPPED = "pbxwatch stopped"


class Claims(Protocol):
    """What an instance of a cluster may publish (``pbxwatch.cluster``)."""

    name: str
    holder: str

    def owns(self, pbx: str) -> bool: ...

    @property
    def site_jobs(self) -> bool: ...

    async def confirmed(self, conn: AsyncConnection) -> set[str]: ...


@dataclass
class _Watched:
    """One PBX as the relay publishes it: its live view and availability,
    and the availability the broker has."""

    live: LiveView | None
    status: PbxStatus
    sent: PbxStatus | None = None


def _encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode()


def _same(body: dict[str, Any]) -> str:
    """A state's identity without its time: republished only when it changed."""
    return json.dumps({k: v for k, v in body.items() if k != "at"}, sort_keys=True)


class AlertRelay:
    """Publishes the outbox and the retained state while the broker is up."""

    def __init__(
        self,
        settings: Settings,
        store: AsyncEngine,
        live: LiveView | None = None,
        poll_seconds: float = 0.5,
        pbx: str = DEFAULT_PBX,
        claims: Claims | None = None,
    ) -> None:
        self.settings = settings
        self.m = settings.mqtt
        self.topics = topics_for(settings)
        self.tz = ZoneInfo(settings.timezone)
        self.store = store
        self.poll = poll_seconds
        self.claims = claims
        self.identifier = self.m.client_id or f"pbxwatch-{settings.site}"
        #: this process's availability (its will): the site's, or in a
        #: cluster the instance's own (the site's ``status`` is then said by
        #: whoever does the site's jobs)
        self.status_topic = self.topics.status
        if claims is not None:  # one client id per process, or the broker drops the other
            self.identifier = f"{self.identifier}-{claims.holder}"
            self.status_topic = f"{self.topics.status}/instance/{claims.name}"
        self._site_online = False  # said "online" on ``status`` as the site's job holder
        self.published = 0
        self.backlog = 0
        self.connected = False
        self.connect_failures = 0  # refused logins, unreachable broker: counted, retried
        #: every PBX followed, the first (``live``'s) first
        self.pbxs: dict[str, _Watched] = {}
        self.add_pbx(pbx, live)
        self._last_state: dict[str, str] = {}  # topic -> state without its time
        self._last_state_at = 0.0
        self._last_gap: str | None = None  # gap_id of the one on the broker
        self._discovered = False
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()  # new alerts committed, the PBX came or went, stopping

    def wake(self) -> None:
        """New alerts were committed to the outbox: publish now rather than
        at the next poll."""
        self._wakeup.set()

    def add_pbx(self, pbx: str, live: LiveView | None) -> None:
        """Another PBX to publish: its availability, its queues, its callbacks
        in the units' state."""
        self.pbxs[pbx] = _Watched(live, PbxStatus("offline", time.time(), NOT_YET))

    def pbx_online(self, pbx: str = DEFAULT_PBX) -> None:
        """The state read after an AMI login is done: the queues are known."""
        self._watched(pbx).status = PbxStatus("online", time.time())
        self._last_state_at = 0.0  # the queue state at once, not at the next refresh
        self._wakeup.set()

    def pbx_offline(self, reason: str, pbx: str = DEFAULT_PBX) -> None:
        """The AMI connection was lost (not at shutdown: ``stop`` says that)."""
        status = PbxStatus("offline", time.time(), reason or "AMI connection lost")
        self._watched(pbx).status = status
        self._wakeup.set()

    def _watched(self, pbx: str) -> _Watched:
        if pbx not in self.pbxs:
            raise KeyError(f"MQTT relay: no PBX {pbx!r}")
        return self.pbxs[pbx]

    def stop(self) -> None:
        """Publish what the outbox holds, say the PBX and pbxwatch are
        ``offline`` and return from ``run`` (a graceful shutdown; the will
        covers the other kind)."""
        self._stopping.set()
        self._wakeup.set()

    async def run(self) -> None:
        """Connect, publish, reconnect with backoff; until stopped or
        cancelled."""
        attempt = 0
        will = aiomqtt.Will(self.status_topic, b"offline", qos=1, retain=True)
        while not self._stopping.is_set():
            try:
                async with client_for(self.m, self.identifier, will) as client:
                    attempt = 0
                    self.connected = True
                    log.info("MQTT connected to %s:%d", self.m.host, self.m.port)
                    await client.publish(self.status_topic, b"online", qos=1, retain=True)
                    self._forget_sent()  # the broker may have lost retained state
                    await self._serve(client)
                    for watched in self.pbxs.values():
                        watched.status = PbxStatus("offline", time.time(), STOPPED)
                    await self._publish_pbx(client)
                    await client.publish(self.status_topic, b"offline", qos=1, retain=True)
                    if self._site_online:  # a standby says "online" again as it takes over
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

    def _forget_sent(self) -> None:
        self._last_state.clear()
        self._last_gap = None
        for watched in self.pbxs.values():
            watched.sent = None
        self._discovered = False
        self._last_state_at = 0.0
        self._site_online = False

    def _mine(self, pbx: str) -> bool:
        return self.claims is None or self.claims.owns(pbx)

    @property
    def _site(self) -> bool:
        """Whether this relay publishes the site's topics."""
        return self.claims is None or self.claims.site_jobs

    async def _serve(self, client: aiomqtt.Client) -> None:
        while True:
            self._wakeup.clear()  # before reading: a wake from now on is not lost
            try:
                sent = await self._publish_outbox(client)
            except (SQLAlchemyError, OSError) as exc:
                log.warning("outbox unreadable (database down?): %s", exc)
                sent = 0
            if self.claims is not None and self._site != self._site_online:
                self._site_online = self._site
                if self._site_online:  # a cluster: the site's availability from its job holder
                    await client.publish(self.topics.status, b"online", qos=1, retain=True)
            await self._publish_discovery(client)
            await self._publish_pbx(client)
            await self._publish_state(client)
            await self._publish_gap(client)
            if sent < BATCH:
                if self._stopping.is_set():
                    return  # the outbox is empty (or unreadable): done
                await self._idle()

    async def _idle(self) -> None:
        """Until new alerts are committed, the PBX comes or goes, shutdown
        begins or the poll interval (the state's pace, and a safety net)
        passes."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), self.poll)

    async def _publish_outbox(self, client: aiomqtt.Client) -> int:
        t = models.AlertRow
        async with self.store.begin() as conn:
            query = select(t.alert_id, t.unit, t.payload).where(t.sent_at.is_(None),
                                                                 t.withheld.is_(None))  # fmt: skip
            if self.claims is not None:  # the claim: PBXs still ours at their epoch
                query = query.where(t.pbx.in_(sorted(await self.claims.confirmed(conn))))
            self.backlog = await self._count(conn)
            rows = (await conn.execute(query.order_by(t.created_at, t.alert_id)
                                       .limit(BATCH))).all()  # fmt: skip
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

    async def _count(self, conn: AsyncConnection) -> int:
        """The unsent alerts this relay is to publish (in a cluster: of the
        PBXs it owns; a standby's backlog is the owner's)."""
        t = models.AlertRow
        unsent = select(func.count()).where(t.sent_at.is_(None), t.withheld.is_(None))
        if self.claims is not None:
            unsent = unsent.where(t.pbx.in_([p for p in self.pbxs if self.claims.owns(p)]))
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

    async def _retain(self, client: aiomqtt.Client, topic: str, body: dict[str, Any]) -> None:
        await client.publish(topic, _encode(body), qos=1, retain=True, timeout=15)

    async def _publish_discovery(self, client: aiomqtt.Client) -> None:
        """Home Assistant's configs, once per session (they are retained)."""
        if self._discovered or not self.m.discovery.enabled or not self._site:
            return
        for topic, config in discovery_configs(self.settings).items():
            await self._retain(client, topic, config)
        self._discovered = True

    async def _publish_pbx(self, client: aiomqtt.Client) -> None:
        for pbx, watched in self.pbxs.items():
            status = watched.status
            if status != watched.sent and self._mine(pbx):
                await self._retain(client, self.topics.pbx_status(pbx), status.payload(self.tz))
                watched.sent = status

    async def _publish_state(self, client: aiomqtt.Client) -> None:
        """Queues and units, each when it changed, at most every
        ``queue_state_seconds``.  A PBX's queues only while it is online:
        before the state read the engine knows no members or callers, and
        during an outage the retained state stays what the PBX last said."""
        mono = time.monotonic()
        if mono - self._last_state_at < self.m.queue_state_seconds:
            return
        times = {pbx: w.live.now() for pbx, w in self.pbxs.items() if w.live is not None}
        known = [t for t in times.values() if t is not None]
        if not known:
            return  # no PBX time yet: nothing dated can be said
        self._last_state_at = mono
        bodies: dict[str, dict[str, Any]] = {}
        for pbx, watched in self.pbxs.items():
            at = times.get(pbx)
            if (watched.live is None or at is None or watched.status.state != "online"
                    or not self._mine(pbx)):  # fmt: skip
                continue
            for name, state in watched.live.queues(at).items():
                bodies[self.topics.queue(name, pbx)] = state
        if self._site:
            bodies |= await self._unit_states(known[0], times)
        for topic, body in bodies.items():
            key = _same(body)
            if self._last_state.get(topic) != key:
                await self._retain(client, topic, body)
                self._last_state[topic] = key

    async def _unit_states(
        self, now: float, times: dict[str, float | None]
    ) -> dict[str, dict[str, Any]]:
        """Each unit's counts today (from the store: every PBX's) and its
        open callbacks, added up over the PBXs."""
        try:
            async with self.store.connect() as conn:
                counts = await day_counts(conn, day_start(now, self.tz), now + 1.0)
        except (SQLAlchemyError, OSError):
            return {}  # the outbox reader has said so already
        callbacks: dict[str, Counter[str]] = {}
        for pbx, watched in self.pbxs.items():
            at = times.get(pbx)
            if watched.live is None or at is None:
                continue
            for unit, n in watched.live.callbacks(at).items():
                callbacks.setdefault(unit, Counter()).update(n)
        return {
            self.topics.unit_state(unit): unit_payload(
                self.settings, unit, now, counts.get(unit, Counter()),
                dict(callbacks.get(unit, {})),
            )
            for unit in sorted(self.settings.directory.units)
        }  # fmt: skip

    async def _publish_gap(self, client: aiomqtt.Client) -> None:
        """The newest committed gap, retained, once each."""
        t = models.AmiGap
        if not self._site:
            return
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
        await self._retain(client, self.topics.gap, body)
        self._last_gap = row.gap_id
