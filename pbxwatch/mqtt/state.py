"""The retained state payloads: the PBX's availability, each unit's
counters, and what the relay reads of the running engine to make them.

The relay reads the engine through a :class:`LiveView` of plain callables
(run on the event loop, like the engine itself), so it never holds the
engine and the tests can hand it fixed figures.  The day's counts come from
the store, not from memory: a restart keeps them, and they are exactly
what was committed, as the outbox's alerts are.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from pbxwatch.core.clock import EventClock
from pbxwatch.core.engine import Engine
from pbxwatch.core.events import plausible_epoch
from pbxwatch.core.records import iso
from pbxwatch.settings import Settings
from pbxwatch.store import models

#: incident kinds counted per unit and day, and the payload key of each
DAY_COUNTS = {
    "missing_forward": "missing_forwards_today",
    "unanswered_ring": "unanswered_rings_today",
    "unforwarded_absence": "unforwarded_absences_today",
}


@dataclass(frozen=True)
class PbxStatus:
    """Whether pbxwatch sees the PBX: ``online`` once the AMI has logged in
    and the state read after it has given the queues, ``offline`` when the
    connection is lost, before the first login and when pbxwatch stops."""

    state: Literal["online", "offline"]
    since: float  # host time of the change
    reason: str | None = None

    def payload(self, tz: ZoneInfo) -> dict[str, Any]:
        return {"type": "pbx", "state": self.state, "since": iso(self.since, tz),
                "reason": self.reason}  # fmt: skip


@dataclass(frozen=True)
class LiveView:
    """What the relay reads of the running engine.  ``now`` is the PBX time
    (None before the PBX has said it); ``queues`` the queue snapshots at a
    time; ``callbacks`` the pending and overdue callbacks of each unit."""

    now: Callable[[], float | None]
    queues: Callable[[float], dict[str, dict[str, Any]]] = field(default=lambda t: {})
    callbacks: Callable[[float], dict[str, dict[str, int]]] = field(default=lambda t: {})


def engine_view(settings: Settings, engine: Engine, clock: EventClock[Any]) -> LiveView:
    """The live view of ``run``'s engine: the configured queues, and the
    configured units' callbacks."""
    tz = ZoneInfo(settings.timezone)
    names = sorted(settings.directory.queues)
    units = sorted(settings.directory.units)

    def now() -> float | None:
        t = clock.estimate(time.time())
        return t if plausible_epoch(t) else None

    def queues(at: float) -> dict[str, dict[str, Any]]:
        return {name: engine.queues.snapshot(name, at, tz) for name in names}

    def callbacks(at: float) -> dict[str, dict[str, int]]:
        counts = {u: {"callbacks_pending": 0, "callbacks_overdue": 0} for u in units}
        for cb in engine.callbacks.callbacks.values():
            state = cb.state(at)
            if cb.unit in counts and state in ("pending", "overdue"):
                counts[cb.unit][f"callbacks_{state}"] += 1
        return counts

    return LiveView(now, queues, callbacks)


def day_start(t: float, tz: ZoneInfo) -> float:
    """Local midnight of the day ``t`` falls on."""
    d = dt.datetime.fromtimestamp(t, tz).date()
    return dt.datetime.combine(d, dt.time(), tz).timestamp()


async def day_counts(conn: AsyncConnection, start: float, end: float) -> dict[str, Counter[str]]:
    """Incidents of the counted kinds per unit, begun in [start, end)."""
    t = models.Incident
    q = (
        select(t.unit, t.kind, func.count())
        .where(t.started_at >= start, t.started_at < end, t.kind.in_(list(DAY_COUNTS)))
        .group_by(t.unit, t.kind)
    )
    out: dict[str, Counter[str]] = {}
    for unit, kind, n in await conn.execute(q):
        if unit is not None:
            out.setdefault(unit, Counter())[DAY_COUNTS[kind]] = int(n)
    return out


def unit_payload(
    settings: Settings, unit: str, now: float, counts: Counter[str], callbacks: dict[str, int]
) -> dict[str, Any]:
    """The retained ``units/<unit>/state``: the day's counts so far and the
    callbacks open now."""
    tz = ZoneInfo(settings.timezone)
    u = settings.directory.units[unit]
    return {
        "type": "unit",
        "unit": unit,
        "unit_name": u.name,
        "at": iso(now, tz),
        "day": dt.datetime.fromtimestamp(now, tz).date().isoformat(),
        **{key: counts.get(key, 0) for key in DAY_COUNTS.values()},
        "callbacks_pending": callbacks.get("callbacks_pending", 0),
        "callbacks_overdue": callbacks.get("callbacks_overdue", 0),
    }
