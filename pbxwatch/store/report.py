"""Read one unit's period out of the database into the guideline figures.

The counting itself is ``pbxwatch.core.figures`` (shared with the metrics);
this module only selects the rows: calls by the unit of their target and
the day they started, callbacks by the day the message was left, unstaffed
time clipped to the period.
"""

from __future__ import annotations

import math

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from pbxwatch.core.figures import CallbackFacts, CallFacts, UnitFigures, overlap, unit_figures
from pbxwatch.settings import Settings
from pbxwatch.store import models

_CALL_COLUMNS = (
    "direction",
    "target_kind",
    "outcome",
    "answer_seconds",
    "rings_before_answer",
    "short_abandon",
    "diverted",
    "overflowed_to_contact_centre",
    "transferred_to",
    "queues",
)


def _call_facts(row: object) -> CallFacts:
    values = {name: getattr(row, name) for name in _CALL_COLUMNS}
    values["queues"] = tuple(values["queues"] or ())
    return CallFacts(**values)


async def unit_period(
    engine: AsyncEngine, settings: Settings, unit: str, start: float, end: float, now: float
) -> UnitFigures:
    """The figures of ``unit`` for calls and messages in [start, end)."""
    async with engine.connect() as conn:
        calls = await _calls(conn, unit, start, end)
        incidents = await _incident_counts(conn, unit, start, end)
        callbacks = await _callbacks(conn, unit, start, end)
        unstaffed = await _unstaffed_seconds(conn, unit, start, min(end, now))
        cc_queues = {
            name
            for name, q in settings.directory.queues.items()
            if q.kind == "contact_centre" and q.unit == unit
        }
        cc_calls = await _answered_by_queues(conn, cc_queues, start, end) if cc_queues else []
    return unit_figures(
        calls,
        callbacks,
        unanswered_rings=incidents.get("unanswered_ring", 0),
        missing_forwards=incidents.get("missing_forward", 0),
        unstaffed_seconds=unstaffed,
        contact_centre_calls=cc_calls,
        now=now,
    )


async def _calls(conn: AsyncConnection, unit: str, start: float, end: float) -> list[CallFacts]:
    t = models.Call
    cols = [getattr(t, name) for name in _CALL_COLUMNS]
    q = select(*cols).where(t.unit == unit, t.started_at >= start, t.started_at < end)
    return [_call_facts(row) for row in await conn.execute(q)]


async def _incident_counts(
    conn: AsyncConnection, unit: str, start: float, end: float
) -> dict[str, int]:
    t = models.Incident
    q = (
        select(t.kind, func.count())
        .where(t.unit == unit, t.started_at >= start, t.started_at < end)
        .group_by(t.kind)
    )
    return {kind: int(n) for kind, n in await conn.execute(q)}


async def _callbacks(
    conn: AsyncConnection, unit: str, start: float, end: float
) -> list[CallbackFacts]:
    t = models.Callback
    q = select(
        t.left_at,
        t.deadline,
        t.has_number,
        t.exempt_reason,
        t.resolved_at,
        t.listened_at,
        t.deferred_reason,
        t.returned_at,
    ).where(t.unit == unit, t.left_at >= start, t.left_at < end)
    return [
        CallbackFacts(
            left_at=row.left_at,
            deadline=row.deadline,
            has_number=row.has_number,
            exempt=row.exempt_reason is not None,
            resolved_at=row.resolved_at,
            listened_at=row.listened_at,
            deferred_until=None
            if row.deferred_reason is None
            else math.inf
            if row.returned_at is None
            else row.returned_at,
        )
        for row in await conn.execute(q)
    ]


async def _unstaffed_seconds(conn: AsyncConnection, unit: str, start: float, end: float) -> float:
    """Unstaffed time of the unit's queues inside [start, end); an interval
    still open counts up to ``end``."""
    t = models.UnstaffedInterval
    q = select(t.start, t.end).where(
        t.unit == unit, t.start < end, or_(t.end.is_(None), t.end > start)
    )
    return sum(
        overlap(row.start, end if row.end is None else row.end, start, end)
        for row in await conn.execute(q)
    )


async def gaps_in(engine: AsyncEngine, start: float, end: float) -> list[tuple[float, float, str]]:
    """The AMI gaps overlapping [start, end), clipped to it, oldest first:
    (from, to, why).  A year's figures with a blind hour in them say so."""
    t = models.AmiGap
    q = (
        select(t.started_at, t.ended_at, t.reason)
        .where(t.started_at < end, or_(t.ended_at.is_(None), t.ended_at > start))
        .order_by(t.started_at)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(q)).all()
    return [(max(a, start), min(end if b is None else b, end), why) for a, b, why in rows]


async def _answered_by_queues(
    conn: AsyncConnection, queues: set[str], start: float, end: float
) -> list[CallFacts]:
    """Inbound calls in the period that one of ``queues`` answered first."""
    t = models.Call
    cols = [getattr(t, name) for name in _CALL_COLUMNS]
    q = select(*cols).where(
        and_(t.direction == "inbound", t.outcome == "answered"),
        t.started_at >= start,
        t.started_at < end,
    )
    facts = [_call_facts(row) for row in await conn.execute(q)]
    return [c for c in facts if c.queues and c.queues[0] in queues]
