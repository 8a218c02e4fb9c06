"""Alerts to unit chiefs, made from the core's records; pure.

Every alert has a stable ``alert_id`` built from the PBX's own identifiers
and the PBX time (never from wall clock or counters), so a replay or a
restart makes the same ids again: the outbox keeps one row per id and a
consumer can de-duplicate on it.

Kinds:

- ``callback_due_soon`` / ``callback_overdue``: from the callback reminders;
- ``missing_forward``: rate limited per unit: the first miss of a window
  (``digest_seconds``, aligned to the clock) alerts at once; the rest of
  that window come as one digest when it closes;
- ``unforwarded_absence`` and ``group_unstaffed``: one alert when the
  condition opens and a matching ``resolved`` one when it ends.

An overdue alert claims only what pbxwatch saw: when the time between the
message and the deadline overlaps a gap (a lost connection, pbxwatch
itself not running), the callback may have been made unseen.  The alert is
sent all the same (holding it would hide a real miss), but says so in both
languages, and its data carries ``unsure: "ami_gap"`` with the gaps.  So
does a missing forward whose call straddled a gap: a diversion set, or the
ring's real end, may have gone unseen (``unsure`` also marks its entry in
a digest).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pbxwatch.core.callbacks import CallbackEvent
from pbxwatch.core.directory import Directory
from pbxwatch.core.gaps import AmiGap
from pbxwatch.core.incidents import Incident
from pbxwatch.core.numbers import is_pseudonym, mask
from pbxwatch.core.records import iso

AlertKind = Literal[
    "callback_due_soon",
    "callback_overdue",
    "missing_forward",
    "unforwarded_absence",
    "group_unstaffed",
]
Severity = Literal["info", "warning", "critical"]


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: str
    kind: AlertKind
    state: Literal["firing", "resolved"]
    unit: str | None
    severity: Severity
    created_at: float
    text_sv: str
    text_en: str
    data: dict[str, Any] = field(default_factory=dict)
    unit_name: str | None = None
    created_iso: str = ""

    def payload(self) -> dict[str, Any]:
        """The JSON published on ``<prefix>/<site>/units/<unit>/alerts``."""
        return {
            "alert_id": self.alert_id,
            "kind": self.kind,
            "state": self.state,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "severity": self.severity,
            "created_at": self.created_iso,
            "text": {"sv": self.text_sv, "en": self.text_en},
            "data": self.data,
        }


def _hm(t: float, tz: ZoneInfo) -> str:
    return dt.datetime.fromtimestamp(t, tz).strftime("%H:%M")


def _day_hm(t: float, now: float, tz: ZoneInfo) -> str:
    """09:12, or 2026-11-24 09:12 when not the same day as ``now``."""
    a, b = dt.datetime.fromtimestamp(t, tz), dt.datetime.fromtimestamp(now, tz)
    return a.strftime("%H:%M") if a.date() == b.date() else a.strftime("%Y-%m-%d %H:%M")


#: gaps remembered for judging overdue alerts (older ones cover no deadline)
MAX_GAPS = 64

#: said of a missing forward whose call straddled a gap
UNSURE_FORWARD_SV = (
    " (samtalet pågick medan pbxwatch inte såg växeln: en hänvisning kan ha missats)"
)
UNSURE_FORWARD_EN = (
    " (the call was in progress while pbxwatch could not see the PBX: "
    "a diversion may have been missed)"
)


@dataclass
class _Window:
    start: float
    first_sent: bool = False
    more: list[dict[str, Any]] = field(default_factory=list)


class AlertMaker:
    def __init__(self, directory: Directory, tz: ZoneInfo, digest_seconds: float = 1800.0) -> None:
        self.directory = directory
        self.tz = tz
        self.digest = digest_seconds
        self._windows: dict[str, _Window] = {}  # unit -> its current missing-forward window
        #: stretches pbxwatch saw nothing for (recent ones), and one still under way
        self.gaps: list[tuple[float, float]] = []
        self.blind_since: float | None = None

    # ------------------------------------------------------------ inputs

    @property
    def windows_open(self) -> bool:
        """A missing-forward window is open: time alone may close it."""
        return bool(self._windows)

    def on_records(self, records: list[Any], now: float) -> list[Alert]:
        out: list[Alert] = []
        for rec in records:
            if isinstance(rec, AmiGap):
                self.gaps = [*self.gaps[-(MAX_GAPS - 1) :], (rec.started_at, rec.ended_at)]
            elif isinstance(rec, CallbackEvent):
                out.append(self._callback(rec))
            elif isinstance(rec, Incident):
                out.extend(self._incident(rec))
        out.extend(self.tick(now))
        return out

    def dump(self) -> dict[str, Any]:
        """For a checkpoint: the open missing-forward windows and the gaps."""
        return {"windows": {u: asdict(w) for u, w in self._windows.items()},
                "gaps": [list(g) for g in self.gaps]}  # fmt: skip

    def load(self, state: Mapping[str, Any]) -> None:
        self._windows = {u: _Window(**w) for u, w in state["windows"].items()}
        self.gaps = [(float(a), float(b)) for a, b in state["gaps"]][-MAX_GAPS:]

    def _alert(self, **fields: Any) -> Alert:
        """An alert with the unit's name and its time in words filled in."""
        unit = self.directory.units.get(fields["unit"] or "")
        return Alert(**fields, unit_name=unit.name if unit else None,
                     created_iso=iso(fields["created_at"], self.tz) or "")  # fmt: skip

    def tick(self, now: float) -> list[Alert]:
        """Send the digests of missing-forward windows that have closed."""
        out: list[Alert] = []
        for unit, w in list(self._windows.items()):
            if now >= w.start + self.digest:
                del self._windows[unit]
                if w.more:
                    out.append(self._digest(unit, w))
        return out

    # ------------------------------------------------------------ kinds

    def _person(self, ext: str | None) -> str:
        person = self.directory.people.get(ext or "")
        return person.name if person else f"anknytning {ext}"

    def _caller(self, number: str | None, unit: str | None) -> str | None:
        if number is None or is_pseudonym(number):  # none, or stored pseudonymised
            return None
        shown = self.directory.units.get(unit or "")
        return number if shown is not None and shown.show_caller_numbers else mask(number)

    def _callback(self, ev: CallbackEvent) -> Alert:
        cb, tz = ev.callback, self.tz
        who = self._person(cb.owner)
        left, due = _day_hm(cb.left_at, ev.at, tz), _day_hm(cb.deadline, ev.at, tz)
        if ev.kind == "callback_due_soon":
            sv = f"Röstmeddelande till {who} {left} har inte ringts tillbaka; tidsgräns {due}"
            en = f"Voicemail for {who} left at {left} has not been called back; deadline {due}"
        else:
            sv = (
                f"Röstmeddelande till {who} {left} har inte ringts tillbaka; "
                f"tidsgränsen {due} har passerat"
            )
            en = f"Voicemail for {who} left at {left} was not called back by the deadline {due}"
        unseen = self._blind_between(cb.left_at, ev.at)
        if unseen and ev.kind == "callback_overdue":
            sv += " (kan ha ringts tillbaka medan pbxwatch inte såg växeln)"
            en += " (may have been called back while pbxwatch could not see the PBX)"
        alert = self._alert(
            alert_id=f"{ev.kind}:{cb.callback_id}",
            kind=ev.kind,
            state="firing",
            unit=cb.unit,
            severity="info" if ev.kind == "callback_due_soon" else "warning",
            created_at=ev.at,
            text_sv=sv,
            text_en=en,
            data={
                "callback_id": cb.callback_id,
                "mailbox": cb.mailbox,
                "owner": cb.owner,
                "owner_name": self.directory.people[cb.owner].name
                if cb.owner in self.directory.people
                else None,
                "caller": self._caller(cb.number, cb.unit),
                "left_at": iso(cb.left_at, tz),
                "deadline": iso(cb.deadline, tz),
            },
        )
        if unseen and ev.kind == "callback_overdue":
            alert.data["unsure"] = "ami_gap"
            alert.data["gaps"] = [{"from": iso(a, tz), "to": iso(b, tz) if b is not None else None}
                                  for a, b in unseen]  # fmt: skip
        return alert

    def _blind_between(self, start: float, end: float) -> list[tuple[float, float | None]]:
        """The gaps (and the one under way) that overlap ``start``..``end``."""
        out: list[tuple[float, float | None]] = [
            (a, b) for a, b in self.gaps if a < end and b > start
        ]
        if self.blind_since is not None and self.blind_since < end:
            out.append((self.blind_since, None))
        return out

    def _incident(self, inc: Incident) -> list[Alert]:
        if inc.kind == "missing_forward":
            return self._missing_forward(inc)
        if inc.kind == "unforwarded_absence":
            return [self._absence(inc)]
        if inc.kind == "group_unstaffed":
            return [self._unstaffed(inc)]
        return []

    def _missing_forward(self, inc: Incident) -> list[Alert]:
        unit = inc.unit or "-"
        start = inc.started_at - inc.started_at % self.digest
        w = self._windows.get(unit)
        if w is None or w.start != start:
            w = self._windows[unit] = _Window(start)
        miss = {"extension": inc.extension, "name": self._person(inc.extension),
                "call_id": inc.call_id, "at": iso(inc.started_at, self.tz),
                "landed_in": inc.details.get("landed_in")}  # fmt: skip
        if w.first_sent:
            w.more.append(miss)
            return []
        w.first_sent = True
        who, at = self._person(inc.extension), _hm(inc.started_at, self.tz)
        where_sv = "kontaktcenter" if miss["landed_in"] == "contact_centre" else "röstbrevlådan"
        where_en = "the contact centre" if miss["landed_in"] == "contact_centre" else "voicemail"
        unsure = inc.details.get("unsure") == "ami_gap"
        if unsure:
            miss["unsure"] = "ami_gap"
        sv_tail = UNSURE_FORWARD_SV if unsure else ""
        en_tail = UNSURE_FORWARD_EN if unsure else ""
        return [self._alert(
            alert_id=f"missing_forward:{unit}:{start:.0f}",
            kind="missing_forward", state="firing", unit=inc.unit, severity="info",
            created_at=inc.started_at,
            text_sv=f"Samtal till {who} {at} ringde utan svar och gick till {where_sv}: "
                    f"telefonen var inte hänvisad{sv_tail}",
            text_en=f"A call to {who} at {at} rang unanswered and went to {where_en}: "
                    f"no diversion was set{en_tail}",
            data={"misses": [miss], "window_start": iso(start, self.tz),
                  "window_minutes": self.digest / 60,
                  **({"unsure": "ami_gap"} if unsure else {})},
        )]  # fmt: skip

    def _digest(self, unit: str, w: _Window) -> Alert:
        n = len(w.more)
        until = _hm(w.start + self.digest, self.tz)
        names = sorted({str(m["name"]) for m in w.more})
        return self._alert(
            alert_id=f"missing_forward:{unit}:{w.start:.0f}:digest",
            kind="missing_forward", state="firing", unit=None if unit == "-" else unit,
            severity="info", created_at=w.start + self.digest,
            text_sv=f"Ytterligare {n} samtal till ej hänvisade telefoner fram till {until} "
                    f"({', '.join(names)})",
            text_en=f"{n} more {'call' if n == 1 else 'calls'} to phones without a diversion "
                    f"until {until} "
                    f"({', '.join(names)})",
            data={"misses": w.more, "window_start": iso(w.start, self.tz),
                  "window_minutes": self.digest / 60},
        )  # fmt: skip

    def _absence(self, inc: Incident) -> Alert:
        who = self._person(inc.extension)
        since = _hm(inc.started_at, self.tz)
        if inc.state == "open":
            sv = f"{who}s telefon är inte nåbar sedan {since} och ingen hänvisning är satt"
            en = f"{who}'s phone has been unreachable since {since} and no diversion is set"
        else:
            sv = f"{who}s telefon är nåbar igen eller hänvisad (sedan {since})"
            en = f"{who}'s phone is reachable again or diverted (was out since {since})"
        return self._lasting(inc, "unforwarded_absence", sv, en, {"extension": inc.extension})

    def _unstaffed(self, inc: Incident) -> Alert:
        queue, since = inc.queue or "-", _hm(inc.started_at, self.tz)
        if inc.state == "open":
            sv = f"Ingen är tillgänglig på gruppnumret {queue} sedan {since} (telefontid)"
            en = f"Nobody is available on the group number {queue} since {since} (phone hours)"
        else:
            sv = f"Gruppnumret {queue} är bemannat igen (obemannat sedan {since})"
            en = f"The group number {queue} is staffed again (unstaffed since {since})"
        return self._lasting(inc, "group_unstaffed", sv, en, {"queue": inc.queue})

    def _lasting(self, inc: Incident, kind: AlertKind, sv: str, en: str,
                 data: dict[str, Any]) -> Alert:  # fmt: skip
        firing = inc.state == "open"
        return self._alert(
            alert_id=f"{inc.incident_id}:{'open' if firing else 'resolved'}",
            kind=kind,
            state="firing" if firing else "resolved",
            unit=inc.unit,
            severity="warning" if firing else "info",
            created_at=inc.started_at if firing else (inc.ended_at or inc.started_at),
            text_sv=sv,
            text_en=en,
            data={**data, "incident_id": inc.incident_id,
                  "since": iso(inc.started_at, self.tz), "until": iso(inc.ended_at, self.tz)},
        )  # fmt: skip
