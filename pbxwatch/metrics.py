"""Prometheus metrics: the guideline KPIs, live queue health and pbxwatch's
own health, in a registry of our own.

Two kinds of series:

- **Counters and histograms of what happened**, fed by the records the core
  emits (``Metrics`` is a pipeline sink).  They count with the same
  functions as the report (``pbxwatch.core.figures``), so the increase over
  a period agrees with ``pbxwatch report`` for that period.
- **State** (callbacks pending/overdue, queue state, AMI up, store backlog),
  read from the engine and the adapters by ``refresh()`` on the event loop
  once a second and served as a snapshot, so the HTTP thread never touches
  the engine.

Labels are bounded sets from the configuration: unit, queue, target kind,
outcome, direction, member state, event name (allow-list plus ``other``).
Never a phone number, a name or a channel id.  Every series a dashboard
needs is created at start, so panels show 0 instead of "no data".
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pbxwatch.core.callbacks import CallbackChange, CallbackEvent
from pbxwatch.core.engine import BAD_INPUT_KINDS, KNOWN_EVENTS, Engine, Record
from pbxwatch.core.figures import is_offered, not_reached_person
from pbxwatch.core.gaps import AmiGap
from pbxwatch.core.incidents import Incident
from pbxwatch.core.queues import member_state
from pbxwatch.core.records import CallRecord, Outcome
from pbxwatch.metrics_http import MetricsServer, serve_metrics
from pbxwatch.settings import MetricsSettings, Settings
from pbxwatch.store.writer import WriterStats

log = logging.getLogger(__name__)

#: Answer time buckets on the 6 s ring period: "answered within N rings".
ANSWER_BUCKETS = (6.0, 12.0, 18.0, 24.0, 30.0, 36.0, 48.0, 60.0, 90.0, 120.0, 180.0, 300.0)
RING_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0)
#: Time to call back / to listen: 15 min up to five days.
DELAY_BUCKETS = (900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0,
                 259200.0, 432000.0)  # fmt: skip
TARGET_KINDS = ("extension", "group", "contact_centre")
MEMBER_STATES = ("available", "in_call", "paused", "unavailable")
NO_UNIT = "none"


@dataclass
class Health:
    """pbxwatch's own state, as the adapters know it."""

    ami_up: bool = False
    ami_reconnects: int = 0
    last_event_time: float | None = None
    event_lag_seconds: float = 0.0
    store_backlog: int = 0
    store: WriterStats = field(default_factory=WriterStats)
    outbox_backlog: int = 0
    outbox_published: int = 0
    #: frames the AMI source dropped before they were events, by kind
    frame_faults: dict[str, int] = field(default_factory=dict)
    sink_errors: int = 0
    store_up: bool = True
    store_connect_failures: int = 0
    mqtt_up: bool = False
    mqtt_connect_failures: int = 0
    #: PBX minus host clock (PBX − speed × host with a faster simulator)
    clock_offset_seconds: float = 0.0
    checkpoints_saved: int = 0
    checkpoint_bytes: int = 0
    checkpoint_seconds: float = 0.0  # copying and encoding the last one


class _StateCollector(Collector):
    """Serves the families built by the last ``refresh()``."""

    def __init__(self) -> None:
        self.families: list[Metric] = []

    def collect(self) -> Iterator[Metric]:
        yield from self.families  # one reference read: the list is swapped whole


