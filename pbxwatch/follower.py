"""One PBX followed by ``pbxwatch run``: its AMI session, its core, and the
tasks around them on the loop.  :mod:`pbxwatch.app` runs one per
configured PBX and gives them the services they share."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch import astdb
from pbxwatch.ami.client import AmiAuthError, AmiSource
from pbxwatch.core.directory import mailbox_key
from pbxwatch.core.gaps import PbxSnapshot
from pbxwatch.metrics import Health
from pbxwatch.mqtt import AlertRelay
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.resync import recheck_mailboxes_forever, resync_forever
from pbxwatch.settings import ConfigError, Settings
from pbxwatch.stamp import PbxStamp
from pbxwatch.store.checkpoints import Checkpointer, restore_checkpoint
from pbxwatch.store.db import last_event_time
from pbxwatch.store.port import WriterPort
from pbxwatch.store.session import restore
from pbxwatch.store.writer import StoreWriter

log = logging.getLogger(__name__)

#: seconds a follower waits, after the last call it saw only in part, before
#: it may be given its PBX (``Follower.ready_to_own``)
READY_MARGIN = 3.0


class FirstSeen:
    """Logs each kind of a counter once, when it first goes above zero, so
    a stream full of one odd thing is one line in the log, not millions; the
    metric keeps the count."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.seen: set[str] = set()

    def check(self, counts: Mapping[str, int]) -> None:
        for kind, n in counts.items():
            if n and kind not in self.seen:
                self.seen.add(kind)
                log.warning("%s: %s (%d so far; logged once, counted in pbxwatch_bad_input)",
                            self.what, kind, n)  # fmt: skip


