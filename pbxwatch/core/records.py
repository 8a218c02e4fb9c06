"""What the core emits: plain, immutable records that adapters persist,
print, count or publish.  ``to_json`` gives the ``pbxwatch replay --json``
shape (times ISO 8601 with the site's offset)."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pbxwatch.core.diversion import Presence

Direction = Literal["inbound", "outbound", "internal"]
#: ``no_answer`` is for outbound calls the far end did not answer;
#: ``completed`` for calls to a PBX service such as voicemail access (*97);
#: ``unknown`` for a call that ended while pbxwatch was blind (a restart, a
#: lost connection) when it was last seen ringing or queued.
Outcome = Literal[
    "answered",
    "voicemail",
    "voicemail_no_message",
    "abandoned",
    "busy",
    "failed",
    "no_answer",
    "completed",
    "unknown",
]
RingResult = Literal[
    "answered",
    "no_answer",
    "cancelled",
    "answered_elsewhere",
    "busy",
    "unavailable",
    "failed",
    "unknown",
]


def iso(t: float | None, tz: ZoneInfo) -> str | None:
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t, tz).isoformat(timespec="milliseconds")


def rings_for(seconds: float, ring_period: float) -> int:
    """Rings heard in ``seconds`` of ringing: the first ring sounds at once."""
    return math.floor(max(seconds, 0.0) / ring_period) + 1


@dataclass(frozen=True, slots=True)
class RingRecord:
    """One attempt to reach one person's device."""

    extension: str | None
    device: str
    started_at: float
    ended_at: float | None
    result: RingResult
    dial_status: str | None
    hangup_cause: int | None
    queue: str | None
    rings: int

    @property
    def seconds(self) -> float:
        return round((self.ended_at or self.started_at) - self.started_at, 3)

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "extension": self.extension,
            "seconds": self.seconds,
            "rings": self.rings,
            "result": self.result,
            "queue": self.queue,
            "started_at": iso(self.started_at, tz),
        }


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One finished call: every channel that shared one Linkedid."""

    call_id: str
    started_at: float
    ended_at: float | None
    direction: Direction
    caller: str | None
    caller_e164: str | None
    dialled: str | None
    target_kind: str | None
    target: str | None
    target_unit: str | None
    outcome: Outcome
    answered_by: str | None = None
    answered_at: float | None = None
    answer_seconds: float | None = None
    rings_before_answer: int | None = None
    voicemail_mailbox: str | None = None
    voicemail_left_at: float | None = None
    diverted: bool = False
    diversion_reason: str | None = None
    target_presence: Presence | None = None  # the target person's presence as the call came in
    overflowed_to_contact_centre: bool = False
    transferred_to: str | None = None
    abandoned_where: Literal["ringing", "queue", "elsewhere"] | None = None
    short_abandon: bool = False
    queues: tuple[str, ...] = ()
    refused_queues: tuple[str, ...] = ()  # tried but never joined (JOINEMPTY)
    rings: tuple[RingRecord, ...] = field(default_factory=tuple)
    complete: bool = True
    across_gap: bool = False  # in progress while the AMI stream had a gap

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return round(self.ended_at - self.started_at, 3)

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "type": "call",
            "call_id": self.call_id,
            "started_at": iso(self.started_at, tz),
            "ended_at": iso(self.ended_at, tz),
            "duration_seconds": self.duration_seconds,
            "direction": self.direction,
            "caller": self.caller,
            "caller_e164": self.caller_e164,
            "dialled": self.dialled,
            "target_kind": self.target_kind,
            "target": self.target,
            "target_unit": self.target_unit,
            "outcome": self.outcome,
            "answered_by": self.answered_by,
            "answered_at": iso(self.answered_at, tz),
            "answer_seconds": self.answer_seconds,
            "rings_before_answer": self.rings_before_answer,
            "voicemail_mailbox": self.voicemail_mailbox,
            "voicemail_left_at": iso(self.voicemail_left_at, tz),
            "diverted": self.diverted,
            "diversion_reason": self.diversion_reason,
            "overflowed_to_contact_centre": self.overflowed_to_contact_centre,
            "transferred_to": self.transferred_to,
            "abandoned_where": self.abandoned_where,
            "short_abandon": self.short_abandon,
            "queues": list(self.queues),
            "refused_queues": list(self.refused_queues),
            "complete": self.complete,
            "across_gap": self.across_gap,
            "rings": [r.to_json(tz) for r in self.rings],
        }
