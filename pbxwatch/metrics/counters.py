"""What happened: counters and histograms fed by the records the core emits.

They count with the same functions as the report (``pbxwatch.core.figures``),
so the increase over a period agrees with ``pbxwatch report`` for it.  Every
series a dashboard needs is created at start, so panels show 0, not "no data".
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Histogram

from pbxwatch.core.callbacks import CallbackChange, CallbackEvent
from pbxwatch.core.engine import Engine, Record
from pbxwatch.core.figures import is_offered, not_reached_person
from pbxwatch.core.gaps import AmiGap
from pbxwatch.core.incidents import Incident
from pbxwatch.core.records import CallRecord, Outcome
from pbxwatch.settings import Settings, UnitSettings

#: Answer time buckets on the 6 s ring period.
ANSWER_BUCKETS = (6.0, 12.0, 18.0, 24.0, 30.0, 36.0, 48.0, 60.0, 90.0, 120.0, 180.0, 300.0)
RING_BUCKETS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0, 20.0)
#: Time to call back / to listen: 15 min up to five days.
DELAY_BUCKETS = (900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0,
                 259200.0, 432000.0)  # fmt: skip
TARGET_KINDS = ("extension", "group", "contact_centre")
NO_UNIT = "none"
#: N for calls to no configured unit: the setting's default
DEFAULT_RING_LIMIT = int(UnitSettings.model_fields["answer_within_rings"].default)


#: the labels of a per-unit and a per-queue series: which PBX first
PU = ["pbx", "unit"]
PQU = ["pbx", "queue", "unit"]


@dataclass(frozen=True)
class Served:
    """What one PBX serves, for its series made at start: its id, the units
    its people and queues belong to, and its queues (name -> unit)."""

    pbx: str
    units: tuple[str, ...]
    queues: dict[str, str]

    @classmethod
    def of(cls, view: Settings, *, every: bool) -> Served:
        """From a PBX's view of the configuration (``Settings.pbx_views``);
        ``every``: it serves the whole directory, every unit's series."""
        d = view.directory
        units = set(d.units) if every else (
            {p.unit for p in d.people.values()} | {q.unit for q in d.queues.values()})  # fmt: skip
        queues = {name: q.unit for name, q in sorted(d.queues.items())}
        return cls(view.pbx_id, tuple(sorted(u for u in units if u in d.units)), queues)


def served_by(settings: Settings) -> list[Served]:
    """What each configured PBX serves (the one PBX serves everything)."""
    if not settings.pbxs:
        return [Served.of(settings, every=True)]
    return [Served.of(view, every=p.serves_everything)
            for p, view in zip(settings.pbxs, settings.pbx_views(), strict=True)]  # fmt: skip


