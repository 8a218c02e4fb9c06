"""Wiring shared by every way of feeding the core (file, TCP, live)."""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TextIO
from zoneinfo import ZoneInfo

from pbxwatch.core.alerts import Alert
from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.callbacks import CallbackChange, CallbackMemory
from pbxwatch.core.calls import CallRules
from pbxwatch.core.clock import ClockRules
from pbxwatch.core.engine import IGNORED_EVENTS, Engine, Record
from pbxwatch.core.events import AmiEvent
from pbxwatch.core.gaps import PbxSnapshot, VoicemailMessage
from pbxwatch.privacy import pseudonym_of
from pbxwatch.settings import DEFAULT_PBX, Settings
from pbxwatch.stamp import PbxStamp

log = logging.getLogger(__name__)

RecordSink = Callable[[Record], None]


def rules_from(settings: Settings) -> CallRules:
    c = settings.calls
    return CallRules(
        ring_period=c.ring_period_seconds,
        short_abandon=c.short_abandon_seconds,
        finalize_grace=c.finalize_grace_seconds,
        idle_timeout=c.idle_timeout_seconds,
        max_duration=c.max_duration_seconds,
    )


def clock_rules_from(settings: Settings, pbx_speed: float = 1.0) -> ClockRules:
    c = settings.clock
    return ClockRules(
        tolerance=c.tolerance_seconds,
        max_delay=c.max_delay_seconds,
        confirm=c.confirm_events,
        speed=pbx_speed,
    )


def build_engine(
    settings: Settings, *, keep_everything: bool = False, pbx_speed: float = 1.0
) -> Engine:
    """The core as configured.  ``keep_everything`` (a replay, whose closing
    snapshot lists every callback) turns off forgetting finished callbacks;
    ``pbx_speed`` is the PBX seconds per host second a live clock expects."""
    calendar = WorkCalendar(ZoneInfo(settings.timezone), frozenset(settings.calendar.closed_days))
    det = settings.detection
    memory = None if keep_everything else CallbackMemory(
        det.forget_closed_callbacks_days * 86400.0, det.forget_open_callbacks_days * 86400.0
    )  # fmt: skip
    return Engine(
        settings.directory_model(),
        rules_from(settings),
        calendar,
        det.unforwarded_absence_minutes * 60.0,
        det.missing_forward_digest_minutes * 60.0,
        memory,
        pseudonym_of(settings),
        clock_rules_from(settings, pbx_speed),
    )


#: records handed to the sinks per turn of the event loop in live mode
SINK_SLICE = 256