class Follower:
    """One PBX: its AMI session and core, and what runs around them on the
    loop (the clock ticker, the state read after every login, the mailbox
    recheck, the AstDB poll and the checkpointer; ``run``'s ticker calls its
    :meth:`tick`).  Its records go to the shared sinks stamped with its id."""

    def __init__(
        self,
        settings: Settings,
        *,
        health: Health,
        pbx_speed: float,
        loop: asyncio.AbstractEventLoop,
        where: str = "ami",
    ) -> None:
        self.settings = settings
        self.where = where  # its AMI settings in the configuration, for errors
        self.pbx_id = settings.pbx_id
        self.health = health
        self.pbx_speed = pbx_speed
        self.secret = settings.ami.secret()
        self.source_name = settings.source_name()
        self.stamp = PbxStamp(self.pbx_id)
        engine = build_engine(settings, pbx_speed=pbx_speed)
        self.pipeline = Pipeline(engine, schedule=loop.call_soon, stamp=self.stamp)
        self.clock = engine.clock
        self.frame_probe: Callable[[Mapping[str, str]], None] | None = None
        self.relay: AlertRelay | None = None  # with MQTT on: says whether it sees this PBX
        self.connected = asyncio.Event()
        self.resync = asyncio.Event()
        self.bad_input = FirstSeen(f"bad AMI input ({self.pbx_id})")
        self.source = AmiSource(settings.ami, self.secret, self.on_frame, on_state=self.on_state,
                                busy=lambda: self.pipeline.behind)  # fmt: skip
        self.port: WriterPort | None = None
        self.saver: Checkpointer | None = None
        self._state_read = False  # this session's state read has been reconciled
        self._partial_at = time.monotonic()  # when a call last was seen only in part
        self._read_at = self._partial_at  # when this session's state was read

    async def recover(self, store: AsyncEngine, writer: StoreWriter, *, owner: bool = True,
                      keep_seconds: float = 60.0) -> None:  # fmt: skip
        """Where the last run of this PBX stopped: its checkpoint, its open
        callbacks and incidents, and the gap since its last event.  A
        standby (not the ``owner`` of this PBX's lease) records no gap: the
        owner is watching."""
        pipeline, name = self.pipeline, self.source_name
        engine = pipeline.engine
        self.port = WriterPort(writer, self.pbx_id, name, owner=owner,
                               now=lambda: engine.last_event_time,
                               keep_seconds=keep_seconds)  # fmt: skip
        self.saver = Checkpointer(pipeline.engine, self.port, name)
        loaded = await restore_checkpoint(store, pipeline.engine, name, self.stamp)
        await restore(store, pipeline.engine, self.stamp)  # restored state comes and goes
        # blind since the last event the last run saw: its position (noted each
        # second) or its checkpoint, whichever is later
        seen = [await last_event_time(store, name), loaded.last_event_time if loaded else None]
        blind_since = max((t for t in seen if t is not None), default=None)
        if blind_since is not None and owner:  # a restart is a gap: since the last run's last event
            pipeline.connection_lost(blind_since, "pbxwatch was not running (restart)")
        pipeline.awaiting_state()  # the first login's state read builds the calls in flight

    @property
    def state_read(self) -> bool:
        """Whether this session's state read after login has been reconciled."""
        return self._state_read

    def ready_to_own(self, max_wait: float) -> bool:
        """Whether this follower has seen each call in progress from its
        start: logged in, its state read done, and every call it had to
        build from that read's channel list (or joined mid-way) finished
        ``READY_MARGIN`` seconds ago.  Only then may a cluster hand it this
        PBX without a call coming out worse than the owner would have
        written it (``pbxwatch.cluster``).  The margin lets the owner, which
        reads the same events at about the same moment, finish that call's
        record too before it gives the PBX away: a record it makes after
        that is the taker's to write.

        ``max_wait`` seconds after the state read it is ready whatever is
        still up: a call of hours, or one stuck until its
        ``calls.max_duration_seconds``, must not keep the PBXs from being
        shared.  Such a call is written as the taker saw it (incomplete);
        one the owner had finished stays as the owner wrote it.

        It notes when it last saw a call in part, so it must be asked every
        round (``pbxwatch.app`` asks every follower, not until the first
        that says no)."""
        now = time.monotonic()
        if not (self.health.ami_up and self._state_read):
            self._partial_at = self._read_at = now
            return False
        if now - self._read_at >= max_wait:
            return True
        if not all(c.observed_from_start and not c.across_gap
                   for c in self.pipeline.engine.calls.calls.values()):  # fmt: skip
            self._partial_at = now
            return False
        return now - self._partial_at >= READY_MARGIN

    def on_frame(self, fields: Mapping[str, str]) -> None:
        received = self.source.received_at
        self.pipeline.feed_fields(fields, received)
        if self.frame_probe is not None:
            self.frame_probe(fields)
        if "Timestamp" in fields:
            health = self.health
            now = self.pipeline.engine.now
            health.last_event_time = now
            host = time.time()
            # a faster-than-real-time PBX has no host time to compare with:
            # then the lag is only pbxwatch's own delay since the frame came
            health.event_lag_seconds = host - now if self.pbx_speed == 1.0 else host - received

    def on_state(self, up: bool) -> None:
        source = self.source
        self.health.ami_up = up
        self._state_read = False
        if up:
            self.connected.set()
            self.resync.set()
        elif not source.stopping:
            # nothing seen since the last event
            self.pipeline.connection_lost(None, source.loss_reason)
            self.pipeline.awaiting_state()  # set before the next login's first event can come
            if self.relay is not None:
                self.relay.pbx_offline(source.loss_reason, self.pbx_id)

    def on_snapshot(self, snap: PbxSnapshot) -> None:
        host = time.time()
        self.clock.observe(snap.pbx_time, host)  # the PBX's own clock, as its Ping answer said
        self.pipeline.reconcile(snap, self.clock.estimate(host), self.source_name)
        self._state_read = True
        self._read_at = time.monotonic()
        if self.relay is not None:  # the queues are known now: MQTT may say the PBX is online
            self.relay.pbx_online(self.pbx_id)

    def tasks(self) -> list[asyncio.Task[None]]:
        """Its ticker, state reads, checkpointer and pollers, started."""
        assert self.saver is not None
        settings, pipeline, source = self.settings, self.pipeline, self.source
        known = pipeline.engine.directory.people.values()
        mailboxes = sorted({mailbox_key(p.mailbox) for p in known if p.mailbox})
        recheck = recheck_mailboxes_forever(source, pipeline.engine.mailboxes_to_check,
                                            pipeline.mailbox_read)  # fmt: skip
        resync = resync_forever(source, pipeline.feed_fields, mailboxes, self.on_snapshot,
                                self.resync, self.pbx_speed or 1.0)  # fmt: skip
        tasks = [
            asyncio.create_task(recheck),
            asyncio.create_task(self.saver.every(settings.storage.checkpoint_seconds)),
            asyncio.create_task(resync),
        ]
        div = settings.diversion
        families = [f for f in (div.astdb_forward_family, div.astdb_dnd_family) if f]
        if families:
            every = div.astdb_poll_minutes * 60.0
            people = sorted(settings.directory.people)
            poll = astdb.poll_forever(source, families, people, pipeline.feed_fields, every,
                                      self.connected)  # fmt: skip
            tasks.append(asyncio.create_task(poll))
        return tasks

    def tick(self, host: float) -> float:
        """Once a second: the core's clock, the stream position; its PBX time."""
        assert self.port is not None
        pipeline = self.pipeline
        pipeline.tick_live(host)
        if pipeline.engine.last_event_time is not None:  # where a restart is blind from
            self.port.note_position(self.source.frames, pipeline.engine.last_event_time)
        self.bad_input.check({**pipeline.engine.bad_input, **self.source.frame_faults})
        return self.clock.estimate(host) or host

    def observe(self, host: float) -> None:
        """Once a second: its adapters' state into its ``health``."""
        h, source, saver = self.health, self.source, self.saver
        assert saver is not None
        h.ami_reconnects = source.reconnects
        h.frame_faults = source.frame_faults
        h.sink_errors = self.pipeline.sink_errors
        h.checkpoints_saved = saver.saved
        h.checkpoint_bytes = saver.last_bytes
        h.checkpoint_seconds = saver.last_loop_seconds
        h.clock_offset_seconds = self.clock.pbx_minus_host(host) or 0.0

    async def run(self) -> None:
        try:
            await self.source.run()
        except AmiAuthError as exc:
            raise ConfigError(f"{self.where}: {exc} (check ami.username and the secret)") from exc

    def stop_source(self) -> None:
        self.source.stop()

    def finish(self) -> None:
        """After its session ended: what the core can still finish, to the
        sinks, and its state checkpointed for the next start."""
        assert self.port is not None
        assert self.saver is not None
        pipeline = self.pipeline
        pipeline.stop()  # held events judged, ended calls reported
        if pipeline.engine.last_event_time is not None:
            self.port.note_position(self.source.frames, pipeline.engine.last_event_time)
        pipeline.catch_up_all()  # records still on their way to the sinks
        self.saver.save_now()  # the calls still up, for the next start
