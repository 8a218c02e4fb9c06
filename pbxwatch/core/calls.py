"""Calls from channels: the state machine at the heart of pbxwatch.

A call is every channel that shares one ``Linkedid``.  Channels are created
by ``Newchannel`` (or by the first event naming an unknown channel, when the
call began before pbxwatch was listening), rings are ``DialBegin`` ->
``DialEnd`` towards a person's device (``Local`` hops and trunks are not
people), and the call is finished a short grace period after its last
channel hung up, because ``Cdr`` and queue events may trail the ``Hangup``.

The module is deliberately tolerant: events may be duplicated, reordered,
truncated or name channels never seen.  Nothing here raises on bad input;
odd events are counted in ``stats``.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from sys import intern
from typing import Literal

from pbxwatch.core.directory import (
    Directory,
    Target,
    device_of_channel,
    mailbox_key,
    resource_of_device,
)
from pbxwatch.core.diversion import DiversionBook, Presence
from pbxwatch.core.events import AmiEvent, parse_int
from pbxwatch.core.numbers import is_anonymous, normalise
from pbxwatch.core.records import CallRecord, Direction, Outcome, RingRecord, RingResult, rings_for

#: Hangup causes with which the network or PBX, not the caller, ended a call.
_FAILURE_CAUSES = frozenset({1, 2, 3, 20, 21, 22, 27, 28, 29, 31, 34, 38, 41, 42, 44, 58, 88})
_BUSY_CAUSE = 17
_ANSWERED_ELSEWHERE = 26
_UNAVAILABLE = frozenset({"CHANUNAVAIL", "CONGESTION", "INVALIDARGS", "DONTCALL", "TORTURE"})

#: Events that may introduce a channel we have not seen created.
_NO_CREATE = frozenset({"Hangup", "HangupRequest", "SoftHangupRequest", "Cdr", "MessageWaiting"})


@dataclass(frozen=True, slots=True)
class CallRules:
    ring_period: float = 6.0
    short_abandon: float = 5.0
    finalize_grace: float = 2.0
    idle_timeout: float = 4 * 3600.0
    max_duration: float = 12 * 3600.0
    finished_memory: int = 20_000


@dataclass(slots=True)
class Channel:
    uniqueid: str
    linkedid: str
    name: str
    created_at: float
    context: str = ""
    exten: str = ""
    caller_num: str = ""
    up_at: float | None = None
    hangup_at: float | None = None
    hangup_cause: int | None = None
    hangup_requested_at: float | None = None


@dataclass(slots=True)
class Ring:
    dest_uniqueid: str
    device: str
    extension: str | None
    started_at: float
    queue: str | None
    ended_at: float | None = None
    status: str | None = None
    cause: int | None = None
    forward: str | None = None
    #: the ring was still on when pbxwatch went blind and had gone when it
    #: could see again: how it ended was not seen
    ended_unseen: bool = False


@dataclass(slots=True)
class Call:
    linkedid: str
    started_at: float
    observed_from_start: bool
    last_activity: float
    origin: Channel | None = None
    origin_context: str = ""
    origin_exten: str = ""
    origin_caller: str = ""
    channels: dict[str, Channel] = field(default_factory=dict)
    ended_at: float | None = None
    rings: dict[str, Ring] = field(default_factory=dict)  # by destination uniqueid
    external_legs: dict[str, Ring] = field(default_factory=dict)
    target: Target | None = None
    presence_diverted: bool | None = None
    presence_reason: str | None = None
    target_presence: Presence | None = None
    voicemail_mailbox: str | None = None
    voicemail_options: str = ""
    voicemail_main: bool = False
    mwi_mailboxes: dict[str, float] = field(default_factory=dict)  # mailbox -> first MWI
    queues: list[str] = field(default_factory=list)
    queue_attempts: list[str] = field(default_factory=list)
    in_queue: str | None = None
    queue_abandoned: str | None = None
    transferred_to: str | None = None
    across_gap: bool = False  # events of this call may have been missed
    ended_unseen: bool = False  # it ended while pbxwatch was blind
    dial_timeout: float | None = None  # of the last Dial() the origin ran, seconds

    @property
    def open_channels(self) -> set[str]:
        """The channels that have not hung up.  Worked out when asked (after
        a gap, on a hangup), not kept: a set a call cost ~700 bytes."""
        return {uid for uid, chan in self.channels.items() if chan.hangup_at is None}


class CallTracker:
    """Groups channels into calls and turns finished calls into records."""

    def __init__(self, directory: Directory, rules: CallRules, presence: DiversionBook) -> None:
        self.directory = directory
        self.rules = rules
        self.presence = presence
        self.calls: dict[str, Call] = {}
        self.channels: dict[str, Channel] = {}
        self.stats: Counter[str] = Counter()
        self._ending: dict[str, float] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._last_sweep = 0.0
        self._dids = {
            normalise(k, directory.country_code) or k: v for k, v in directory.dids.items()
        }
        self._handlers = {
            "Newstate": self._on_newstate,
            "Hangup": self._on_hangup,
            "HangupRequest": self._on_hangup_request,
            "SoftHangupRequest": self._on_hangup_request,
            "DialBegin": self._on_dial_begin,
            "DialEnd": self._on_dial_end,
            "AgentRingNoAnswer": self._on_agent_ring_no_answer,
            "Newexten": self._on_newexten,
            "Cdr": self._on_cdr,
            "MessageWaiting": self._on_message_waiting,
            "QueueCallerJoin": self._on_queue_join,
            "QueueCallerLeave": self._on_queue_leave,
            "QueueCallerAbandon": self._on_queue_abandon,
            "BlindTransfer": self._on_blind_transfer,
            "AttendedTransfer": self._on_attended_transfer,
        }

    # ------------------------------------------------------------------ input

    def handle(self, ev: AmiEvent, now: float) -> None:
        """Apply one live event at event time ``now``."""
        fields = ev.fields
        if "Linkedid" in fields and "Uniqueid" in fields and self._track_channel(ev, now) is None:
            return
        handler = self._handlers.get(ev.name)
        if handler is not None:
            handler(ev, now)

    def of_unseen_call(self, ev: AmiEvent) -> bool:
        """Whether ``ev`` is of a channel and a call never seen begin: not a
        known call's, not the first channel of a new one.  Right after a
        login such an event is of a call that began while pbxwatch was
        blind; only the channel list (:meth:`reconcile`) can say what it is."""
        fields = ev.fields
        uid, lid = fields.get("Uniqueid", ""), fields.get("Linkedid", "")
        if not uid or not lid or uid in self.channels:
            return False
        if lid in self.calls or lid in self._finished:
            return False
        return not (ev.name == "Newchannel" and uid == lid)

    def sweep(self, now: float) -> list[CallRecord]:
        """Finish calls whose grace period passed and expire abandoned state."""
        out: list[CallRecord] = []
        if self._ending:
            grace = self.rules.finalize_grace
            for linkedid, ended in list(self._ending.items()):
                if ended + grace > now:
                    continue
                del self._ending[linkedid]
                out.append(self._finish(linkedid, complete=True))
        if now - self._last_sweep >= 60.0:
            self._last_sweep = now
            out.extend(self._expire(now))
        return out

    def finish_ended(self) -> list[CallRecord]:
        """Finish the calls every channel of which has hung up, grace or not."""
        ended, self._ending = list(self._ending), {}
        return [self._finish(lid, complete=True) for lid in ended]

    def shift(self, delta: float) -> None:
        """Move every time of what is in progress by ``delta`` (the PBX clock
        stepped): durations stay measured on one timebase."""
        for call in self.calls.values():
            call.started_at += delta
            call.last_activity += delta
            if call.ended_at is not None:
                call.ended_at += delta
            for ring in (*call.rings.values(), *call.external_legs.values()):
                ring.started_at += delta
                if ring.ended_at is not None:
                    ring.ended_at += delta
            for mailbox in call.mwi_mailboxes:
                call.mwi_mailboxes[mailbox] += delta
        chans = {id(c): c for call in self.calls.values() for c in call.channels.values()}
        chans.update((id(c), c) for c in self.channels.values())
        for chan in chans.values():
            chan.created_at += delta
            for name in ("up_at", "hangup_at", "hangup_requested_at"):
                t = getattr(chan, name)
                if t is not None:
                    setattr(chan, name, t + delta)
        for linkedid in self._ending:
            self._ending[linkedid] += delta
        self._last_sweep += delta

    def mark_gap(self) -> None:
        """The stream stopped: every call in progress may miss events (not
        the ones that had ended and only waited for trailing events)."""
        for lid, call in self.calls.items():
            if lid not in self._ending:
                call.across_gap = True

    def reconcile(
        self, items: Sequence[Mapping[str, str]], now: float, listed: float | None = None
    ) -> tuple[list[str], dict[str, int]]:
        """After a gap, with the channels ``CoreShowChannels`` listed.

        * A call none of whose channels is listed ended unseen: it is marked
          so (rings still on when pbxwatch went blind ended unseen too) and
          its Linkedid returned, for the caller to finish once it has
          looked for a message it left (:meth:`finish`).
        * A call still up continues as the same call: channels that are gone
          are closed, listed ones it did not know are added, and what its
          first channel now runs (voicemail, a queue) is taken.
        * Channels of a call never seen become a call built from them,
          marked ``across_gap`` and not observed from the start.

        ``listed`` is the PBX time the list describes (each channel began
        its ``Duration`` before it); ``now`` when not known.  Returns the
        Linkedids that ended unseen and counts for the gap row."""
        listed = now if listed is None else listed
        by_call: dict[str, list[Mapping[str, str]]] = {}
        for item in items:
            uid, lid = item.get("Uniqueid", ""), item.get("Linkedid", "")
            if uid and lid:
                by_call.setdefault(lid, []).append(item)
        up_uids = {item["Uniqueid"] for chans in by_call.values() for item in chans}
        ended: list[str] = []
        still = 0
        for lid, call in self.calls.items():
            if lid in self._ending or not call.across_gap:
                continue  # ending, or seen begin since the login: the list may predate it
            if lid not in by_call and not (call.open_channels & up_uids):
                call.ended_unseen = True
                for ring in (*call.rings.values(), *call.external_legs.values()):
                    if ring.status is None and ring.ended_at is None:
                        ring.ended_unseen = True
                ended.append(lid)
                continue
            still += 1
            self._continue(call, by_call.get(lid, []), up_uids, now, listed)
        known = set(self.calls) | set(self._finished)
        begun = [lid for lid in by_call if lid not in known]
        for lid in begun:
            self._begun_unseen(lid, by_call[lid], now, listed)
        return ended, {
            "calls_still_up": still,
            "calls_ended_unseen": len(ended),
            "calls_begun_unseen": len(begun),
        }

    def finish(self, linkedid: str, *, complete: bool) -> CallRecord:
        """Finish one call now (one that ended unseen, after a gap)."""
        self._ending.pop(linkedid, None)
        return self._finish(linkedid, complete=complete)

    def _continue(self, call: Call, items: list[Mapping[str, str]], up_uids: set[str],
                  now: float, listed: float) -> None:  # fmt: skip
        for uid in call.open_channels - up_uids:
            chan = call.channels[uid]
            if chan.hangup_at is None:
                chan.hangup_at = now
        for item in items:
            uid = item["Uniqueid"]
            if uid == call.linkedid:
                self._snapshot_application(call, item)
            if uid not in self.channels:
                self._snapshot_channel(call, item, now, listed)
            elif item.get("ChannelStateDesc") == "Up":
                self._answered_unseen(call, uid, now)
        self._close_unseen_rings(call, up_uids)

    def _answered_unseen(self, call: Call, uid: str, now: float) -> None:
        """A phone that was ringing when pbxwatch went blind is up now: it
        answered, at a time not seen (``now`` is the latest it can be)."""
        chan = self.channels[uid]
        if chan.up_at is None:
            chan.up_at = now
        for legs in (call.rings, call.external_legs):
            ring = legs.get(uid)
            if ring is not None and ring.status is None:
                ring.status, ring.ended_at = "ANSWER", now

    def _close_unseen_rings(self, call: Call, up_uids: set[str]) -> None:
        """Rings on at the cut whose phone channel has gone.  When the call
        has since gone to voicemail and nobody answered, the ring ended the
        way the voicemail options say (``b`` busy, else no answer) at the
        end of the Dial timeout; otherwise how it ended was not seen."""
        answered = any(r.status == "ANSWER" for r in call.rings.values())
        in_voicemail = call.voicemail_mailbox is not None and not answered
        for uid, ring in call.rings.items():
            if uid in up_uids or ring.status is not None or ring.ended_at is not None:
                continue
            timeout = call.dial_timeout
            if in_voicemail and timeout is not None:
                ring.status = "BUSY" if "b" in call.voicemail_options else "NOANSWER"
                ring.ended_at = ring.started_at + timeout
            else:
                ring.ended_unseen = True

    def _begun_unseen(
        self, linkedid: str, items: list[Mapping[str, str]], now: float, listed: float
    ) -> None:
        """A call that began while pbxwatch was blind, from its channels."""
        start = listed - max(_duration(i.get("Duration", "")) for i in items)
        call = Call(linkedid=linkedid, started_at=start, observed_from_start=False,
                    last_activity=now, across_gap=True)  # fmt: skip
        self.calls[linkedid] = call
        self.stats["call_begun_unseen"] += 1
        items = sorted(items, key=lambda i: i["Uniqueid"] != linkedid)  # the first channel first
        for item in items:
            chan = self._snapshot_channel(call, item, now, listed)
            if item["Uniqueid"] == linkedid:
                self._take_origin(call, chan, now)
                if call.target is None and chan.exten:  # inbound, past the DID already
                    call.target = self.directory.internal_numbers.get(chan.exten)
                self._snapshot_application(call, item)

    def _snapshot_channel(
        self, call: Call, item: Mapping[str, str], now: float, listed: float
    ) -> Channel:
        """A channel pbxwatch first learns of from ``CoreShowChannels`` (a
        list describing PBX time ``listed``); a phone's or the trunk's (not
        the call's first) is a ring or a leg, answered if it is up."""
        uid = item["Uniqueid"]
        name = item.get("Channel", "")
        created = min(now, listed - _duration(item.get("Duration", "")))
        up = item.get("ChannelStateDesc") == "Up"
        chan = Channel(uid, call.linkedid, name, created, item.get("Context", ""),
                       item.get("Exten", ""), item.get("CallerIDNum", ""),
                       up_at=now if up else None)  # fmt: skip
        self.channels[uid] = chan
        call.channels[uid] = chan
        call.last_activity = now
        device = device_of_channel(name)
        if uid == call.linkedid or not name or device.lower().startswith("local/"):
            return chan
        status, ended = ("ANSWER", now) if up else (None, None)
        if self.directory.is_trunk(name):
            call.external_legs[uid] = Ring(uid, device, None, created, None, ended, status)
        else:
            ext = self.directory.extension_of_device(device) or resource_of_device(device)
            call.rings[uid] = Ring(uid, device, ext, created, call.in_queue, ended, status)
        return chan

    def _snapshot_application(self, call: Call, item: Mapping[str, str]) -> None:
        app, data = item.get("Application", ""), item.get("ApplicationData", "")
        self._application(call, app, data)
        if app == "Queue" and data:
            self._joined_queue(call, data.split(",")[0])

    def flush(self) -> list[CallRecord]:
        """Finish everything (end of a replay): calls still open are
        emitted as incomplete."""
        out = [self._finish(lid, complete=lid in self._ending) for lid in list(self.calls)]
        self._ending.clear()
        return out

    # ------------------------------------------------------------- channels

    def _track_channel(self, ev: AmiEvent, now: float) -> Channel | None:
        uid = ev.fields["Uniqueid"]
        chan = self.channels.get(uid)
        if chan is None:
            linkedid = ev.fields["Linkedid"]
            if not uid or not linkedid:
                self.stats["event_without_ids"] += 1
                return None
            if linkedid in self._finished:
                self.stats["late_event"] += 1
                return None
            if ev.name in _NO_CREATE:
                self.stats["event_for_unknown_channel"] += 1
                return None
            chan = self._new_channel(ev, uid, linkedid, now)
        call = self.calls.get(chan.linkedid)
        if call is not None:
            call.last_activity = now
        return chan

    def _new_channel(self, ev: AmiEvent, uid: str, linkedid: str, now: float) -> Channel:
        call = self.calls.get(linkedid)
        if uid == linkedid:
            linkedid = uid  # the call's first channel: one string for both ids
        fields = ev.fields
        chan = Channel(
            uniqueid=uid,
            linkedid=linkedid if call is None else call.linkedid,  # one string a call
            name=fields.get("Channel", ""),
            created_at=now,
            # few distinct values (contexts, extensions, "<unknown>"): shared,
            # not one copy per channel (bench/memory.py)
            context=intern(fields.get("Context", "")),
            exten=intern(fields.get("Exten", "")),
            caller_num=intern(fields.get("CallerIDNum", "")),
        )
        self.channels[uid] = chan
        if call is None:
            from_start = ev.name == "Newchannel" and uid == linkedid
            if not from_start:
                self.stats["call_joined_midway"] += 1
            call = Call(
                linkedid=linkedid,
                started_at=now,
                observed_from_start=from_start,
                last_activity=now,
            )
            self.calls[linkedid] = call
        call.channels[uid] = chan
        if call.ended_at is not None:  # a channel appeared after all had hung up
            call.ended_at = None
            self._ending.pop(linkedid, None)
        if uid == linkedid and call.origin is None:
            self._take_origin(call, chan, now)
        return chan

    def _take_origin(self, call: Call, chan: Channel, now: float) -> None:
        """``chan`` is the call's first channel: who called what."""
        call.origin = chan
        call.origin_context = chan.context
        call.origin_exten = chan.exten
        call.origin_caller = chan.caller_num
        self._resolve_target_early(call, now)

    def _on_newstate(self, ev: AmiEvent, now: float) -> None:
        chan = self.channels.get(ev.get("Uniqueid"))
        if chan is not None and ev.get("ChannelStateDesc") == "Up" and chan.up_at is None:
            chan.up_at = now

    def _on_hangup_request(self, ev: AmiEvent, now: float) -> None:
        chan = self.channels.get(ev.get("Uniqueid"))
        if chan is not None and chan.hangup_requested_at is None:
            chan.hangup_requested_at = now

    def _on_hangup(self, ev: AmiEvent, now: float) -> None:
        uid = ev.get("Uniqueid")
        chan = self.channels.get(uid)
        if chan is None:
            return
        if chan.hangup_at is not None:
            self.stats["duplicate_hangup"] += 1
            return
        chan.hangup_at = now
        chan.hangup_cause = parse_int(ev.get("Cause"))
        call = self.calls.get(chan.linkedid)
        if call is None:
            return
        for legs in (call.rings, call.external_legs):
            ring = legs.get(uid)
            if ring is not None:
                ring.cause = chan.hangup_cause
                if ring.ended_at is None:
                    ring.ended_at = now
        if all(c.hangup_at is not None for c in call.channels.values()):
            call.ended_at = now
            self._ending[call.linkedid] = now

    # ---------------------------------------------------------------- rings

    def _on_dial_begin(self, ev: AmiEvent, now: float) -> None:
        call = self.calls.get(ev.get("Linkedid"))
        dest = ev.get("DestChannel")
        dest_uid = ev.get("DestUniqueid")
        if call is None or not dest or not dest_uid:
            return
        if dest_uid in call.rings or dest_uid in call.external_legs:
            self.stats["duplicate_dial_begin"] += 1
            return
        known = self.channels.get(dest_uid)
        if known is not None:
            dest_uid = known.uniqueid  # the channel's own string, not a copy
        device = device_of_channel(dest)
        if device.lower().startswith("local/"):
            return  # a hop inside the PBX, not a device
        device = intern(device)  # a phone's name: one string, however many rings
        if self.directory.is_trunk(dest):
            call.external_legs[dest_uid] = Ring(dest_uid, device, None, now, None)
            return
        ext = self.directory.extension_of_device(device) or intern(resource_of_device(device))
        call.rings[dest_uid] = Ring(dest_uid, device, ext, now, call.in_queue)

    def _on_dial_end(self, ev: AmiEvent, now: float) -> None:
        call = self.calls.get(ev.get("Linkedid"))
        if call is None:
            return
        uid = ev.get("DestUniqueid")
        ring = call.rings.get(uid) or call.external_legs.get(uid)
        if ring is None:
            return
        if ring.status is None:  # CANCEL is sometimes reported again after NOANSWER
            ring.status = intern(ev.get("DialStatus").upper()) or None
            ring.ended_at = now
        forward = ev.get("Forward")
        if forward:
            ring.forward = forward

    def _on_agent_ring_no_answer(self, ev: AmiEvent, now: float) -> None:
        call = self.calls.get(ev.get("Linkedid"))
        ring = call.rings.get(ev.get("DestUniqueid")) if call else None
        if ring is not None and ring.status is None:
            ring.status = "NOANSWER"
            ring.ended_at = now

    # ------------------------------------------------- applications, voicemail

    def _on_newexten(self, ev: AmiEvent, now: float) -> None:
        app = ev.get("Application")
        if app not in ("VoiceMail", "VoiceMailMain", "Queue", "Dial"):
            return
        call = self.calls.get(ev.get("Linkedid"))
        if call is None:
            return
        self._application(call, app, ev.get("AppData"))

    def _on_cdr(self, ev: AmiEvent, now: float) -> None:
        chan = self.channels.get(ev.get("UniqueID"))
        call = self.calls.get(chan.linkedid) if chan else None
        if call is not None:
            self._application(call, ev.get("LastApplication"), ev.get("LastData"))

    def _application(self, call: Call, app: str, data: str) -> None:
        args = data.split(",")
        if app == "Dial":
            timeout = parse_int(args[1]) if len(args) > 1 else None
            call.dial_timeout = float(timeout) if timeout else None
        elif app == "VoiceMail":
            if call.voicemail_mailbox is None and args[0]:
                call.voicemail_mailbox = mailbox_key(args[0])
                call.voicemail_options = args[1] if len(args) > 1 else ""
        elif app == "VoiceMailMain":
            call.voicemail_main = True
        elif app == "Queue" and args[0] and args[0] not in call.queue_attempts:
            call.queue_attempts.append(intern(args[0]))

    def _on_message_waiting(self, ev: AmiEvent, now: float) -> None:
        call = self.calls.get(ev.get("Linkedid"))
        if call is None:
            chan = self.channels.get(ev.get("Uniqueid"))
            call = self.calls.get(chan.linkedid) if chan else None
        if call is not None and ev.get("Mailbox"):
            call.mwi_mailboxes.setdefault(mailbox_key(ev.get("Mailbox")), now)

    # ----------------------------------------------------------------- queues

    def _on_queue_join(self, ev: AmiEvent, now: float) -> None:
        call = self.calls.get(ev.get("Linkedid"))
        queue = ev.get("Queue")
        if call is not None and queue:
            self._joined_queue(call, queue)

    def _joined_queue(self, call: Call, queue: str) -> None:
        queue = intern(queue)
        if not call.queues or call.queues[-1] != queue:
            call.queues.append(queue)
        if queue not in call.queue_attempts:
            call.queue_attempts.append(queue)
        call.in_queue = queue

    def _on_queue_leave(self, ev: AmiEvent, now: float) -> None:
        call = self.calls.get(ev.get("Linkedid"))
        if call is not None and call.in_queue == ev.get("Queue"):
            call.in_queue = None

    def _on_queue_abandon(self, ev: AmiEvent, now: float) -> None:
        call = self.calls.get(ev.get("Linkedid"))
        if call is not None:
            call.queue_abandoned = ev.get("Queue") or call.in_queue

    # -------------------------------------------------------------- transfers

    def _call_of_channel_name(self, name: str, linkedid: str) -> Call | None:
        call = self.calls.get(linkedid)
        if call is not None:
            return call
        for c in self.calls.values():
            if any(ch.name == name for ch in c.channels.values()):
                return c
        return None

    def _on_blind_transfer(self, ev: AmiEvent, now: float) -> None:
        if ev.get("Result", "Success") != "Success":
            return
        call = self._call_of_channel_name(ev.get("TransfereeChannel"), ev.get("TransfereeLinkedid"))
        if call is not None and ev.get("Extension"):
            call.transferred_to = self._name_of_number(ev.get("Extension"))

    def _on_attended_transfer(self, ev: AmiEvent, now: float) -> None:
        if ev.get("Result", "Success") != "Success":
            return
        call = self._call_of_channel_name(ev.get("TransfereeChannel"), ev.get("TransfereeLinkedid"))
        if call is None:
            return
        target_chan = ev.get("TransferTargetChannel")
        ext = None
        if target_chan:
            ext = self.directory.extension_of_device(device_of_channel(target_chan))
        call.transferred_to = ext or self._name_of_number(
            ev.get("SecondTransfererConnectedLineNum")
        )

    def _name_of_number(self, number: str) -> str:
        target = self.directory.internal_numbers.get(number) or self._dids.get(
            normalise(number, self.directory.country_code) or number
        )
        return target.name if target is not None else number

    # ------------------------------------------------------------ finishing

    def _resolve_target_early(self, call: Call, now: float) -> None:
        """Work out the target from the first channel, and note whether that
        person had a diversion set at the moment the call arrived."""
        call.target = self._target_from_origin(call)
        if call.target is not None and call.target.kind == "extension":
            call.presence_diverted = self.presence.is_diverted(call.target.name)
            p = call.target_presence = self.presence.get(call.target.name)
            call.presence_reason = p.describe() if p and call.presence_diverted else None

    def _is_inbound(self, call: Call) -> bool:
        origin = call.origin
        if origin is None:
            return any(self.directory.is_trunk(ch.name) for ch in call.channels.values()) and not (
                call.external_legs
            )
        return self.directory.is_trunk(origin.name) or (
            call.origin_context in self.directory.inbound_contexts
        )

    def _target_from_origin(self, call: Call) -> Target | None:
        exten = call.origin_exten
        if not exten or call.origin is None:
            return None
        if self._is_inbound(call):
            return self._dids.get(normalise(exten, self.directory.country_code) or exten)
        return self.directory.internal_numbers.get(exten)

    def _expire(self, now: float) -> list[CallRecord]:
        rules = self.rules
        stale = [
            lid
            for lid, c in self.calls.items()
            if lid not in self._ending
            and (
                now - c.last_activity > rules.idle_timeout
                or now - c.started_at > rules.max_duration
            )
        ]
        self.stats["calls_expired"] += len(stale)
        return [self._finish(lid, complete=False) for lid in stale]

    def _finish(self, linkedid: str, complete: bool) -> CallRecord:
        call = self.calls.pop(linkedid)
        for uid in call.channels:
            self.channels.pop(uid, None)
        self._finished[linkedid] = None
        while len(self._finished) > self.rules.finished_memory:
            self._finished.popitem(last=False)
        self.stats["calls_finished"] += 1
        return self._record(call, complete and call.observed_from_start)

    def _record(self, call: Call, complete: bool) -> CallRecord:
        d = self.directory
        rules = self.rules
        rings = tuple(
            _ring_record(r, rules.ring_period)
            for r in sorted(call.rings.values(), key=lambda r: r.started_at)
        )
        direction: Direction
        if self._is_inbound(call):
            direction = "inbound"
        elif call.external_legs:
            direction = "outbound"
        else:
            direction = "internal"
        origin = call.origin
        origin_ext = d.extension_of_device(device_of_channel(origin.name)) if origin else None
        if direction == "inbound":
            caller = None if is_anonymous(call.origin_caller) else call.origin_caller.strip()
            caller_e164 = normalise(call.origin_caller, d.country_code)
        else:
            anonymous = is_anonymous(call.origin_caller)
            caller = origin_ext or (None if anonymous else call.origin_caller)
            caller_e164 = None

        target = call.target
        if direction == "outbound":
            number = normalise(call.origin_exten, d.country_code, d.outbound_prefix)
            target = Target("external", number or call.origin_exten)
        elif target is None:
            target = self._fallback_target(call, rings)

        answer = next((r for r in rings if r.result == "answered"), None)
        answered_by = answer.extension if answer else None
        answered_at = answer.ended_at if answer else None
        if direction == "outbound":
            leg = next((r for r in call.external_legs.values() if r.status == "ANSWER"), None)
            answered_by = target.name if leg else None
            answered_at = leg.ended_at if leg else None
        answer_seconds = (
            round(answered_at - call.started_at, 3) if answered_at is not None else None
        )

        mailbox = call.voicemail_mailbox
        message_left = mailbox is not None and mailbox in call.mwi_mailboxes
        outcome = self._outcome(call, direction, answered_at is not None, message_left)
        ended = call.ended_at or call.last_activity
        origin_end = origin.hangup_at if origin and origin.hangup_at else ended

        target_rung = target.kind == "extension" and any(r.extension == target.name for r in rings)
        diverted, reason = False, None
        if target.kind == "extension" and not target_rung:
            forward = next((r.forward for r in call.rings.values() if r.forward), None)
            if call.presence_diverted:
                diverted, reason = True, call.presence_reason
            elif forward:
                diverted, reason = True, f"forward {forward}"
            elif (
                call.presence_diverted is None
                and "b" not in call.voicemail_options
                and (mailbox is not None or self._reached_contact_centre(call))
            ):
                diverted, reason = True, "inferred: not rung, not busy"

        overflow = target.kind in ("extension", "group") and self._reached_contact_centre(call)

        where: Literal["ringing", "queue", "elsewhere"] | None = None
        short = False
        if outcome == "abandoned":
            if call.queue_abandoned or call.in_queue:
                where = "queue"
            elif any(r.result == "cancelled" for r in rings):
                where = "ringing"
            else:
                where = "elsewhere"
            short = (origin_end - call.started_at) < rules.short_abandon

        return CallRecord(
            call_id=call.linkedid,
            started_at=call.started_at,
            ended_at=call.ended_at,
            direction=direction,
            caller=caller,
            caller_e164=caller_e164,
            dialled=call.origin_exten or None,
            target_kind=target.kind,
            target=target.name,
            target_unit=d.unit_of_target(target),
            outcome=outcome,
            answered_by=answered_by,
            answered_at=answered_at,
            answer_seconds=answer_seconds,
            rings_before_answer=(
                rings_for(answer_seconds, rules.ring_period) if answer_seconds is not None else None
            ),
            voicemail_mailbox=mailbox,
            voicemail_left_at=call.mwi_mailboxes.get(mailbox) if mailbox else None,
            diverted=diverted,
            diversion_reason=reason,
            target_presence=call.target_presence,
            overflowed_to_contact_centre=overflow,
            transferred_to=call.transferred_to if answered_at is not None else None,
            abandoned_where=where,
            short_abandon=short,
            queues=tuple(call.queues),
            refused_queues=tuple(q for q in call.queue_attempts if q not in call.queues),
            rings=rings,
            complete=complete and not call.across_gap,
            across_gap=call.across_gap,
        )

    def _reached_contact_centre(self, call: Call) -> bool:
        return any(self.directory.queue_kind(q) == "contact_centre" for q in call.queue_attempts)

    def _fallback_target(self, call: Call, rings: tuple[RingRecord, ...]) -> Target:
        if call.voicemail_main:
            return Target("voicemail", call.origin_exten or "voicemail")
        for q in call.queue_attempts:
            kind = self.directory.queue_kind(q)
            if kind is not None:
                return Target(kind, q)
        if rings and rings[0].extension:
            return Target("extension", rings[0].extension)
        return Target("other", call.origin_exten or "unknown")

    def _outcome(
        self, call: Call, direction: Direction, answered: bool, message_left: bool
    ) -> Outcome:
        if answered:
            return "answered"
        if call.voicemail_main:
            return "completed"  # a phone user calling their mailbox (*97)
        if call.ended_unseen and call.voicemail_mailbox is None:
            return "unknown"  # last seen ringing or queued: how it ended was not seen
        legs = call.external_legs if direction == "outbound" else call.rings
        statuses = {r.status for r in legs.values()}
        cause = call.origin.hangup_cause if call.origin else None
        if direction == "outbound":
            if "BUSY" in statuses or cause == _BUSY_CAUSE:
                return "busy"
            if statuses & {"NOANSWER", "CANCEL"}:
                return "no_answer"
            return "failed"
        if call.voicemail_mailbox is not None:
            return "voicemail" if message_left else "voicemail_no_message"
        if cause == _BUSY_CAUSE:
            return "busy"
        if cause in _FAILURE_CAUSES:
            return "failed"
        if legs and statuses <= (_UNAVAILABLE | {None}) and cause != 16:
            return "failed"
        return "abandoned"


def _duration(text: str) -> float:
    """``CoreShowChannel``'s ``Duration`` (``HH:MM:SS``) in seconds, with
    half a second added: the count is whole seconds, rounded down."""
    parts = text.split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return 0.0
    h, m, sec = (int(p) for p in parts)
    return h * 3600 + m * 60 + sec + 0.5


def _ring_record(r: Ring, ring_period: float) -> RingRecord:
    result: RingResult
    status = r.status
    if r.ended_unseen:
        result = "unknown"
    elif status == "ANSWER":
        result = "answered"
    elif status == "BUSY":
        result = "busy"
    elif status == "NOANSWER":
        result = "no_answer"
    elif status in _UNAVAILABLE:
        result = "unavailable"
    elif r.cause == _ANSWERED_ELSEWHERE:
        result = "answered_elsewhere"
    elif status == "CANCEL" or status is None:
        result = "cancelled"
    else:
        result = "failed"
    end = r.ended_at if r.ended_at is not None else r.started_at
    return RingRecord(
        extension=r.extension,
        device=r.device,
        started_at=r.started_at,
        ended_at=r.ended_at,
        result=result,
        dial_status=status,
        hangup_cause=r.cause,
        queue=r.queue,
        rings=rings_for(end - r.started_at, ring_period),
    )