@dataclass
class Pipeline:
    """Engine plus the sinks its records go to.

    In live mode (``schedule`` set, e.g. ``loop.call_soon``) the sinks get at
    most ``slice_records`` records at a time and the rest in later turns of
    the event loop, in order: one event can make hundreds of records (every
    callback whose deadline passed at closing time) and rows, payloads and
    metrics for all of them at once would hold the loop for tens of
    milliseconds.  While records wait, ``behind`` is true and the AMI reader
    takes no new frame, so nothing overtakes them.  A replay (no
    ``schedule``) hands every record over at once."""

    engine: Engine
    sinks: list[RecordSink] = field(default_factory=list)
    schedule: Callable[[Callable[[], None]], object] | None = None
    slice_records: int = SINK_SLICE
    #: the PBX the records are of: their ids for the sinks (none: ``main``'s)
    stamp: PbxStamp | None = None
    #: records a sink raised on, live mode (the first ten are logged)
    sink_errors: int = field(default=0, init=False)
    _pending: deque[Record] = field(default_factory=deque, init=False, repr=False)
    _scheduled: bool = field(default=False, init=False, repr=False)

    @property
    def behind(self) -> bool:
        """Records are waiting for the sinks."""
        return bool(self._pending)

    def feed_fields(self, fields: Mapping[str, str], received: float | None = None) -> None:
        """One frame; ``received`` is the host's clock when it arrived (live)."""
        name = fields.get("Event")
        if name in IGNORED_EVENTS:  # PJSIP's RTCP reports: counted, not parsed
            self.engine.skip(name)
            return
        ev = AmiEvent.from_fields(fields)
        if ev is None:
            return  # a Response frame: not an event
        self._emit(self.engine.process(ev, received))

    def tick(self, now: float) -> None:
        self._emit(self.engine.tick(now))

    def tick_live(self, host_now: float) -> None:
        self._emit(self.engine.tick_live(host_now))

    def connection_lost(self, now: float | None, reason: str) -> None:
        self.engine.connection_lost(now, reason)

    def awaiting_state(self) -> None:
        self.engine.awaiting_state()

    def reconcile(self, snap: PbxSnapshot, now: float | None, source: str) -> None:
        self._emit(self.engine.reconcile(snap, now, source))

    def mailbox_read(self, mailbox: str, messages: tuple[VoicemailMessage, ...]) -> None:
        self._emit(self.engine.mailbox_read(mailbox, messages))

    def settle(self) -> None:
        """Apply what the clock holds back (see Engine.settle)."""
        self._emit(self.engine.settle())
        self.catch_up_all()

    def stop(self) -> None:
        """Live shutdown: what the core can still finish (see Engine.stop)."""
        self._emit(self.engine.stop())

    def finish(self) -> None:
        self._emit(self.engine.flush())
        self.catch_up_all()

    def catch_up(self) -> None:
        """Hand the next slice of waiting records to the sinks; schedule the
        rest for the next turn."""
        self._scheduled = False
        pending = self._pending
        for _ in range(min(self.slice_records, len(pending))):
            self._to_sinks(pending.popleft())
        if pending and self.schedule is not None:
            self._scheduled = True
            self.schedule(self.catch_up)

    def catch_up_all(self) -> None:
        """Every waiting record to the sinks now (shutdown, end of a replay)."""
        while self._pending:
            self._to_sinks(self._pending.popleft())

    def _emit(self, records: Sequence[Record]) -> None:
        if self.schedule is None or (not self._pending and len(records) <= self.slice_records):
            for rec in records:  # the usual case: a handful, nothing waiting
                self._to_sinks(rec)
            return
        self._pending.extend(records)
        if not self._scheduled:
            self.catch_up()

    def _to_sinks(self, rec: Record) -> None:
        if self.stamp is not None:
            rec = self.stamp.record(rec)
        if self.schedule is None:  # a replay: a failing sink ends it
            for sink in self.sinks:
                sink(rec)
            return
        for sink in self.sinks:
            try:
                sink(rec)
            except Exception:
                # live: one sink's bug must not stop the others, the reader
                # (which waits while records do) or the records after this one
                self.sink_errors += 1
                if self.sink_errors <= 10:
                    log.exception("sink %r failed on a %s record", sink, type(rec).__name__)


class JsonLinesSink:
    """``pbxwatch replay --json``: one JSON object per record."""

    def __init__(self, out: TextIO, tz: ZoneInfo, pbx: str = DEFAULT_PBX) -> None:
        self._out = out
        self._tz = tz
        self.stamp = PbxStamp(pbx)

    def __call__(self, rec: Record) -> None:
        if isinstance(rec, CallbackChange | Alert):
            return  # callbacks' final state comes with the snapshot; alerts go to MQTT
        self.write(rec.to_json(self._tz))

    def write(self, obj: Mapping[str, object]) -> None:
        """A record's JSON (its ids already its PBX's), with its ``pbx``."""
        self._out.write(json.dumps({**obj, "pbx": self.stamp.pbx}, ensure_ascii=False) + "\n")

    def write_core(self, obj: Mapping[str, object]) -> None:
        """JSON the core made (a replay's closing snapshot): ids made its PBX's."""
        self.write(self.stamp.json(obj))
