"""Live queue health (group numbers and the contact centre).

Members come from ``QueueMemberStatus`` (which Asterisk emits for every
state change of a member's device, even for direct calls),
``QueueMemberAdded`` / ``Removed`` / ``Pause`` and the ``QueueMember`` items
of a ``QueueStatus`` action.  A queue is **unstaffed** when, during its
unit's phone hours, no member is logged in and unpaused; that condition is
an incident with a start and an end.  A caller refused at the door
(``JOINEMPTY``: the call tried the queue but never joined it) proves the
condition too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.directory import Directory, resource_of_device
from pbxwatch.core.events import AmiEvent
from pbxwatch.core.incidents import Incident
from pbxwatch.core.records import CallRecord, iso

# Asterisk device states as QueueMemberStatus reports them
_IDLE = frozenset({0, 1})  # UNKNOWN (idle IAX2 phones say so), NOT_INUSE
_IN_CALL = frozenset({2, 3, 6, 7, 8})  # INUSE BUSY RINGING RINGINUSE ONHOLD
_GONE = frozenset({4, 5})  # INVALID, UNAVAILABLE


@dataclass(slots=True)
class Member:
    interface: str
    name: str = ""
    status: int = 0
    paused: bool = False
    pause_reason: str = ""
    removed: bool = False

    @property
    def logged_in(self) -> bool:
        return not self.removed and self.status not in _GONE

    @property
    def staffing(self) -> bool:
        return self.logged_in and not self.paused


@dataclass(slots=True)
class QueueState:
    name: str
    members: dict[str, Member] = field(default_factory=dict)  # by interface
    listed: bool = False  # members learned from a QueueStatus list: the set is complete
    waiting: dict[str, float] = field(default_factory=dict)  # caller uniqueid -> joined at
    offered: int = 0
    answered: int = 0
    answered_within_sl: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    answered_calls: int = 0  # finished calls this queue answered (for direct resolution)
    answered_without_transfer: int = 0
    refused_empty: int = 0
    unstaffed_since: float | None = None
    unstaffed_seconds: float = 0.0
    last_eval: float | None = None


class QueueBook:
    def __init__(
        self,
        directory: Directory,
        calendar: WorkCalendar,
        short_abandon: float = 5.0,
        max_wait: float = 12 * 3600.0,
    ) -> None:
        self.directory = directory
        self.calendar = calendar
        self.short_abandon = short_abandon
        self.max_wait = max_wait  # a caller "waiting" longer left unseen (a lost event)
        self.queues: dict[str, QueueState] = {name: QueueState(name) for name in directory.queues}

    def shift(self, delta: float) -> None:
        """The PBX clock stepped: callers waiting keep their wait whole."""
        for q in self.queues.values():
            for uid in q.waiting:
                q.waiting[uid] += delta
            if q.last_eval is not None:
                q.last_eval += delta

    def dump(self) -> dict[str, Any]:
        """For a checkpoint: every queue's members, callers and counters."""
        return {name: asdict(q) for name, q in self.queues.items()}

    def load(self, state: Mapping[str, Any]) -> None:
        for name, raw in state.items():
            members = {i: Member(**m) for i, m in raw["members"].items()}
            self.queues[name] = QueueState(**{**raw, "members": members})

    def _q(self, name: str) -> QueueState:
        q = self.queues.get(name)
        if q is None:
            q = self.queues[name] = QueueState(name)
        return q

    # -------------------------------------------------------------- events

    def apply(self, ev: AmiEvent, now: float) -> list[Incident]:
        name = ev.get("Queue")
        if not name:
            return []
        q = self._q(name)
        kind = ev.name
        if kind in ("QueueMemberStatus", "QueueMemberAdded", "QueueMember", "QueueMemberPause"):
            self._member(q, ev)
        elif kind == "QueueMemberRemoved":
            member = q.members.get(ev.get("Interface") or ev.get("Location"))
            if member is not None:
                member.removed = True
        elif kind == "QueueCallerJoin":
            uid = ev.get("Uniqueid")
            if uid not in q.waiting:
                q.waiting[uid] = now
                q.offered += 1
        elif kind == "QueueCallerLeave":
            q.waiting.pop(ev.get("Uniqueid"), None)
        elif kind == "QueueCallerAbandon":
            q.waiting.pop(ev.get("Uniqueid"), None)
            q.abandoned += 1
            if _num(ev.get("HoldTime")) < self.short_abandon:
                q.short_abandoned += 1
        elif kind == "AgentConnect":
            q.answered += 1
            info = self.directory.queues.get(name)
            sl = info.service_level_seconds if info else 60.0
            if _num(ev.get("HoldTime")) <= sl:
                q.answered_within_sl += 1
        return self._evaluate(q, now)

    def _member(self, q: QueueState, ev: AmiEvent) -> None:
        iface = ev.get("Interface") or ev.get("Location")
        if not iface:
            return
        m = q.members.get(iface)
        if m is None:
            m = q.members[iface] = Member(iface)
        if ev.name in ("QueueMemberAdded", "QueueMember"):
            m.removed = False
        if ev.name == "QueueMember" and ev.action_id is not None:
            q.listed = True
        m.name = ev.get("MemberName") or ev.get("Name") or m.name
        if ev.get("Status"):
            m.status = int(_num(ev.get("Status")))
        if ev.get("Paused"):
            m.paused = ev.get("Paused") == "1"
            m.pause_reason = ev.get("PausedReason") or ev.get("Reason") or ""

    def on_call(self, rec: CallRecord, now: float) -> list[Incident]:
        """A finished call: direct resolution, and JOINEMPTY evidence."""
        out: list[Incident] = []
        for name in rec.refused_queues:
            q = self._q(name)
            q.refused_empty += 1
            if q.unstaffed_since is None and self._in_hours(name, now):
                q.unstaffed_since = rec.started_at
                out.append(self._incident(q, "open", rec.started_at, None))
        if rec.outcome == "answered" and rec.queues:
            q = self._q(rec.queues[0])
            q.answered_calls += 1
            if rec.transferred_to is None:
                q.answered_without_transfer += 1
        return out

    def restore_unstaffed(self, name: str, since: float) -> None:
        """Carry on an open unstaffed interval loaded from the store after a
        restart: it ends (same id, same start) when a member is back."""
        self._q(name).unstaffed_since = since

    def tick(self, now: float) -> list[Incident]:
        out: list[Incident] = []
        for q in self.queues.values():
            if q.waiting and now - min(q.waiting.values()) > self.max_wait:
                q.waiting = {u: t for u, t in q.waiting.items() if now - t <= self.max_wait}
            out.extend(self._evaluate(q, now))
        return out

    # ------------------------------------------------------------ unstaffed

    def _in_hours(self, name: str, now: float) -> bool:
        info = self.directory.queues.get(name)
        unit = self.directory.unit(info.unit if info else None)
        return self.calendar.in_phone_hours(now, unit.phone_hours)

    def _evaluate(self, q: QueueState, now: float) -> list[Incident]:
        if q.unstaffed_since is not None and q.last_eval is not None:
            q.unstaffed_seconds += max(0.0, now - q.last_eval)
        q.last_eval = now
        staffed = any(m.staffing for m in q.members.values())
        in_hours = self._in_hours(q.name, now)
        known = self._knows_everyone(q)
        unstaffed = known and not staffed and in_hours
        if q.unstaffed_since is not None and not unstaffed and not staffed:
            if q.refused_empty:
                return []  # opened on JOINEMPTY evidence: stays open until a member is back
            if in_hours and not known:
                return []  # restored after a restart: nothing yet says it ended
        if unstaffed and q.unstaffed_since is None:
            q.unstaffed_since = now
            return [self._incident(q, "open", now, None)]
        if not unstaffed and q.unstaffed_since is not None:
            since = q.unstaffed_since
            q.unstaffed_since = None
            return [self._incident(q, "resolved", since, now)]
        return []

    def _knows_everyone(self, q: QueueState) -> bool:
        """Only a complete member list can prove that nobody is available:
        the directory's list of members, or one from a QueueStatus action."""
        if q.listed:
            return True
        info = self.directory.queues.get(q.name)
        if info is None or not info.members:
            return False
        seen = {resource_of_device(iface) for iface in q.members}
        return all(ext in seen for ext in info.members)

    def _incident(self, q: QueueState, state: str, start: float, end: float | None) -> Incident:
        info = self.directory.queues.get(q.name)
        return Incident(
            incident_id=f"group_unstaffed:{q.name}:{start:.3f}",
            kind="group_unstaffed",
            state="open" if state == "open" else "resolved",
            started_at=start,
            ended_at=end,
            unit=info.unit if info else None,
            queue=q.name,
            details={
                "queue_kind": info.kind if info else None,
                "members": {m.interface: member_state(m) for m in q.members.values()},
            },
        )

    # ------------------------------------------------------------ snapshot

    def snapshot(self, name: str, now: float, tz: ZoneInfo) -> dict[str, Any]:
        q = self._q(name)
        info = self.directory.queues.get(name)
        members = list(q.members.values())
        longest = max((now - t for t in q.waiting.values()), default=0.0)
        return {
            "type": "queue",
            "queue": name,
            "kind": info.kind if info else None,
            "unit": info.unit if info else None,
            "at": iso(now, tz),
            "waiting": len(q.waiting),
            "longest_wait_seconds": round(longest, 3),
            "members": {
                "logged_in": sum(m.logged_in for m in members),
                "available": sum(m.staffing and m.status in _IDLE for m in members),
                "paused": sum(m.paused for m in members),
                "in_call": sum(m.logged_in and m.status in _IN_CALL for m in members),
            },
            "offered": q.offered,
            "answered": q.answered,
            "answered_within_service_level": q.answered_within_sl,
            "abandoned": q.abandoned,
            "short_abandoned": q.short_abandoned,
            "refused_unstaffed": q.refused_empty,
            "answered_without_transfer": q.answered_without_transfer,
            "answered_calls": q.answered_calls,
            "unstaffed": q.unstaffed_since is not None,
            "unstaffed_since": iso(q.unstaffed_since, tz),
            "unstaffed_seconds": round(q.unstaffed_seconds, 3),
        }


def member_state(m: Member) -> str:
    if not m.logged_in:
        return "unavailable"
    if m.paused:
        return "paused"
    return "in_call" if m.status in _IN_CALL else "available"


def _num(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return 0.0