class Metrics:
    """A pipeline sink that counts records, plus the state gauges."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        d = settings.directory
        self.units = sorted(d.units)
        self.queues = {name: q.unit for name, q in sorted(d.queues.items())}
        self._cb_seen: dict[str, tuple[bool, bool]] = {}  # id -> (resolved, listened)
        r = self.registry
        unit_kind = ["unit", "target_kind"]
        self.calls = Counter("pbxwatch_calls", "Finished calls by the unit and kind of the "
                             "number dialled, direction and outcome.",
                             [*unit_kind, "direction", "outcome"], registry=r)  # fmt: skip
        self.short_abandons = Counter("pbxwatch_short_abandons", "Inbound calls abandoned "
                                      "within the short-abandon threshold (counted apart).",
                                      unit_kind, registry=r)  # fmt: skip
        self.answer = Histogram("pbxwatch_answer_seconds", "Inbound answer time: from the "
                                "call entering the PBX to a person answering.", unit_kind,
                                buckets=ANSWER_BUCKETS, registry=r)  # fmt: skip
        self.rings = Histogram("pbxwatch_rings_before_answer", "Rings heard before a person "
                               "answered (floor(answer time / ring period) + 1).", unit_kind,
                               buckets=RING_BUCKETS, registry=r)  # fmt: skip
        self.not_reached = Counter("pbxwatch_person_calls_not_reached", "Inbound calls to a "
                                   "person's extension that ended in voicemail or the contact "
                                   "centre (the missing-forward denominator).", ["unit"],
                                   registry=r)  # fmt: skip
        self.diverted = Counter("pbxwatch_calls_diverted", "Inbound calls to a person who had "
                                "a diversion set (the phone was not rung).", ["unit"],
                                registry=r)  # fmt: skip
        self.missing = Counter("pbxwatch_missing_forwards", "Calls that rang a person "
                               "unanswered and ended in voicemail or the contact centre with "
                               "no diversion set.", ["unit"], registry=r)  # fmt: skip
        self.unanswered = Counter("pbxwatch_unanswered_rings", "Rings to a person's phone "
                                  "that nobody answered.", ["unit"], registry=r)  # fmt: skip
        self.absences = Counter("pbxwatch_unforwarded_absences", "Warnings opened: a phone "
                                "unreachable in phone hours with no diversion set.", ["unit"],
                                registry=r)  # fmt: skip
        self.messages = Counter("pbxwatch_voicemail_messages", "Voicemail messages left (one "
                                "callback obligation each).", ["unit"], registry=r)  # fmt: skip
        self.resolved = Counter("pbxwatch_callbacks_resolved", "Callbacks made, by whether "
                                "they were on time.", ["unit", "result"], registry=r)  # fmt: skip
        self.callback_seconds = Histogram("pbxwatch_callback_seconds", "From the message to "
                                          "the callback call.", ["unit"],
                                          buckets=DELAY_BUCKETS, registry=r)  # fmt: skip
        self.listen_seconds = Histogram("pbxwatch_listen_seconds", "From the message to the "
                                        "moment it was heard.", ["unit"],
                                        buckets=DELAY_BUCKETS, registry=r)  # fmt: skip
        self.reminders = Counter("pbxwatch_callback_reminders", "Callback reminders raised "
                                 "(due soon, overdue).", ["unit", "kind"],
                                 registry=r)  # fmt: skip
        self.gaps = Counter("pbxwatch_ami_gaps", "Gaps in the AMI event stream (connection "
                            "lost, then state read back).", registry=r)  # fmt: skip
        self.gap_seconds = Counter("pbxwatch_ami_gap_seconds", "PBX seconds without events "
                                   "in those gaps.", registry=r)  # fmt: skip
        self._state = _StateCollector()
        r.register(self._state)
        self._precreate()

    def _precreate(self) -> None:
        outcomes: tuple[str, ...] = get_args(Outcome)
        for unit in self.units:
            for kind in TARGET_KINDS:
                for outcome in outcomes:
                    self.calls.labels(unit, kind, "inbound", outcome)
                self.short_abandons.labels(unit, kind)
                self.answer.labels(unit, kind)
                self.rings.labels(unit, kind)
            for c in (self.not_reached, self.diverted, self.missing, self.unanswered,
                      self.absences, self.messages, self.callback_seconds,
                      self.listen_seconds):  # fmt: skip
                c.labels(unit)
            for result in ("on_time", "late"):
                self.resolved.labels(unit, result)
            for kind in ("callback_due_soon", "callback_overdue"):
                self.reminders.labels(unit, kind)

    # ------------------------------------------------------------ records

    def __call__(self, rec: Record) -> None:
        if isinstance(rec, CallRecord):
            self._call(rec)
        elif isinstance(rec, Incident):
            self._incident(rec)
        elif isinstance(rec, CallbackChange):
            self._callback(rec)
        elif isinstance(rec, CallbackEvent):
            self.reminders.labels(self._unit(rec.callback.unit), rec.kind).inc()
        elif isinstance(rec, AmiGap):
            self.gaps.inc()
            self.gap_seconds.inc(max(rec.seconds, 0.0))

    def adopt(self, engine: Engine) -> None:
        """Callbacks restored from the store were counted by an earlier run."""
        for cb in engine.callbacks.callbacks.values():
            self._cb_seen[cb.callback_id] = (cb.resolved_at is not None, cb.listened_at is not None)

    def _unit(self, unit: str | None) -> str:
        return unit if unit in self.units else NO_UNIT

    def _call(self, rec: CallRecord) -> None:
        unit, kind = self._unit(rec.target_unit), rec.target_kind or "other"
        self.calls.labels(unit, kind, rec.direction, rec.outcome).inc()
        if not is_offered(rec.direction):
            return
        if rec.short_abandon and rec.outcome == "abandoned":
            self.short_abandons.labels(unit, kind).inc()
        if rec.outcome == "answered" and rec.answer_seconds is not None:
            self.answer.labels(unit, kind).observe(rec.answer_seconds)
            if rec.rings_before_answer is not None:
                self.rings.labels(unit, kind).observe(rec.rings_before_answer)
        if not_reached_person(rec.target_kind, rec.outcome, rec.overflowed_to_contact_centre):
            self.not_reached.labels(unit).inc()
        if rec.diverted:
            self.diverted.labels(unit).inc()

    def _incident(self, inc: Incident) -> None:
        unit = self._unit(inc.unit)
        if inc.kind == "unanswered_ring":
            self.unanswered.labels(unit).inc()
        elif inc.kind == "missing_forward":
            self.missing.labels(unit).inc()
        elif inc.kind == "unforwarded_absence" and inc.state == "open":
            self.absences.labels(unit).inc()

    def _callback(self, change: CallbackChange) -> None:
        cb = change.callback
        unit = self._unit(cb.unit)
        seen = self._cb_seen.get(cb.callback_id)
        if seen is None:
            self.messages.labels(unit).inc()
            seen = (False, False)
        resolved, listened = seen
        if not resolved and cb.resolved_at is not None:
            state = cb.state(cb.resolved_at)
            if state in ("called_back", "called_back_late"):
                result = "on_time" if state == "called_back" else "late"
                self.resolved.labels(unit, result).inc()
                self.callback_seconds.labels(unit).observe(cb.resolved_at - cb.left_at)
        if not listened and cb.listened_at is not None:
            self.listen_seconds.labels(unit).observe(cb.listened_at - cb.left_at)
        self._cb_seen[cb.callback_id] = (cb.resolved_at is not None, cb.listened_at is not None)

    # ------------------------------------------------------------ state

    def refresh(self, engine: Engine, now: float, health: Health) -> None:
        """Rebuild the state families (call on the event loop)."""
        families = list(self._callback_state(engine, now))
        families += self._queue_state(engine, now)
        families += self._health(engine, health)
        self._state.families = families

    def _callback_state(self, engine: Engine, now: float) -> Iterable[Metric]:
        pending = dict.fromkeys(self.units, 0)
        overdue = dict.fromkeys(self.units, 0)
        for cb in engine.callbacks.callbacks.values():
            state = cb.state(now)
            unit = cb.unit if cb.unit in pending else None
            if unit is None:
                continue
            if state == "pending":
                pending[unit] += 1
            elif state == "overdue":
                overdue[unit] += 1
        g1 = GaugeMetricFamily("pbxwatch_callbacks_pending", "Callbacks not yet made, "
                               "deadline not passed.", labels=["unit"])  # fmt: skip
        g2 = GaugeMetricFamily("pbxwatch_callbacks_overdue", "Callbacks not made, deadline "
                               "passed.", labels=["unit"])  # fmt: skip
        for unit in self.units:
            g1.add_metric([unit], pending[unit])
            g2.add_metric([unit], overdue[unit])
        return [g1, g2]

    def _queue_state(self, engine: Engine, now: float) -> list[Metric]:
        labels = ["queue", "unit"]
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
        counters = {
            name: CounterMetricFamily(f"pbxwatch_queue_{name}", help_, labels=labels)
            for name, help_ in (
                ("offered", "Callers who joined the queue."),
                ("answered", "Queue callers answered by a member."),
                ("answered_within_sl", "Queue callers answered within the service level."),
                ("abandoned", "Queue callers who hung up while waiting."),
                ("unstaffed_seconds", "Seconds unstaffed during phone hours."),
            )
        }
        for name, unit in self.queues.items():
            q = engine.queues.queues.get(name)
            lv = [name, unit]
            if q is None:
                waiting.add_metric(lv, 0)
                longest.add_metric(lv, 0)
                unstaffed.add_metric(lv, 0)
                for state in MEMBER_STATES:
                    members.add_metric([*lv, state], 0)
                for c in counters.values():
                    c.add_metric(lv, 0)
                continue
            waiting.add_metric(lv, len(q.waiting))
            longest.add_metric(lv, max((now - t for t in q.waiting.values()), default=0.0))
            unstaffed.add_metric(lv, 1 if q.unstaffed_since is not None else 0)
            by_state = dict.fromkeys(MEMBER_STATES, 0)
            for m in q.members.values():
                if not m.removed:
                    by_state[member_state(m)] += 1
            for state, n in by_state.items():
                members.add_metric([*lv, state], n)
            counters["offered"].add_metric(lv, q.offered)
            counters["answered"].add_metric(lv, q.answered)
            counters["answered_within_sl"].add_metric(lv, q.answered_within_sl)
            counters["abandoned"].add_metric(lv, q.abandoned)
            counters["unstaffed_seconds"].add_metric(lv, q.unstaffed_seconds)
        return [waiting, longest, members, unstaffed, *counters.values()]

    def _health(self, engine: Engine, h: Health) -> list[Metric]:
        def gauge(name: str, help_: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, help_, value=value)

        def counter(name: str, help_: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(name, help_, value=value)

        events = CounterMetricFamily("pbxwatch_ami_events", "AMI events processed, by "
                                     "event name (known names, else 'other').",
                                     labels=["event"])  # fmt: skip
        for name in sorted(KNOWN_EVENTS | {"other"}):
            events.add_metric([name], engine.events_by_name.get(name, 0))
        errors = sum(n for k, n in engine.stats.items() if k.startswith("handler_error:"))
        bad = CounterMetricFamily("pbxwatch_bad_input", "AMI input skipped or distrusted, by "
                                  "kind (each kind is logged once when first seen).",
                                  labels=["kind"])  # fmt: skip
        counts = {**engine.bad_input, **h.frame_faults}
        for kind in BAD_INPUT_KINDS:
            bad.add_metric([kind], counts.get(kind, 0))
        return [
            gauge("pbxwatch_ami_up", "1 while logged in to the AMI.", 1 if h.ami_up else 0),
            counter("pbxwatch_ami_reconnects", "AMI reconnections.", h.ami_reconnects),
            events,
            bad,
            counter(
                "pbxwatch_event_errors", "Events a handler failed on (skipped, logged).", errors
            ),
            counter(
                "pbxwatch_sink_errors",
                "Records a sink (store, metrics, log) failed on (skipped, first ten logged).",
                h.sink_errors,
            ),
            gauge(
                "pbxwatch_last_event_timestamp_seconds",
                "PBX time of the last event.",
                h.last_event_time or 0,
            ),
            gauge(
                "pbxwatch_event_lag_seconds",
                "Host clock minus the PBX timestamp of the last event when it was processed.",
                h.event_lag_seconds,
            ),
            gauge(
                "pbxwatch_clock_offset_seconds",
                "PBX clock minus host clock, as estimated from the promptest recent events.",
                h.clock_offset_seconds,
            ),
            counter(
                "pbxwatch_clock_steps",
                "Steps of the PBX clock adopted after consecutive events confirmed them.",
                engine.clock.steps,
            ),
            gauge("pbxwatch_calls_in_progress", "Calls being followed now.", engine.tracked_calls),
            gauge("pbxwatch_store_up", "1 once the database is open.", 1 if h.store_up else 0),
            counter(
                "pbxwatch_store_connect_failures",
                "Failed tries to open the database (down, unresolvable host, refused login).",
                h.store_connect_failures,
            ),
            gauge(
                "pbxwatch_mqtt_up", "1 while connected to the MQTT broker.", 1 if h.mqtt_up else 0
            ),
            counter(
                "pbxwatch_mqtt_connect_failures",
                "Failed tries to reach the broker (down, refused login), retried with backoff.",
                h.mqtt_connect_failures,
            ),
            gauge("pbxwatch_store_backlog_rows", "Rows waiting to be written.", h.store_backlog),
            counter(
                "pbxwatch_store_rows_written", "Rows written to the database.", h.store.rows_written
            ),
            counter(
                "pbxwatch_store_write_errors",
                "Failed database batches (retried).",
                h.store.write_errors,
            ),
            counter(
                "pbxwatch_store_spilled_rows",
                "Rows spilled to disk past capacity.",
                h.store.spilled_rows,
            ),
            gauge(
                "pbxwatch_store_batch_seconds",
                "Duration of the last database batch.",
                h.store.last_batch_seconds,
            ),
            counter(
                "pbxwatch_checkpoints",
                "Checkpoints of the live state queued for the store (a restart carries on "
                "from the last one committed).",
                h.checkpoints_saved,
            ),
            gauge(
                "pbxwatch_checkpoint_bytes",
                "Size of the last checkpoint, encoded.",
                h.checkpoint_bytes,
            ),
            gauge(
                "pbxwatch_checkpoint_seconds",
                "Event-loop time spent copying and encoding the last checkpoint (in slices).",
                h.checkpoint_seconds,
            ),
            gauge(
                "pbxwatch_alert_outbox_backlog", "Alerts waiting to be published.", h.outbox_backlog
            ),
            counter(
                "pbxwatch_alerts_published", "Alerts the broker acknowledged.", h.outbox_published
            ),
        ]


def serve(settings: MetricsSettings, registry: CollectorRegistry) -> MetricsServer:
    """Start the /metrics endpoint in a thread (bounded: see
    :mod:`pbxwatch.metrics_http`); returns the server (has ``shutdown()``)."""
    server = serve_metrics(settings.host, settings.port, registry)
    log.info("metrics on http://%s/metrics", settings.listen)
    return server
