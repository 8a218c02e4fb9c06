"""Expectations counted from the simulator's own record of a day and the
configuration alone (never from pbxwatch's output): shared by the whole-day
test of the core and the report test of the store."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimCall, SimDay

DAY = dt.date(2026, 11, 24)  # a Tuesday, no holiday near
INBOUND_KINDS = ("direct_answered", "direct_abandoned", "direct_busy", "direct_unanswered",
                 "direct_diverted", "queue")  # fmt: skip
NOT_REACHED_KINDS = ("direct_busy", "direct_unanswered", "direct_diverted")


def deadline(settings: Settings, owner: str, left_at: float, tz: dt.tzinfo) -> float:
    """For a message left on Tuesday DAY, by the owner's unit's policy."""
    unit = settings.directory.units[settings.directory.people[owner].unit]
    policy = unit.callback_policy
    local = dt.datetime.fromtimestamp(left_at, tz)
    close = dt.datetime.combine(DAY, unit.phone_hours.close, tz)
    if policy.deadline == "same_working_day":
        return (close if local < close else close + dt.timedelta(days=1)).timestamp()
    return (close + dt.timedelta(days=policy.working_days)).timestamp()  # Thu; no holiday


def callback_states(settings: Settings, day: SimDay, now: float) -> dict[int, str]:
    """The state of each message's callback (by call index) at ``now``."""
    reasons = settings.diversion.extended_absence_reasons
    called = callbacks_made(day)
    out: dict[int, str] = {}
    for i, call in enumerate(day.calls):
        if not call.mailbox:
            continue
        owner, left = call.target, call.end
        away = next((d for d in day.diversions if d.ext == owner and d.start <= left < d.end),
                    None)  # fmt: skip
        due = deadline(settings, owner, left, day.tz)
        if away and away.state == "xa" and any(w in away.message.lower() for w in reasons):
            # deferred: the deadline counts from the return (the diversion's end)
            if away.end > now or (i in called and called[i] <= away.end):
                out[i] = "called_back" if i in called and called[i] <= now else "deferred"
                continue
            due = deadline(settings, owner, away.end, day.tz)
        if i in called:
            out[i] = "called_back" if called[i] <= due else "called_back_late"
        else:
            out[i] = "overdue" if now > due else "pending"
    return out


def callbacks_made(day: SimDay) -> dict[int, float]:
    """When each message was called back (the callback call's start)."""
    return {c.callback_for: c.start for c in day.calls if c.callback_for is not None}


def listened_at(day: SimDay, message: SimCall) -> float | None:
    """The end of the owner's first voicemail session after the message."""
    return next((c.end for c in day.calls
                 if c.kind == "listen" and c.caller == message.target and c.end > message.end),
                None)  # fmt: skip


def target_unit(settings: Settings, call: SimCall) -> str:
    d = settings.directory
    return d.queues[call.target].unit if call.kind == "queue" else d.people[call.target].unit


def ts(value: str) -> float:
    """An ISO time of pbxwatch's JSON records as epoch seconds."""
    return dt.datetime.fromisoformat(value).timestamp()


def records_of(records: list[dict[str, Any]], call: SimCall) -> list[dict[str, Any]]:
    """pbxwatch's call records of a simulated call: same caller, started
    within a second of it."""
    return [r for r in records if r["type"] == "call" and r["caller"] == call.caller
            and abs(ts(r["started_at"]) - call.start) < 1]  # fmt: skip