class RecordCounters:
    """Counts records: one ``inc()`` or ``observe()`` per fact of a record,
    in the series of the PBX it came from (``count``)."""

    def __init__(self, settings: Settings, registry: CollectorRegistry,
                 served: list[Served] | None = None) -> None:  # fmt: skip
        self.units = sorted(settings.directory.units)
        self.queues = {name: q.unit for name, q in sorted(settings.directory.queues.items())}
        #: N of "answered within N rings", per unit (``answer_within_rings``)
        self.ring_limit = {u: settings.directory.units[u].answer_within_rings for u in self.units}
        self._cb_seen: dict[str, tuple[bool, bool]] = {}  # id -> (resolved, listened)
        self._calls(registry)
        self._guideline(registry)
        self._callbacks(registry)
        self._queues(registry)
        self.gaps = Counter("pbxwatch_ami_gaps", "Gaps in the AMI event stream (connection "
                            "lost, then state read back).", ["pbx"], registry=registry)  # fmt: skip
        self.gap_seconds = Counter("pbxwatch_ami_gap_seconds", "PBX seconds without events "
                                   "in those gaps.", ["pbx"], registry=registry)  # fmt: skip
        for each in served or served_by(settings):
            self._precreate(each)

    def _calls(self, r: CollectorRegistry) -> None:
        uk = ["pbx", "unit", "target_kind"]
        self.calls = Counter("pbxwatch_calls", "Finished calls by the unit and kind of the "
                             "number dialled, direction and outcome.",
                             [*uk, "direction", "outcome"], registry=r)  # fmt: skip
        self.short_abandons = Counter("pbxwatch_short_abandons", "Inbound calls abandoned "
                                      "within the short-abandon threshold (counted apart).",
                                      uk, registry=r)  # fmt: skip
        self.answer = Histogram("pbxwatch_answer_seconds", "Inbound answer time: from the "
                                "call entering the PBX to a person answering.", uk,
                                buckets=ANSWER_BUCKETS, registry=r)  # fmt: skip
        self.rings = Histogram("pbxwatch_rings_before_answer", "Rings heard before a person "
                               "answered (floor(answer time / ring period) + 1).", uk,
                               buckets=RING_BUCKETS, registry=r)  # fmt: skip
        self.within_rings = Counter("pbxwatch_answered_within_rings", "Inbound calls a person "
                                    "answered within the unit's answer_within_rings rings "
                                    "(the share's denominator: answered calls).", uk,
                                    registry=r)  # fmt: skip

    def _guideline(self, r: CollectorRegistry) -> None:
        self.not_reached = Counter("pbxwatch_person_calls_not_reached", "Inbound calls to a "
                                   "person's extension that ended in voicemail or the contact "
                                   "centre (the missing-forward denominator).", PU,
                                   registry=r)  # fmt: skip
        self.diverted = Counter("pbxwatch_calls_diverted", "Inbound calls to a person who had "
                                "a diversion set (the phone was not rung).", PU,
                                registry=r)  # fmt: skip
        self.missing = Counter("pbxwatch_missing_forwards", "Calls that rang a person "
                               "unanswered and ended in voicemail or the contact centre with "
                               "no diversion set.", PU, registry=r)  # fmt: skip
        self.unanswered = Counter("pbxwatch_unanswered_rings", "Rings to a person's phone "
                                  "that nobody answered.", PU, registry=r)  # fmt: skip
        self.absences = Counter("pbxwatch_unforwarded_absences", "Warnings opened: a phone "
                                "unreachable in phone hours with no diversion set.", PU,
                                registry=r)  # fmt: skip

    def _callbacks(self, r: CollectorRegistry) -> None:
        self.messages = Counter("pbxwatch_voicemail_messages", "Voicemail messages left (one "
                                "callback obligation each).", PU, registry=r)  # fmt: skip
        self.resolved = Counter("pbxwatch_callbacks_resolved", "Callbacks made, by whether "
                                "they were on time.", [*PU, "result"], registry=r)  # fmt: skip
        self.callback_seconds = Histogram("pbxwatch_callback_seconds", "From the message to "
                                          "the callback call.", PU,
                                          buckets=DELAY_BUCKETS, registry=r)  # fmt: skip
        self.listen_seconds = Histogram("pbxwatch_listen_seconds", "From the message to the "
                                        "moment it was heard.", PU,
                                        buckets=DELAY_BUCKETS, registry=r)  # fmt: skip
        self.reminders = Counter("pbxwatch_callback_reminders", "Callback reminders raised "
                                 "(due soon, overdue).", [*PU, "kind"],
                                 registry=r)  # fmt: skip

    def _queues(self, r: CollectorRegistry) -> None:
        """Direct resolution, counted from the finished calls as the report
        counts it (inbound, answered, by the queue that answered first)."""
        self.queue_answered = Counter("pbxwatch_queue_answered_finished", "Finished inbound "
                                      "calls the queue answered first (the direct-resolution "
                                      "denominator).", PQU,
                                      registry=r)  # fmt: skip
        self.queue_direct = Counter("pbxwatch_queue_answered_without_transfer", "Of those, "
                                    "calls finished without a transfer (direct resolution).",
                                    PQU, registry=r)  # fmt: skip

    def _precreate(self, served: Served) -> None:
        pbx = served.pbx
        self.gaps.labels(pbx)
        self.gap_seconds.labels(pbx)
        for name, unit in served.queues.items():
            self.queue_answered.labels(pbx, name, unit)
            self.queue_direct.labels(pbx, name, unit)
        outcomes: tuple[str, ...] = get_args(Outcome)
        for unit in served.units:
            for kind in TARGET_KINDS:
                for outcome in outcomes:
                    self.calls.labels(pbx, unit, kind, "inbound", outcome)
                for per_kind in (self.short_abandons, self.answer, self.rings, self.within_rings):
                    per_kind.labels(pbx, unit, kind)
            for c in (self.not_reached, self.diverted, self.missing, self.unanswered,
                      self.absences, self.messages, self.callback_seconds,
                      self.listen_seconds):  # fmt: skip
                c.labels(pbx, unit)
            for result in ("on_time", "late"):
                self.resolved.labels(pbx, unit, result)
            for kind in ("callback_due_soon", "callback_overdue"):
                self.reminders.labels(pbx, unit, kind)

    def count(self, pbx: str, rec: Record) -> None:
        """``rec``, a record of PBX ``pbx``, counted."""
        if isinstance(rec, CallRecord):
            self._call(pbx, rec)
        elif isinstance(rec, Incident):
            self._incident(pbx, rec)
        elif isinstance(rec, CallbackChange):
            self._callback(pbx, rec)
        elif isinstance(rec, CallbackEvent):
            self.reminders.labels(pbx, self._unit(rec.callback.unit), rec.kind).inc()
        elif isinstance(rec, AmiGap):
            self.gaps.labels(pbx).inc()
            self.gap_seconds.labels(pbx).inc(max(rec.seconds, 0.0))

    def adopt(self, engine: Engine, stamp: Callable[[str], str] | None = None) -> None:
        """Callbacks restored from the store were counted by an earlier run."""
        for cb in engine.callbacks.callbacks.values():
            key = stamp(cb.callback_id) if stamp is not None else cb.callback_id
            self._cb_seen[key] = (cb.resolved_at is not None, cb.listened_at is not None)

    def _unit(self, unit: str | None) -> str:
        return unit if unit in self.units else NO_UNIT

    def _call(self, pbx: str, rec: CallRecord) -> None:
        unit, kind = self._unit(rec.target_unit), rec.target_kind or "other"
        self.calls.labels(pbx, unit, kind, rec.direction, rec.outcome).inc()
        if not is_offered(rec.direction):
            return
        if rec.short_abandon and rec.outcome == "abandoned":
            self.short_abandons.labels(pbx, unit, kind).inc()
        if rec.outcome == "answered" and rec.answer_seconds is not None:
            self.answer.labels(pbx, unit, kind).observe(rec.answer_seconds)
            if rec.rings_before_answer is not None:
                self.rings.labels(pbx, unit, kind).observe(rec.rings_before_answer)
                if rec.rings_before_answer <= self.ring_limit.get(unit, DEFAULT_RING_LIMIT):
                    self.within_rings.labels(pbx, unit, kind).inc()
        if not_reached_person(rec.target_kind, rec.outcome, rec.overflowed_to_contact_centre):
            self.not_reached.labels(pbx, unit).inc()
        if rec.diverted:
            self.diverted.labels(pbx, unit).inc()
        if rec.outcome == "answered" and rec.queues:
            self._direct(pbx, rec)

    def _direct(self, pbx: str, rec: CallRecord) -> None:
        """An answered inbound call by the queue that answered it first."""
        first = rec.queues[0]
        if first not in self.queues:
            return
        labels = (pbx, first, self.queues[first])
        self.queue_answered.labels(*labels).inc()
        if rec.transferred_to is None:
            self.queue_direct.labels(*labels).inc()

    def _incident(self, pbx: str, inc: Incident) -> None:
        unit = self._unit(inc.unit)
        if inc.kind == "unanswered_ring":
            self.unanswered.labels(pbx, unit).inc()
        elif inc.kind == "missing_forward":
            self.missing.labels(pbx, unit).inc()
        elif inc.kind == "unforwarded_absence" and inc.state == "open":
            self.absences.labels(pbx, unit).inc()

    def _callback(self, pbx: str, change: CallbackChange) -> None:
        cb = change.callback
        unit = self._unit(cb.unit)
        seen = self._cb_seen.get(cb.callback_id)
        if seen is None:
            self.messages.labels(pbx, unit).inc()
            seen = (False, False)
        resolved, listened = seen
        if not resolved and cb.resolved_at is not None:
            state = cb.state(cb.resolved_at)
            if state in ("called_back", "called_back_late"):
                result = "on_time" if state == "called_back" else "late"
                self.resolved.labels(pbx, unit, result).inc()
                self.callback_seconds.labels(pbx, unit).observe(cb.resolved_at - cb.left_at)
        if not listened and cb.listened_at is not None:
            self.listen_seconds.labels(pbx, unit).observe(cb.listened_at - cb.left_at)
        self._cb_seen[cb.callback_id] = (cb.resolved_at is not None, cb.listened_at is not None)
