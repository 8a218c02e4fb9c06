"""Figures the annual report shows beyond ``pbxwatch.core.figures``,
computed from the stored rows with the same selection as
``pbxwatch.store.report`` (calls by the unit of their target and the day
they started; missing forwards by the day the incident started)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.figures import not_reached_person, share
from pbxwatch.store import models

#: answer-time buckets, seconds: [lo, hi)
ANSWER_EDGES: tuple[float, ...] = (0.0, 10.0, 20.0, 30.0, 60.0, 120.0)
#: ring buckets: 1, 2, ... , RING_TOP or more
RING_TOP = 6


def _answer_buckets(times: list[float]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    edges = [*ANSWER_EDGES, None]
    for lo, hi in itertools.pairwise(edges):
        assert lo is not None
        n = sum(1 for t in times if t >= lo and (hi is None or t < hi))
        label = f"{lo:g}–{hi:g} s" if hi is not None else f"≥ {lo:g} s"
        out.append({"label": label, "from": lo, "to": hi, "calls": n})
    return out


def _ring_buckets(rings: list[int]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for r in range(1, RING_TOP + 1):
        top = r == RING_TOP
        n = sum(1 for x in rings if (x >= r if top else x == r))
        out.append({"label": f"{r}+" if top else str(r), "rings": r, "calls": n})
    return out


def _month_starts(start: float, end: float, tz: ZoneInfo) -> list[dt.date]:
    first = dt.datetime.fromtimestamp(start, tz).date().replace(day=1)
    last = dt.datetime.fromtimestamp(end - 1, tz).date()
    months: list[dt.date] = []
    m = first
    while m <= last:
        months.append(m)
        m = (m + dt.timedelta(days=32)).replace(day=1)
    return months


async def unit_details(
    engine: AsyncEngine, unit: str, rings_limit: int, start: float, end: float, tz: ZoneInfo
) -> dict[str, Any]:
    """The unit's answered-within-N-rings share, answer-time and ring
    distributions of answered inbound calls, and missing forwards per month
    (missing forwards / calls to a person that ended in voicemail or the
    contact centre, by the local month the call started)."""
    c = models.Call
    q = select(
        c.started_at,
        c.direction,
        c.target_kind,
        c.outcome,
        c.answer_seconds,
        c.rings_before_answer,
        c.overflowed_to_contact_centre,
    ).where(c.unit == unit, c.started_at >= start, c.started_at < end)
    i = models.Incident
    qi = select(i.started_at).where(
        i.unit == unit, i.kind == "missing_forward", i.started_at >= start, i.started_at < end
    )
    async with engine.connect() as conn:
        calls = (await conn.execute(q)).all()
        missing = [row.started_at for row in await conn.execute(qi)]
    times: list[float] = []
    rings: list[int] = []
    answered = 0
    months = _month_starts(start, end, tz)
    reached: dict[dt.date, int] = dict.fromkeys(months, 0)
    missed: dict[dt.date, int] = dict.fromkeys(months, 0)

    def month_of(t: float) -> dt.date:
        return dt.datetime.fromtimestamp(t, tz).date().replace(day=1)

    for row in calls:
        if row.direction != "inbound":
            continue
        if row.outcome == "answered":
            answered += 1
            if row.answer_seconds is not None:
                times.append(row.answer_seconds)
            if row.rings_before_answer is not None:
                rings.append(row.rings_before_answer)
        if not_reached_person(row.target_kind, row.outcome, row.overflowed_to_contact_centre):
            reached[month_of(row.started_at)] += 1
    for t in missing:
        missed[month_of(t)] += 1
    within = sum(1 for r in rings if r <= rings_limit)
    within_share = share(within, answered)
    return {
        "answer_within_rings": rings_limit,
        "answered_within_rings": within,
        "answered_within_rings_share": None if within_share is None else round(within_share, 4),
        "answer_time_distribution": _answer_buckets(times),
        "rings_distribution": _ring_buckets(rings),
        "missing_forward_by_month": [
            {
                "month": m.strftime("%Y-%m"),
                "calls_to_person_not_reached": reached[m],
                "missing_forwards": missed[m],
                "missing_forward_share": None
                if (s := share(missed[m], reached[m])) is None
                else round(s, 4),
            }
            for m in months
        ],
    }
