"""The guideline figures, defined once.

The annual report (from the database) and the Prometheus metrics (live)
count the same things; both classify calls, callbacks and intervals with
the functions here, so a report over a period agrees with the increase of
the matching counters over that period.

Definitions (per unit = the unit of the call's target: the person, group
number or contact centre that was dialled):

- **offered**: inbound external calls to the unit.
- **availability**: answered / offered (a person answered).
- **answer time**: from the call entering the PBX to the first answer by a
  person; median and 90th percentile (nearest rank) of answered calls.
- **rings before answer**: floor(answer time / ring period) + 1, same
  statistics.
- **abandoned share**: abandoned calls that were not short abandons /
  offered; short abandons (caller gone within the threshold, 5 s by
  default) are counted apart.
- **missing forward share**: missing forwards / calls to a person's
  extension that ended in voicemail or the contact centre (diverted calls
  included: they are the compliant part of that denominator).
- **callbacks**: each voicemail message is one obligation, by the state it
  had when the report was made; time to call back and time to listen are
  medians over the messages that were called back / listened to.
- **unstaffed**: seconds a group number or the contact centre had nobody
  available during its unit's phone hours.
- **direct resolution**: of the calls a contact-centre queue answered, the
  share finished without a transfer.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

CallbackState = Literal[
    "pending", "called_back", "overdue", "called_back_late", "deferred", "exempt", "no_number"
]
CALLBACK_STATES: tuple[CallbackState, ...] = (
    "pending", "called_back", "overdue", "called_back_late", "deferred", "exempt", "no_number",
)  # fmt: skip
UNREACHED_OUTCOMES = frozenset({"voicemail", "voicemail_no_message"})


def callback_state(
    *,
    has_number: bool,
    exempt: bool,
    resolved_at: float | None,
    deadline: float,
    now: float,
    deferred: bool = False,
) -> CallbackState:
    """A callback's state at ``now``.  ``deferred``: the owner is still away
    (the deadline counts from the return); a callback made meanwhile is on
    time."""
    if not has_number:
        return "no_number"
    if exempt:
        return "exempt"
    if resolved_at is not None:
        return "called_back" if deferred or resolved_at <= deadline else "called_back_late"
    if deferred:
        return "deferred"
    return "overdue" if now > deadline else "pending"


def is_offered(direction: str) -> bool:
    return direction == "inbound"


def not_reached_person(target_kind: str | None, outcome: str, overflowed: bool) -> bool:
    """A call to a person's extension that ended in voicemail or the contact
    centre: the denominator of the missing-forward share."""
    return target_kind == "extension" and (outcome in UNREACHED_OUTCOMES or overflowed)


def median(values: Sequence[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile: the smallest value with at least ``q`` of
    the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(math.ceil(q * len(ordered)), 1) - 1])


def share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def overlap(start: float, end: float, lo: float, hi: float) -> float:
    """Seconds of [start, end) inside [lo, hi)."""
    return max(0.0, min(end, hi) - max(start, lo))


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True, slots=True)
class CallFacts:
    direction: str
    target_kind: str | None
    outcome: str
    answer_seconds: float | None = None
    rings_before_answer: int | None = None
    short_abandon: bool = False
    diverted: bool = False
    overflowed_to_contact_centre: bool = False
    transferred_to: str | None = None
    queues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CallbackFacts:
    left_at: float
    deadline: float
    has_number: bool
    exempt: bool
    resolved_at: float | None
    listened_at: float | None
    #: deferred while the owner was away: until the return (inf: not back yet)
    deferred_until: float | None = None


# ---------------------------------------------------------------- figures


@dataclass
class UnitFigures:
    """Every guideline figure for one unit and period."""

    offered: int = 0
    offered_by_target: dict[str, int] = field(default_factory=dict)
    answered: int = 0
    availability: float | None = None
    answer_seconds_median: float | None = None
    answer_seconds_p90: float | None = None
    rings_before_answer_median: float | None = None
    rings_before_answer_p90: float | None = None
    abandoned: int = 0
    short_abandoned: int = 0
    abandoned_share: float | None = None
    voicemail_calls: int = 0
    unanswered_rings: int = 0
    calls_to_person_not_reached: int = 0
    diverted: int = 0
    missing_forwards: int = 0
    missing_forward_share: float | None = None
    voicemail_messages: int = 0
    callbacks: dict[str, int] = field(default_factory=dict)  # by state
    callbacks_on_time_share: float | None = None
    callback_seconds_median: float | None = None
    listened: int = 0
    listen_seconds_median: float | None = None
    unstaffed_seconds: float = 0.0
    contact_centre_answered: int = 0
    contact_centre_direct: int = 0
    direct_resolution: float | None = None

    def to_json(self) -> dict[str, Any]:
        """Shares and times rounded to what a report shows (4 decimals)."""
        return {
            name: round(v, 4) if isinstance(v := getattr(self, name), float) else v
            for name in self.__dataclass_fields__
        }


def unit_figures(
    calls: Iterable[CallFacts],
    callbacks: Iterable[CallbackFacts],
    *,
    unanswered_rings: int,
    missing_forwards: int,
    unstaffed_seconds: float,
    contact_centre_calls: Iterable[CallFacts] = (),
    now: float,
) -> UnitFigures:
    """The figures from one unit's calls and callbacks of a period.

    ``contact_centre_calls`` are the calls answered by the unit's
    contact-centre queues (their targets may belong to other units)."""
    f = UnitFigures()
    answer_times: list[float] = []
    rings: list[float] = []
    for c in calls:
        if not is_offered(c.direction):
            continue
        f.offered += 1
        kind = c.target_kind or "other"
        f.offered_by_target[kind] = f.offered_by_target.get(kind, 0) + 1
        if c.outcome == "answered":
            f.answered += 1
            if c.answer_seconds is not None:
                answer_times.append(c.answer_seconds)
            if c.rings_before_answer is not None:
                rings.append(c.rings_before_answer)
        elif c.outcome == "abandoned":
            if c.short_abandon:
                f.short_abandoned += 1
            else:
                f.abandoned += 1
        elif c.outcome == "voicemail":
            f.voicemail_calls += 1
        if not_reached_person(c.target_kind, c.outcome, c.overflowed_to_contact_centre):
            f.calls_to_person_not_reached += 1
        if c.diverted:
            f.diverted += 1
    f.availability = share(f.answered, f.offered)
    f.answer_seconds_median = median(answer_times)
    f.answer_seconds_p90 = percentile(answer_times, 0.9)
    f.rings_before_answer_median = median(rings)
    f.rings_before_answer_p90 = percentile(rings, 0.9)
    f.abandoned_share = share(f.abandoned, f.offered)
    f.unanswered_rings = unanswered_rings
    f.missing_forwards = missing_forwards
    f.missing_forward_share = share(missing_forwards, f.calls_to_person_not_reached)
    _callback_figures(f, callbacks, now)
    f.unstaffed_seconds = round(unstaffed_seconds, 3)
    for c in contact_centre_calls:
        f.contact_centre_answered += 1
        f.contact_centre_direct += c.transferred_to is None
    f.direct_resolution = share(f.contact_centre_direct, f.contact_centre_answered)
    return f


def _callback_figures(f: UnitFigures, callbacks: Iterable[CallbackFacts], now: float) -> None:
    states: dict[str, int] = dict.fromkeys(CALLBACK_STATES, 0)
    to_callback: list[float] = []
    to_listen: list[float] = []
    for cb in callbacks:
        f.voicemail_messages += 1
        state = callback_state(
            has_number=cb.has_number,
            exempt=cb.exempt,
            resolved_at=cb.resolved_at,
            deadline=cb.deadline,
            now=now,
            deferred=cb.deferred_until is not None and now < cb.deferred_until,
        )
        states[state] += 1
        if cb.resolved_at is not None and state in ("called_back", "called_back_late"):
            to_callback.append(cb.resolved_at - cb.left_at)
        if cb.listened_at is not None:
            f.listened += 1
            to_listen.append(cb.listened_at - cb.left_at)
    f.callbacks = states
    due = states["called_back"] + states["called_back_late"] + states["overdue"]
    f.callbacks_on_time_share = share(states["called_back"], due)
    f.callback_seconds_median = median(to_callback)
    f.listen_seconds_median = median(to_listen)
