"""The engine: the one entry point adapters feed.

``process(event)`` applies one AMI event at the PBX's own time and returns
the records that became final; ``tick(now)`` lets time pass without events
(deadlines, grace periods, expiry); ``flush()`` ends a replay.  The engine
never raises on input: an exception inside a handler is counted and the
event dropped, so one odd frame cannot take the other calls down with it.
"""

from __future__ import annotations

from collections import Counter

from pbxwatch.core.calls import CallRules, CallTracker
from pbxwatch.core.directory import Directory
from pbxwatch.core.events import AmiEvent
from pbxwatch.core.presence import PresenceBook
from pbxwatch.core.records import CallRecord

#: Event names pbxwatch understands; everything else is counted as "other".
KNOWN_EVENTS = frozenset(
    {
        "AgentCalled", "AgentComplete", "AgentConnect", "AgentDump", "AgentRingNoAnswer",
        "AttendedTransfer", "BlindTransfer", "BridgeCreate", "BridgeDestroy", "BridgeEnter",
        "BridgeLeave", "BridgeMerge", "Cdr", "Cel", "CoreShowChannel",
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
        "SuccessfulAuth", "Unhold", "UserEvent", "VarSet", "VoicemailUserEntry",
        "VoicemailUserEntryComplete",
    }
)  # fmt: skip


MAX_TIME_JUMP = 86_400.0


class Engine:
    """Pure and synchronous: no I/O, no clock, no asyncio."""

    def __init__(self, directory: Directory, rules: CallRules | None = None) -> None:
        self.directory = directory
        self.presence = PresenceBook(directory)
        self.calls = CallTracker(directory, rules or CallRules(), self.presence)
        self.now: float = 0.0
        self.stats: Counter[str] = Counter()
        self.events_by_name: Counter[str] = Counter()

    def process(self, ev: AmiEvent) -> list[CallRecord]:
        """Apply one event; return the calls it (or the time it carried) finished."""
        t = ev.time
        if t is not None and not (0.0 < t < 1e11):
            t = None  # not a plausible epoch time: hand-built or corrupted event
        if t is not None:
            if t < self.now:
                self.stats["event_time_went_back"] += 1
            elif self.now and t - self.now > MAX_TIME_JUMP:
                # One corrupt Timestamp must not fast-forward the clock and
                # expire every open call; a PBX clock really jumping a day is
                # rarer than a garbled frame.
                self.stats["event_time_implausible"] += 1
            else:
                self.now = t
        self.stats["events"] += 1
        self.events_by_name[ev.name if ev.name in KNOWN_EVENTS else "other"] += 1
        if ev.action_id is not None:
            # A list item answering an action (QueueMember, CoreShowChannel, the
            # DeviceStateChange items of DeviceStateList ...): state, not news.
            self.stats["action_response_events"] += 1
            return self.calls.sweep(self.now)
        try:
            self.presence.apply(ev, self.now)
            self.calls.handle(ev, self.now)
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the rest
            self.stats[f"handler_error:{type(exc).__name__}"] += 1
        return self.calls.sweep(self.now)

    def tick(self, now: float) -> list[CallRecord]:
        """Let PBX time pass without an event (a live clock tick)."""
        self.now = max(self.now, now)
        return self.calls.sweep(self.now)

    def flush(self) -> list[CallRecord]:
        return self.calls.flush()

    @property
    def tracked_calls(self) -> int:
        return len(self.calls.calls)

    @property
    def tracked_channels(self) -> int:
        return len(self.calls.channels)
