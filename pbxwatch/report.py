"""``pbxwatch report``: the annual follow-up of one unit, from the database.

Figures are defined in ``pbxwatch.core.figures``; this module picks the
period (local dates, both inclusive), runs the query and prints a table, CSV
or JSON.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.figures import UnitFigures
from pbxwatch.settings import ConfigError, Settings
from pbxwatch.store.report import gaps_in, unit_period

#: (key, label, kind) in print order; kind says how to show the value.
LINES: list[tuple[str, str, str]] = [
    ("offered", "Offered calls (inkommande)", "int"),
    ("offered_to_extension", "  to a person's extension", "int"),
    ("offered_to_group", "  to a group number", "int"),
    ("offered_to_contact_centre", "  to the contact centre", "int"),
    ("answered", "Answered by a person", "int"),
    ("availability", "Availability (tillgänglighet)", "pct"),
    ("answer_seconds_median", "Answer time, median (s)", "num"),
    ("answer_seconds_p90", "Answer time, 90th percentile (s)", "num"),
    ("rings_before_answer_median", "Rings before answer, median", "num"),
    ("rings_before_answer_p90", "Rings before answer, 90th percentile", "num"),
    ("abandoned", "Abandoned (tappade)", "int"),
    ("short_abandoned", "Short abandons (apart)", "int"),
    ("abandoned_share", "Abandoned share", "pct"),
    ("voicemail_calls", "Calls that left a voicemail message", "int"),
    ("unanswered_rings", "Unanswered rings", "int"),
    ("calls_to_person_not_reached", "Calls to a person ending in voicemail/contact centre", "int"),
    ("diverted", "  of which diverted (hänvisad)", "int"),
    ("missing_forwards", "  of which missing forward (ej hänvisad)", "int"),
    ("missing_forward_share", "Missing forward share", "pct"),
    ("voicemail_messages", "Voicemail messages", "int"),
    ("callbacks_called_back", "  called back on time", "int"),
    ("callbacks_called_back_late", "  called back late", "int"),
    ("callbacks_overdue", "  still open, overdue", "int"),
    ("callbacks_pending", "  still open, not yet due", "int"),
    ("callbacks_deferred", "  deferred (owner away, due after the return)", "int"),
    ("callbacks_exempt", "  exempt (extended absence)", "int"),
    ("callbacks_no_number", "  no number to call", "int"),
    ("callbacks_on_time_share", "Callbacks on time", "pct"),
    ("callback_seconds_median", "Time to call back, median (min)", "minutes"),
    ("listened", "Messages listened to", "int"),
    ("listen_seconds_median", "Time to listen, median (min)", "minutes"),
    ("unstaffed_minutes", "Group number unstaffed in phone hours (min)", "num"),
    ("contact_centre_answered", "Contact centre: answered", "int"),
    ("direct_resolution", "Contact centre: answered without transfer", "pct"),
    ("blind_gaps", "Gaps pbxwatch saw nothing of (AMI down, restarts)", "int"),
    ("blind_minutes", "  minutes in all", "num"),
]


@dataclass(frozen=True)
class Report:
    site: str
    unit: str
    unit_name: str
    date_from: dt.date
    date_to: dt.date
    generated_at: float
    figures: UnitFigures
    #: stretches pbxwatch saw nothing of in the period: (from, to, why)
    gaps: tuple[tuple[float, float, str], ...] = ()

    @property
    def blind_seconds(self) -> float:
        return sum(b - a for a, b, _ in self.gaps)

    def flat(self) -> dict[str, Any]:
        """One value per line key (the CSV/table shape)."""
        f = self.figures
        out: dict[str, Any] = f.to_json()
        for kind in ("extension", "group", "contact_centre"):
            out[f"offered_to_{kind}"] = f.offered_by_target.get(kind, 0)
        for state, n in f.callbacks.items():
            out[f"callbacks_{state}"] = n
        out["unstaffed_minutes"] = round(f.unstaffed_seconds / 60.0, 1)
        out["blind_gaps"] = len(self.gaps)
        out["blind_minutes"] = round(self.blind_seconds / 60.0, 1)
        return out

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "site": self.site,
            "unit": self.unit,
            "unit_name": self.unit_name,
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "generated_at": dt.datetime.fromtimestamp(self.generated_at, tz).isoformat(),
            "figures": self.figures.to_json(),
            "gaps": [{"from": dt.datetime.fromtimestamp(a, tz).isoformat(),
                      "to": dt.datetime.fromtimestamp(b, tz).isoformat(),
                      "seconds": round(b - a, 1), "reason": why}
                     for a, b, why in self.gaps],
        }  # fmt: skip


def period(date_from: dt.date, date_to: dt.date, tz: ZoneInfo) -> tuple[float, float]:
    """[first day 00:00, day after the last 00:00) in local time."""
    if date_to < date_from:
        raise ConfigError(f"report: --to {date_to} is before --from {date_from}")
    start = dt.datetime.combine(date_from, dt.time(), tz)
    end = dt.datetime.combine(date_to + dt.timedelta(days=1), dt.time(), tz)
    return start.timestamp(), end.timestamp()


async def build(
    engine: AsyncEngine,
    settings: Settings,
    unit: str,
    date_from: dt.date,
    date_to: dt.date,
    now: float,
) -> Report:
    units = settings.directory.units
    if unit not in units:
        raise ConfigError(f"report: unknown unit {unit!r}; configured: {', '.join(sorted(units))}")
    start, end = period(date_from, date_to, ZoneInfo(settings.timezone))
    figures = await unit_period(engine, settings, unit, start, end, now)
    gaps = tuple(await gaps_in(engine, start, min(end, now)))
    return Report(settings.site, unit, units[unit].name, date_from, date_to, now, figures, gaps)


def _show(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100.0 * value:.1f} %"
    if kind == "minutes":
        return f"{value / 60.0:.1f}"
    if kind == "num":
        return f"{value:.1f}"
    return str(value)


def render(report: Report, fmt: str, tz: ZoneInfo) -> str:
    if fmt == "json":
        return json.dumps(report.to_json(tz), ensure_ascii=False, indent=2) + "\n"
    flat = report.flat()
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["unit", "from", "to", "figure", "value"])
        for key, _label, _kind in LINES:
            value = flat[key]
            writer.writerow([report.unit, report.date_from, report.date_to, key,
                             "" if value is None else value])  # fmt: skip
        return buf.getvalue()
    title = f"{report.unit_name} ({report.unit}), {report.date_from} – {report.date_to}"
    width = max(len(label) for _, label, _ in LINES)
    lines = [title, "=" * len(title)]
    lines += [f"{label:<{width}}  {_show(flat[key], kind):>10}" for key, label, kind in LINES]
    if report.gaps:
        lines += ["", "pbxwatch was blind in this period; calls then may be missing or "
                  "incomplete:"]  # fmt: skip
        for a, b, why in report.gaps:
            start = dt.datetime.fromtimestamp(a, tz).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"  {start}  {(b - a) / 60.0:7.1f} min  {why}")
    return "\n".join(lines) + "\n"
