"""The report document: every unit asked for, this period and the one before.

The JSON shape (``--format json`` prints it too):

- one unit: the ``pbxwatch.report.Report`` JSON with ``details``
  (``pbxwatch.reports.details``), ``targets`` and ``previous`` (the same
  for the period before);
- ``--unit all``: ``{"site", "from", "to", "previous_from",
  "previous_to", "generated_at", "targets", "units": [one unit's shape, ...]}``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.report import build, period
from pbxwatch.reports.details import unit_details
from pbxwatch.settings import ConfigError, Settings

ALL = "all"


def _month_end(d: dt.date) -> dt.date:
    return (d.replace(day=1) + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)


def _add_months(d: dt.date, months: int) -> dt.date:
    n = d.year * 12 + d.month - 1 + months
    return dt.date(n // 12, n % 12 + 1, 1)


def previous_period(date_from: dt.date, date_to: dt.date) -> tuple[dt.date, dt.date]:
    """The period of the same length just before: whole calendar months
    (a year, a quarter) shift by their number of months, any other period
    by its number of days."""
    if date_from.day == 1 and date_to == _month_end(date_to):
        months = (date_to.year - date_from.year) * 12 + date_to.month - date_from.month + 1
        start = _add_months(date_from, -months)
        return start, date_from - dt.timedelta(days=1)
    days = (date_to - date_from).days + 1
    return date_from - dt.timedelta(days=days), date_from - dt.timedelta(days=1)


async def _one(
    engine: AsyncEngine,
    settings: Settings,
    unit: str,
    date_from: dt.date,
    date_to: dt.date,
    now: float,
) -> dict[str, Any]:
    tz = ZoneInfo(settings.timezone)
    report = await build(engine, settings, unit, date_from, date_to, now)
    out = report.to_json(tz)
    start, end = period(date_from, date_to, tz)
    limit = settings.directory.units[unit].answer_within_rings
    out["details"] = await unit_details(engine, unit, limit, start, end, tz)
    return out


async def unit_document(
    engine: AsyncEngine,
    settings: Settings,
    unit: str,
    date_from: dt.date,
    date_to: dt.date,
    now: float,
) -> dict[str, Any]:
    """One unit's JSON, with the previous period under ``previous``."""
    prev_from, prev_to = previous_period(date_from, date_to)
    out = await _one(engine, settings, unit, date_from, date_to, now)
    out["targets"] = settings.targets.model_dump()
    out["previous"] = await _one(engine, settings, unit, prev_from, prev_to, now)
    return out


async def document(
    engine: AsyncEngine,
    settings: Settings,
    unit: str,
    date_from: dt.date,
    date_to: dt.date,
    now: float,
) -> dict[str, Any]:
    """One unit's JSON, or with ``unit`` "all" every configured unit's."""
    units = settings.directory.units
    if unit != ALL:
        if unit not in units:
            raise ConfigError(
                f"report: unknown unit {unit!r}; configured: {', '.join(sorted(units))} (or all)"
            )
        return await unit_document(engine, settings, unit, date_from, date_to, now)
    tz = ZoneInfo(settings.timezone)
    prev_from, prev_to = previous_period(date_from, date_to)
    return {
        "site": settings.site,
        "from": date_from.isoformat(),
        "to": date_to.isoformat(),
        "previous_from": prev_from.isoformat(),
        "previous_to": prev_to.isoformat(),
        "generated_at": dt.datetime.fromtimestamp(now, tz).isoformat(),
        "targets": settings.targets.model_dump(),
        "units": [await unit_document(engine, settings, u, date_from, date_to, now) for u in units],
    }


def units_of(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-unit parts of a document of either shape."""
    return list(doc["units"]) if "units" in doc else [doc]


def values(unit: dict[str, Any]) -> dict[str, Any]:
    """One period's figures as one value per row key (what the tables show)."""
    f = unit["figures"]
    d = unit["details"]
    out: dict[str, Any] = dict(f)
    for state, n in f["callbacks"].items():
        out[f"callbacks_{state}"] = n
    out["unstaffed_minutes"] = round(f["unstaffed_seconds"] / 60.0, 1)
    out["blind_gaps"] = len(unit["gaps"])
    out["blind_minutes"] = round(sum(g["seconds"] for g in unit["gaps"]) / 60.0, 1)
    out["answered_within_rings"] = d["answered_within_rings"]
    out["answered_within_rings_share"] = d["answered_within_rings_share"]
    return out
