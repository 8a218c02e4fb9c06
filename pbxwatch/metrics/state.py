"""What is true now: callbacks open, live queue state and phone hours.

Read from the engine by ``refresh()`` on the event loop once a second and
served as a snapshot of metric families, so the HTTP thread never touches
the engine.  The queue counters are the queue book's own (they survive a
restart in the checkpoint), served as counter families; direct resolution
is counted from the records (:mod:`.counters`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pbxwatch.core.engine import Engine
from pbxwatch.core.queues import QueueState, member_state
from pbxwatch.metrics.counters import PQU, PU, Served
from pbxwatch.metrics.health import Health

MEMBER_STATES = ("available", "in_call", "paused", "unavailable")

#: queue counters: (metric suffix, QueueState field, help)
QUEUE_COUNTERS = (
    ("offered", "offered", "Callers who joined the queue (the service level's denominator, "
     "short abandons apart)."),
    ("answered", "answered", "Queue callers answered by a member."),
    ("answered_within_sl", "answered_within_sl",
     "Queue callers answered within the queue's service_level_seconds."),
    ("abandoned", "abandoned", "Queue callers who hung up while waiting."),
    ("short_abandoned", "short_abandoned", "Of those, callers who hung up within "
     "short_abandon_seconds (left out of the service level)."),
    ("unstaffed_seconds", "unstaffed_seconds", "Seconds unstaffed during phone hours."),
)  # fmt: skip


class StateCollector(Collector):
    """Serves the families built by the last ``refresh()``."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.families  # one reference read: the list is swapped whole


@dataclass
class Watched:
    """One followed PBX as the metrics read it: what it serves, its core,
    its PBX time now and its adapters' health."""

    served: Served
    engine: Engine
    now: float
    health: Health


def callback_state(watched: Sequence[Watched]) -> list[Metric]:
    g1 = GaugeMetricFamily("pbxwatch_callbacks_pending", "Callbacks not yet made, "
                           "deadline not passed.", labels=PU)  # fmt: skip
    g2 = GaugeMetricFamily("pbxwatch_callbacks_overdue", "Callbacks not made, deadline "
                           "passed.", labels=PU)  # fmt: skip
    for w in watched:
        pending = dict.fromkeys(w.served.units, 0)
        overdue = dict.fromkeys(w.served.units, 0)
        for cb in w.engine.callbacks.callbacks.values():
            if cb.unit not in pending:
                continue
            state = cb.state(w.now)
            if state == "pending":
                pending[cb.unit] += 1
            elif state == "overdue":
                overdue[cb.unit] += 1
        for unit in w.served.units:
            g1.add_metric([w.served.pbx, unit], pending[unit])
            g2.add_metric([w.served.pbx, unit], overdue[unit])
    return [g1, g2]


def phone_hours(watched: Sequence[Watched]) -> list[Metric]:
    """1 while the unit is in its phone hours (the calendar's working days,
    holidays and eves included): alert rules that only matter while phones
    should be answered use it.  Per PBX: each counts in its own time zone."""
    g = GaugeMetricFamily("pbxwatch_phone_hours", "1 while the unit is in its phone hours "
                          "now (PBX time), else 0.", labels=PU)  # fmt: skip
    for w in watched:
        for unit in w.served.units:
            hours = w.engine.directory.unit(unit).phone_hours
            g.add_metric([w.served.pbx, unit],
                         1 if w.engine.calendar.in_phone_hours(w.now, hours) else 0)  # fmt: skip
    return [g]


def ring_limits(limits: dict[str, int]) -> list[Metric]:
    g = GaugeMetricFamily("pbxwatch_answer_within_rings_limit", "N of the unit's 'answered "
                          "within N rings' (answer_within_rings).", labels=["unit"])  # fmt: skip
    for unit, n in limits.items():
        g.add_metric([unit], n)
    return [g]


def queue_state(watched: Sequence[Watched]) -> list[Metric]:
    """Every configured queue of each PBX (label ``unit`` is the queue's unit)."""
    labels = PQU
    waiting = GaugeMetricFamily("pbxwatch_queue_callers_waiting", "Callers waiting in "
                                "the queue now.", labels=labels)  # fmt: skip
    longest = GaugeMetricFamily("pbxwatch_queue_longest_wait_seconds",
                                "How long the longest-waiting caller has waited.",
                                labels=labels)  # fmt: skip
    members = GaugeMetricFamily("pbxwatch_queue_members", "Queue members by state.",
                                labels=[*labels, "state"])  # fmt: skip
    unstaffed = GaugeMetricFamily("pbxwatch_queue_unstaffed", "1 while nobody is "
                                  "available during the unit's phone hours.",
                                  labels=labels)  # fmt: skip
    counters = [(CounterMetricFamily(f"pbxwatch_queue_{name}", help_, labels=labels), field)
                for name, field, help_ in QUEUE_COUNTERS]  # fmt: skip
    for w in watched:
        for name, unit in w.served.queues.items():
            q = w.engine.queues.queues.get(name) or QueueState(name)
            lv = [w.served.pbx, name, unit]
            waiting.add_metric(lv, len(q.waiting))
            longest.add_metric(lv, max((w.now - t for t in q.waiting.values()), default=0.0))
            unstaffed.add_metric(lv, 1 if q.unstaffed_since is not None else 0)
            by_state = dict.fromkeys(MEMBER_STATES, 0)
            for m in q.members.values():
                if not m.removed:
                    by_state[member_state(m)] += 1
            for state, n in by_state.items():
                members.add_metric([*lv, state], n)
            for family, field in counters:
                family.add_metric(lv, getattr(q, field))
    return [waiting, longest, members, unstaffed, *(f for f, _ in counters)]
