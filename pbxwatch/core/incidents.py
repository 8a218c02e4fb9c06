"""Incidents: what the guidelines ask a unit to follow up.

Each incident has a stable ``incident_id`` so that a replayed or re-synced
stream never counts it twice, and a lifecycle (``open`` -> ``resolved``) for
conditions that last (an unstaffed group number, an unforwarded absence).
Incidents derived from a finished call are born resolved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pbxwatch.core.directory import Directory
from pbxwatch.core.records import CallRecord, iso

IncidentKind = Literal[
    "unanswered_ring", "missing_forward", "unforwarded_absence", "group_unstaffed"
]

#: Ring results that count as an unanswered ring.  ``answered_elsewhere``
#: (a colleague took it) is no miss; ``busy`` is the phone in use (the truth
#: files exclude it); ``unavailable`` never rang and is the business of the
#: unforwarded-absence warning instead.
UNANSWERED_RESULTS = frozenset({"no_answer", "cancelled"})


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    kind: IncidentKind
    state: Literal["open", "resolved"]
    started_at: float
    ended_at: float | None = None
    unit: str | None = None
    call_id: str | None = None
    extension: str | None = None
    queue: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "type": "incident",
            "incident_id": self.incident_id,
            "kind": self.kind,
            "state": self.state,
            "started_at": iso(self.started_at, tz),
            "ended_at": iso(self.ended_at, tz),
            "unit": self.unit,
            "call_id": self.call_id,
            "extension": self.extension,
            "queue": self.queue,
            **self.details,
        }


def incidents_of_call(rec: CallRecord, directory: Directory) -> list[Incident]:
    """Unanswered rings and a missing forward, from one finished call."""
    out: list[Incident] = []
    for ring in rec.rings:
        if ring.result not in UNANSWERED_RESULTS or ring.extension not in directory.people:
            continue
        person = directory.people[ring.extension]
        out.append(
            Incident(
                incident_id=f"unanswered_ring:{rec.call_id}:{ring.extension}:{ring.started_at:.3f}",
                kind="unanswered_ring",
                state="resolved",
                started_at=ring.started_at,
                ended_at=ring.ended_at,
                unit=person.unit,
                call_id=rec.call_id,
                extension=ring.extension,
                queue=ring.queue,
                details={
                    "seconds": ring.seconds,
                    "rings": ring.rings,
                    "ended_because": ring.result,
                    "call_outcome": rec.outcome,
                    "call_target_kind": rec.target_kind,
                },
            )
        )
    if is_missing_forward(rec):
        assert rec.target is not None
        out.append(
            Incident(
                incident_id=f"missing_forward:{rec.call_id}",
                kind="missing_forward",
                state="resolved",
                started_at=rec.started_at,
                ended_at=rec.ended_at,
                unit=rec.target_unit,
                call_id=rec.call_id,
                extension=rec.target,
                details={
                    "landed_in": "contact_centre"
                    if rec.overflowed_to_contact_centre
                    else "voicemail",
                    "ring_seconds": next(r.seconds for r in rec.rings if r.extension == rec.target),
                    "call_outcome": rec.outcome,
                    # the call straddled a gap: a diversion set (or the ring's
                    # real end) may have gone unseen
                    **({"unsure": "ami_gap"} if rec.across_gap else {}),
                },
            )
        )
    return out


def is_missing_forward(rec: CallRecord) -> bool:
    """SPEC "missing forward": a call to a person rang that phone unanswered
    and then ended in voicemail or the contact centre, with no diversion."""
    if rec.target_kind != "extension" or rec.diverted or rec.direction == "outbound":
        return False
    rang_out = any(r.extension == rec.target and r.result == "no_answer" for r in rec.rings)
    landed = rec.voicemail_mailbox is not None or rec.overflowed_to_contact_centre
    return rang_out and landed


def lands_in_voicemail_or_cc(rec: CallRecord) -> bool:
    """The denominator of the missing-forward share."""
    return rec.target_kind == "extension" and (
        rec.voicemail_mailbox is not None or rec.overflowed_to_contact_centre
    )
