"""What a unit's daily or weekly digest says, read from the store.

The figures are the report's (``pbxwatch.store.report.unit_period``) with
the unit's targets; beside them, the missing forwards per person and the
callbacks that were late, are overdue, or are deferred (left while their
owner was away for a listed reason, no deadline until the return; the
reason itself is personal and not said).  Caller numbers are the unit's
own (only its chief and recipients get its digest), masked unless the unit
has ``show_caller_numbers``.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.numbers import is_pseudonym, mask
from pbxwatch.core.records import iso
from pbxwatch.settings import Settings
from pbxwatch.store import models
from pbxwatch.store.report import unit_period


def bounds(first: dt.date, last: dt.date, tz: ZoneInfo) -> tuple[float, float]:
    start = dt.datetime.combine(first, dt.time(0), tz).timestamp()
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tz).timestamp()
    return start, end


def shown_number(settings: Settings, unit: str, number: str | None) -> str | None:
    if number is None or is_pseudonym(number):
        return None
    u = settings.directory.units.get(unit)
    return number if u is not None and u.show_caller_numbers else mask(number)


async def digest_data(
    engine: AsyncEngine,
    settings: Settings,
    unit: str,
    kind: str,
    first: dt.date,
    last: dt.date,
    now: float,
) -> dict[str, Any] | None:
    """The digest of ``unit`` for the local days ``first``..``last``, or
    ``None`` when the store holds no call of the unit in them (pbxwatch was
    not running then: no digest of nothing)."""
    tz = ZoneInfo(settings.timezone)
    start, end = bounds(first, last, tz)
    c = models.Call
    async with engine.connect() as conn:
        calls = await conn.scalar(
            select(func.count()).where(c.unit == unit, c.started_at >= start, c.started_at < end)
        )
        if not calls:
            return None
        i = models.Incident
        misses = Counter(
            ext
            for (ext,) in await conn.execute(
                select(i.extension).where(
                    i.kind == "missing_forward",
                    i.unit == unit,
                    i.started_at >= start,
                    i.started_at < end,
                )
            )
        )
        cb = models.Callback
        rows = (
            await conn.execute(
                select(
                    cb.callback_id,
                    cb.owner,
                    cb.number,
                    cb.left_at,
                    cb.deadline,
                    cb.resolved_at,
                    cb.deferred_reason,
                    cb.returned_at,
                )
                .where(
                    cb.unit == unit,
                    cb.left_at >= start,
                    cb.left_at < end,
                    cb.deadline.is_not(None) | cb.deferred_reason.is_not(None),
                )
                .order_by(cb.left_at)
            )
        ).all()
    figures = await unit_period(engine, settings, unit, start, end, now)
    people = settings.directory.people
    callbacks = []
    for r in rows:
        # as things stood at ``now``: what the store learnt later (a callback
        # made, the owner back) is not yet so, and the digest made again for
        # the same moment says the same
        resolved = r.resolved_at if r.resolved_at is not None and r.resolved_at <= now else None
        back = r.returned_at is not None and r.returned_at <= now
        if r.deferred_reason is not None and not back and resolved is None:
            state = "deferred"  # the owner away: no deadline until they are back
        elif r.deadline is None:
            continue
        elif resolved is not None and resolved > r.deadline:
            state = "late"
        elif resolved is None and r.deadline < now:
            state = "overdue"
        else:
            continue
        callbacks.append(
            {
                "callback_id": r.callback_id,
                "state": state,
                "owner": people[r.owner].name if r.owner in people else (r.owner or ""),
                "left_at": iso(r.left_at, tz),
                "deadline": None if state == "deferred" else iso(r.deadline, tz),
                "caller": shown_number(settings, unit, r.number),
            }
        )
    targets = settings.targets.model_dump()
    return {
        "kind": kind,
        "unit": unit,
        "unit_name": settings.directory.units[unit].name,
        "first": first.isoformat(),
        "last": last.isoformat(),
        "figures": figures.to_json(),
        "targets": targets,
        "missing_forwards": [
            {"extension": ext, "name": people[ext].name if ext in people else f"{ext}", "count": n}
            for ext, n in sorted(misses.items(), key=lambda kv: (-kv[1], kv[0] or ""))
        ],
        "callbacks": callbacks,
    }
