"""The engine: the one entry point adapters feed.

``process(event)`` applies one AMI event at the PBX's own time and returns
the records that became final (calls, incidents, callback reminders);
``tick(now)`` lets time pass without events (deadlines, grace periods,
expiry, phone hours opening and closing); ``flush()`` ends a replay and
``snapshot()`` gives callbacks and queues as they stand.  The engine
never raises on input: an exception inside a handler is counted and the
event dropped, so one odd frame cannot take the other calls down with it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from pbxwatch.core.absence import AbsenceWatch
from pbxwatch.core.alerts import Alert, AlertMaker
from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.callbacks import (
    CallbackBook,
    CallbackChange,
    CallbackEvent,
    CallbackMemory,
)
from pbxwatch.core.calls import Call, CallRules, CallTracker
from pbxwatch.core.clock import ClockRules, ClockStep, EventClock, Timed
from pbxwatch.core.directory import Directory, mailbox_key
from pbxwatch.core.diversion import DiversionBook, DiversionInterval, Presence
from pbxwatch.core.events import AmiEvent, parse_int, plausible_epoch
from pbxwatch.core.gaps import AmiGap, PbxSnapshot, VoicemailMessage, gap_id
from pbxwatch.core.incidents import Incident, incidents_of_call
from pbxwatch.core.queues import QueueBook
from pbxwatch.core.records import CallRecord

#: Event names pbxwatch understands; everything else is counted as "other".
KNOWN_EVENTS = frozenset(
    {
        "AgentCalled", "AgentComplete", "AgentConnect", "AgentDump", "AgentRingNoAnswer",
        "AttendedTransfer", "BlindTransfer", "BridgeCreate", "BridgeDestroy", "BridgeEnter",
        "BridgeLeave", "BridgeMerge", "Cdr", "Cel", "DBGetResponse", "CoreShowChannel",
        "CoreShowChannelsComplete", "DAHDIChannel", "DTMFBegin", "DTMFEnd",
        "DeviceStateChange", "DeviceStateListComplete", "DialBegin", "DialEnd", "DialState",
        "ExtensionStateListComplete", "ExtensionStatus", "FullyBooted", "Hangup",
        "HangupRequest", "Hold", "LocalBridge", "LocalOptimizationBegin",
        "LocalOptimizationEnd", "MessageWaiting", "MusicOnHoldStart", "MusicOnHoldStop",
        "NewAccountCode", "NewCallerid", "NewConnectedLine", "Newchannel", "Newexten",
        "Newstate", "PeerEntry", "PeerStatus", "PeerlistComplete", "PresenceStateChange",
        "PresenceStateListComplete", "PresenceStatus", "QueueCallerAbandon",
        "QueueCallerJoin", "QueueCallerLeave", "QueueEntry", "QueueMember",
        "QueueMemberAdded", "QueueMemberPause", "QueueMemberPenalty",
        "QueueMemberRemoved", "QueueMemberRinginuse", "QueueMemberStatus", "QueueParams",
        "QueueStatusComplete", "QueueSummary", "QueueSummaryComplete", "Registry",
        "Reload", "Shutdown", "SoftHangupRequest", "Status", "StatusComplete",
        "Unhold", "UserEvent", "VoicemailUserEntry",
        "VoicemailUserEntryComplete", "ContactStatus",
    }
)  # fmt: skip

#: Known events that say nothing pbxwatch follows: counted by name, not
#: applied (and their frames not parsed, :mod:`pbxwatch.ami.codec`).  PJSIP
#: sends RTCPSent/RTCPReceived every few seconds of every answered call,
#: ChallengeSent and SuccessfulAuth (security class) at each authenticated
#: request; VarSet (a third of an IAX2 stream's frames, more on PJSIP: its
#: RTPAUDIOQOS* and BRIDGEPVTCALLID) carries channel variables the core reads
#: from the events that matter instead (DialEnd's status, Hangup's cause).
#: A deployment may also drop them at the source (README).
IGNORED_EVENTS = frozenset(
    {"RTCPSent", "RTCPReceived", "ChallengeSent", "SuccessfulAuth", "VarSet"}
)
#: events held from a login until its state read (:meth:`Engine.awaiting_state`)
#: at most: a PBX that never answers must not make pbxwatch hold a day's events
HOLD_LIMIT = 20_000
#: nor longer than this (PBX seconds since the first held event)
HOLD_SECONDS = 600.0


#: Kinds of bad or odd input, each counted (``bad_input``) and logged once.
BAD_INPUT_KINDS = (
    "oversized_frame",  # these three are counted by the AMI source
    "frame_without_event",
    "truncated_frame",
    "unknown_event",
    "handler_error",
    "event_without_ids",
    "event_for_unknown_channel",
    "late_event",
    "duplicate_hangup",
    "duplicate_dial_begin",
    "event_time_implausible",
)

Record = (
    CallRecord
    | Incident
    | CallbackEvent
    | CallbackChange
    | DiversionInterval
    | Alert
    | AmiGap
    | ClockStep
)
_STATE_EVENTS = frozenset(
    {
        "QueueMember",
        "QueueMemberStatus",
        "PresenceStateChange",
        "PresenceStatus",
        "DeviceStateChange",
        "DBGetResponse",
    }
)


class Engine:
    """Pure and synchronous: no I/O, no clock, no asyncio."""

    def __init__(
        self,
        directory: Directory,
        rules: CallRules | None = None,
        calendar: WorkCalendar | None = None,
        unforwarded_absence_seconds: float = 900.0,
        alert_digest_seconds: float = 1800.0,
        callback_memory: CallbackMemory | None = None,
        pseudonym: Callable[[str], str] | None = None,
        clock: ClockRules | None = None,
    ) -> None:
        self.directory = directory
        self.rules = rules or CallRules()
        self.calendar = calendar or WorkCalendar(ZoneInfo("Europe/Stockholm"))
        self.presence = DiversionBook(directory)
        self.calls = CallTracker(directory, self.rules, self.presence)
        self.callbacks = CallbackBook(directory, self.calendar, callback_memory, pseudonym)
        self.queues = QueueBook(directory, self.calendar, self.rules.short_abandon,
                                max_wait=self.rules.max_duration)  # fmt: skip
        self.absence = AbsenceWatch(
            directory, self.calendar, self.presence, unforwarded_absence_seconds
        )
        self.alerts = AlertMaker(directory, self.calendar.tz, alert_digest_seconds)
        self.clock: EventClock[AmiEvent] = EventClock(clock or ClockRules())
        self.now: float = 0.0
        self.last_event_time: float | None = None  # ``now`` moves on with ticks too
        self.stats: Counter[str] = Counter()
        self.events_by_name: Counter[str] = Counter()
        self._last_tick = 0.0
        self._gap: tuple[float, str] | None = None  # (PBX time it began, why)
        #: from a login to the state read: events of calls never seen begin,
        #: with the time each was applied at (see :meth:`awaiting_state`)
        self._held: list[tuple[AmiEvent, float, bool]] | None = None

    def process(self, ev: AmiEvent, received: float | None = None) -> list[Record]:
        """Apply one event; return what it (or the time it carried) made final.

        ``received`` is the host's clock when the frame arrived (live); the
        clock model (:mod:`pbxwatch.core.clock`) decides the time each event
        is applied at, and in a replay may hold a few events until the ones
        after them confirm a jump in time."""
        if ev.name in IGNORED_EVENTS:
            self.skip(ev.name)
            return []
        at = self.clock.quick(ev.time, received)
        if at is not None:  # the usual case: a plausible time, nothing held
            return self._apply_at(ev, at, ok=True)
        out: list[Record] = []
        for timed in self.clock.offer(ev, ev.time, received):
            out.extend(self._apply(timed))
        return out

    def skip(self, name: str) -> None:
        """An event of ``IGNORED_EVENTS``: counted, nothing else (a caller
        that sees the name first need not build the event at all)."""
        self.stats["events"] += 1
        self.events_by_name[name] += 1

    def _apply(self, timed: Timed[AmiEvent]) -> list[Record]:
        out: list[Record] = []
        if timed.step is not None:
            self._shift(timed.step.delta)
            self.now = self.now if timed.time is None else timed.time
            out.append(timed.step)
        at = self.now if timed.time is None else timed.time
        return out + self._apply_at(timed.item, at, ok=timed.verdict == "ok")

    def _apply_at(self, ev: AmiEvent, at: float, *, ok: bool) -> list[Record]:
        """Apply ``ev`` at ``at``, the time the clock decided.  A live tick
        may have moved ``now`` a little past a frame that arrived late
        (times the speed of a fast simulator): the call keeps the frame's
        time, the books keep time moving forward."""
        out: list[Record] = []
        self.now = max(self.now, at)
        if ok:
            self.last_event_time = at
        if self._held is not None and ev.action_id is None and self.calls.of_unseen_call(ev):
            return self._hold(ev, at, ok=ok)
        self.stats["events"] += 1
        known = ev.name in KNOWN_EVENTS
        self.events_by_name[ev.name if known else "other"] += 1
        try:
            if ev.action_id is not None:
                # A list item answering an action (QueueMember, CoreShowChannel,
                # the PresenceStateChange items of PresenceStateList ...): it
                # describes state, it is not news of a call.
                self.stats["action_response_events"] += 1
                if ev.name in _STATE_EVENTS:
                    self._apply_state(ev, out)
            elif known:  # an event we do not understand must not make up a call
                self._apply_state(ev, out)
                self.calls.handle(ev, at)
                if ev.name == "MessageWaiting" and ev.get("Mailbox"):
                    self.callbacks.on_message_waiting(
                        mailbox_key(ev.get("Mailbox")), parse_int(ev.get("New")), at
                    )
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the rest
            self.stats[f"handler_error:{type(exc).__name__}"] += 1
        out.extend(self._finished(self.calls.sweep(self.now)))
        if self.now - self._last_tick >= 1.0:
            out.extend(self._tick_books())
        return self._with_consequences(out)

    def awaiting_state(self) -> None:
        """A login: the state read follows.  Until it comes (:meth:`reconcile`)
        events of calls never seen begin are held, not guessed from: a call
        that began while pbxwatch was blind would otherwise be made up from
        its first event seen (a hangup, a dial's end) and the channel list
        would find it known.  After the list they are applied to the calls
        it built; those of calls not listed (begun blind, ended before the
        list) are dropped and counted in the gap's record."""
        if self._held is None:
            self._held = []

    def _hold(self, ev: AmiEvent, at: float, *, ok: bool) -> list[Record]:
        assert self._held is not None
        self._held.append((ev, at, ok))
        self.stats["held_until_state_read"] += 1
        return self._stop_holding() if len(self._held) >= HOLD_LIMIT else []

    def _stop_holding(self) -> list[Record]:
        """No state read is coming (too many events held, or too long): the
        held events are applied as if none had been awaited."""
        self.stats["state_read_too_late"] += 1
        return self._release(drop_unseen=False)[0]

    def _release(self, *, drop_unseen: bool) -> tuple[list[Record], int]:
        """Apply the held events.  With ``drop_unseen`` (after a channel
        list), those still of a call never seen are dropped; returns the
        records and how many calls were dropped so."""
        held, self._held = self._held or [], None
        out: list[Record] = []
        dropped: set[str] = set()
        for ev, at, ok in held:
            if drop_unseen and self.calls.of_unseen_call(ev):
                dropped.add(ev.fields["Linkedid"])
                self.stats["event_of_call_ended_unseen"] += 1
                continue
            out.extend(self._apply_at(ev, at, ok=ok))
        return out, len(dropped)

    def tick(self, now: float) -> list[Record]:
        """Let PBX time pass without an event: the caller vouches for ``now``
        (a test, a replay's end), so the clock takes it as seen."""
        self.clock.passed(now)
        return self._tick(now)

    def _tick(self, now: float) -> list[Record]:
        self.now = max(self.now, now)
        out: list[Record] = []
        if self._held and self.now - self._held[0][1] > HOLD_SECONDS:
            out.extend(self._stop_holding())
        out.extend(self._finished(self.calls.sweep(self.now)))
        out.extend(self._tick_books())
        return self._with_consequences(out)

    def tick_live(self, host_now: float) -> list[Record]:
        """A live clock tick at host time ``host_now``: events the clock held
        too long are judged, then PBX time (as estimated) passes."""
        out: list[Record] = []
        for timed in self.clock.expire(host_now):
            out.extend(self._apply(timed))
        now = self.clock.estimate(host_now)
        if now is not None and self.clock.ready:
            out.extend(self._tick(now))
        return out

    def settle(self) -> list[Record]:
        """Apply the events the clock holds back (a replay judging a jump in
        time), judged on the evidence so far: for a caller that must look
        at the state now."""
        out: list[Record] = []
        for timed in self.clock.drain():
            out.extend(self._apply(timed))
        return out

    def stop(self) -> list[Record]:
        """Live shutdown: judge what the clock still holds, and report the
        calls that have ended (their grace only waits for stragglers)."""
        out = self.settle()
        out.extend(self._release(drop_unseen=False)[0])  # no state read came: as before
        out.extend(self._finished(self.calls.finish_ended()))
        return self._with_consequences(out)

    def flush(self) -> list[Record]:
        """End of a replay: apply what the clock still holds, then finish
        every open call."""
        out = self.settle()
        out.extend(self._release(drop_unseen=False)[0])
        out.extend(self._finished(self.calls.flush()))
        out.extend(self._tick_books())
        return self._with_consequences(out)

    def _with_consequences(self, out: list[Record]) -> list[Record]:
        """Every way in (event, tick, flush) ends the same: the callbacks that
        changed, then the alerts the records raise."""
        self._returns()
        if self.callbacks.changed:
            out.extend(self.callbacks.drain_changes())
        if out or self.alerts.windows_open:  # most events change nothing: skip the work
            out.extend(self.alerts.on_records(out, self.now))
        return out

    def _returns(self) -> None:
        """An owner with deferred messages whose presence is known and no
        longer away has come back (when that presence began): the messages
        start their deadline then.  Judged on the presence itself, not only
        on an absence seen to end: after a restart or a gap the state read
        says where they are."""
        for ext in self.callbacks.deferred_owners:
            presence = self.presence.get(ext)
            if presence is not None and self.callbacks.away_reason(presence) is None:
                self.callbacks.on_return(ext, presence.since)

    def connection_lost(self, now: float | None, reason: str) -> None:
        """The event stream stopped at PBX time ``now`` (None: at the last
        event, since nothing after it was seen).  Calls in progress are
        marked: they may miss events."""
        if now is None:
            now = self.now if self.last_event_time is None else self.last_event_time
        if self._gap is None:
            self._gap = (now, reason)
            self.alerts.blind_since = now
        self.calls.mark_gap()

    def reconcile(self, snap: PbxSnapshot, now: float | None, source: str) -> list[Record]:
        """Take the PBX's state after a login (see :mod:`pbxwatch.core.gaps`).
        After a gap (a lost connection, a restart) this reconciles the calls
        and closes the gap with an ``AmiGap``."""
        self._advance(now)  # the PBX's clock, as plausible as an event's
        out: list[Record] = []
        counts: Counter[str] = Counter()
        blind_from = self._gap[0] if self._gap is not None else None
        listed = snap.channels_time if plausible_epoch(snap.channels_time) else None
        # at every login (each one after the first follows a gap): the calls
        # across it are reconciled, calls never seen are built
        ended, found = self.calls.reconcile(snap.channels, self.now, listed)
        counts.update(found)
        released, dropped = self._release(drop_unseen=True)
        out.extend(released)
        if dropped:
            counts["calls_ended_before_list"] = dropped
        known = {cb.message_id for cb in self.callbacks.callbacks.values() if cb.message_id}
        for lid in ended:
            if self._message_left_unseen(self.calls.calls[lid], snap, known):
                counts["messages_left_unseen"] += 1
        finished = [self.calls.finish(lid, complete=False) for lid in ended]
        out.extend(self._finished(finished, found_at_resync=True))
        for mailbox, messages in sorted(snap.messages.items()):
            presence = self._owner_presence(mailbox)
            counts.update(self.callbacks.reconcile_messages(
                mailbox, messages, self.now, blind_from, presence))  # fmt: skip
        for mailbox, new in sorted(snap.mailboxes.items()):
            if mailbox not in snap.messages:  # only a count: the older way
                counts["messages_left_unseen"] += self.callbacks.reconcile_mailbox(
                    mailbox, new, self.now
                )
        reconciled = {**{f"items_{k}": v for k, v in snap.items.items()}, **counts}
        if self._gap is not None:
            started, reason = self._gap
            self._gap = None
            self.alerts.blind_since = None
            # it ended when the PBX was heard again (its Ping answer), not when
            # the state read was done: events came in between
            pinged = snap.pbx_time if plausible_epoch(snap.pbx_time) else None
            back = pinged if pinged is not None and started <= pinged <= self.now else self.now
            if self.now >= started:  # else a PBX on a new, earlier timeline: no gap to tell
                out.append(AmiGap(gap_id(source, started), source, started, back, reason,
                                  reconciled))  # fmt: skip
        return self._with_consequences(out)

    def mailboxes_to_check(self) -> list[str]:
        """Mailboxes whose new-message count fell since the last call: a live
        run reads them (``VoicemailBoxSummary``) and hands the answer to
        :meth:`mailbox_read`, so the message heard is known by its id."""
        out = list(self.callbacks.to_check)
        self.callbacks.to_check.clear()
        return out

    def mailbox_read(self, mailbox: str, messages: tuple[VoicemailMessage, ...]) -> list[Record]:
        """A mailbox's messages as the PBX lists them now (no gap: messages
        nobody saw left are counted, not made into callbacks)."""
        presence = self._owner_presence(mailbox)
        self.callbacks.reconcile_messages(mailbox, messages, self.now, None, presence)
        return self._with_consequences([])

    def _owner_presence(self, mailbox: str) -> Presence | None:
        """The mailbox owner's presence now (for an exemption)."""
        owner = self.directory.person_of_mailbox(mailbox)
        return self.presence.get(owner.extension) if owner else None

    def _message_left_unseen(self, call: Call, snap: PbxSnapshot, known: set[str]) -> bool:
        """A call last seen in voicemail that ended unseen: the message it
        left, if the mailbox lists one (not ``known`` to a callback yet) from
        its caller, begun during it."""
        mailbox = call.voicemail_mailbox
        if mailbox is None or mailbox in call.mwi_mailboxes:
            return False
        number = self.callbacks.number_of
        for msg in snap.messages.get(mailbox, ()):
            if (msg.origtime is not None and msg.left_at is not None
                    and msg.origtime >= call.started_at - 1.0
                    and msg.message_id not in known
                    and number(call.origin_caller) == number(msg.caller)):  # fmt: skip
                call.mwi_mailboxes[mailbox] = msg.left_at
                return True
        return False

    def restore_incident(self, inc: Incident) -> bool:
        """Put back an open, lasting incident loaded from the store after a
        restart; False when it is not one the engine carries on."""
        if inc.state != "open":
            return False
        if inc.kind == "group_unstaffed" and inc.queue is not None:
            self.queues.restore_unstaffed(inc.queue, inc.started_at)
            return True
        if inc.kind == "unforwarded_absence" and inc.extension is not None:
            self.absence.restore(inc.extension, inc.started_at, inc.incident_id)
            return True
        return False

    def snapshot(self, tz: ZoneInfo, now: float | None = None) -> list[dict[str, Any]]:
        """Callbacks (state evaluated at ``now``), diversions still on and
        queues, as JSON objects."""
        at = self.now if now is None else now
        cbs = sorted(self.callbacks.callbacks.values(), key=lambda c: c.left_at)
        return (
            [cb.to_json(tz, at) for cb in cbs]
            + [d.to_json(tz) for d in self.presence.open_intervals()]
            + [self.queues.snapshot(name, at, tz) for name in sorted(self.queues.queues)]
        )

    @property
    def bad_input(self) -> dict[str, int]:
        """Input the engine skipped or distrusted, by kind (the decoder's
        ``oversized_frame`` is the adapter's to add)."""
        stats, calls = self.stats, self.calls.stats
        return {
            "unknown_event": self.events_by_name["other"],
            "handler_error": sum(n for k, n in stats.items() if k.startswith("handler_error")),
            **{k: calls[k] for k in ("event_without_ids", "event_for_unknown_channel",
                                     "late_event", "duplicate_hangup", "duplicate_dial_begin")},
            "event_time_implausible": self.clock.implausible,
        }  # fmt: skip

    @property
    def tracked_calls(self) -> int:
        return len(self.calls.calls)

    @property
    def tracked_channels(self) -> int:
        return len(self.calls.channels)

    # ------------------------------------------------------------ internals

    def _advance(self, t: float | None) -> bool:
        """Move PBX time on to ``t`` (a Ping answer's clock); False when it
        is missing, not a plausible epoch, or not later."""
        if not plausible_epoch(t) or t is None or t <= self.now:
            return False
        self.now = t
        return True

    def _shift(self, delta: float) -> None:
        """The PBX clock stepped by ``delta``: what is in progress moves onto
        the new timebase, so its durations are measured on one clock."""
        self.calls.shift(delta)
        self.queues.shift(delta)
        self._last_tick += delta

    def _apply_state(self, ev: AmiEvent, out: list[Record]) -> None:
        out.extend(self.presence.apply(ev, self.now))
        if ev.name.startswith(("Queue", "Agent")):
            out.extend(self.queues.apply(ev, self.now))
        elif ev.name in ("DeviceStateChange", "ContactStatus"):
            out.extend(self.absence.apply(ev, self.now))

    def _finished(self, calls: list[CallRecord], *, found_at_resync: bool = False) -> list[Record]:
        """What finished calls make; ``found_at_resync``: calls a state read
        finished, whose messages were found by it."""
        out: list[Record] = []
        for rec in calls:
            out.append(rec)
            out.extend(incidents_of_call(rec, self.directory))
            out.extend(self.queues.on_call(rec, self.now))
            self.callbacks.on_call(rec, rec.target_presence, found=found_at_resync)
        return out

    def _tick_books(self) -> list[Record]:
        self._last_tick = self.now
        out: list[Record] = []
        out.extend(self.callbacks.tick(self.now))
        out.extend(self.queues.tick(self.now))
        out.extend(self.absence.tick(self.now))
        return out
