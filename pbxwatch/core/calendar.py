"""Phone hours, working days and callback deadlines.

A working day is a day of the unit's phone-hours week that is not a Swedish
public holiday, not a de-facto closed day (midsommarafton, julafton,
nyårsafton: the ``holidays`` library's ``de_facto`` category) and not a
configured closed day (klämdagar, local closures).  All times are epoch
seconds; days and hours are in the site's time zone, so deadlines move with
daylight saving time as the clocks on the wall do.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class PhoneHours:
    days: frozenset[int] = frozenset(range(5))  # 0 = Monday
    open: dt.time = dt.time(8, 0)
    close: dt.time = dt.time(16, 30)
    #: closing time on the bank "from 2pm" eves (trettondagsafton,
    #: skärtorsdagen, valborgsmässoafton ...) for units that close early then
    eve_close: dt.time | None = None


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    deadline: Literal["same_working_day", "working_days"] = "same_working_day"
    working_days: int = 1
    fulfilled_by: Literal["owner", "unit", "anyone"] = "owner"
    counts: Literal["attempt", "answered"] = "attempt"
    due_soon_seconds: float = 3600.0
    #: a message left while the owner was away for a listed reason
    during_absence: Literal["defer", "exempt"] = "defer"


@lru_cache(maxsize=64)
def _swedish_closed(year: int) -> frozenset[dt.date]:
    days = holidays.country_holidays("SE", years=year, categories=("public", "de_facto"))
    return frozenset(days.keys())


@lru_cache(maxsize=64)
def _swedish_eves(year: int) -> frozenset[dt.date]:
    """Days the ``bank`` category marks "from 2pm" (and that are not closed)."""
    bank = holidays.country_holidays("SE", years=year, categories=("bank",))
    return frozenset(bank.keys()) - _swedish_closed(year)


@dataclass(frozen=True)
class WorkCalendar:
    tz: ZoneInfo
    closed_days: frozenset[dt.date] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        # ``holidays`` imports its country modules on first use, ~70 ms: at
        # start-up, not inside the first AMI read that asks about a day.
        holidays.country_holidays("SE", years=())

    def local(self, t: float) -> dt.datetime:
        return dt.datetime.fromtimestamp(t, self.tz)

    def is_working_day(self, day: dt.date, hours: PhoneHours) -> bool:
        return (
            day.weekday() in hours.days
            and day not in _swedish_closed(day.year)
            and day not in self.closed_days
        )

    def closing_time(self, day: dt.date, hours: PhoneHours) -> dt.time:
        """Phone hours end at ``close``, or earlier on an eve if the unit says so."""
        if hours.eve_close is not None and day in _swedish_eves(day.year):
            return min(hours.close, hours.eve_close)
        return hours.close

    def close_of(self, day: dt.date, hours: PhoneHours) -> float:
        return dt.datetime.combine(day, self.closing_time(day, hours), self.tz).timestamp()

    def in_phone_hours(self, t: float, hours: PhoneHours) -> bool:
        now = self.local(t)
        day = now.date()
        return self.is_working_day(day, hours) and hours.open <= now.time() < self.closing_time(
            day, hours
        )

    def next_working_day(self, day: dt.date, hours: PhoneHours) -> dt.date:
        d = day + dt.timedelta(days=1)
        for _ in range(400):
            if self.is_working_day(d, hours):
                return d
            d += dt.timedelta(days=1)
        raise ValueError("no working day within 400 days: check phone_hours.days")

    def deadline(self, left_at: float, policy: CallbackPolicy, hours: PhoneHours) -> float:
        """When a callback for a message left at ``left_at`` is due.

        ``same_working_day``: end of phone hours that day if the message came
        on a working day before closing time, else end of phone hours on the
        next working day.  ``working_days`` N: end of phone hours on the N-th
        working day after the day the message was left.
        """
        local = self.local(left_at)
        day = local.date()
        if policy.deadline == "same_working_day":
            if self.is_working_day(day, hours) and local.time() < self.closing_time(day, hours):
                return self.close_of(day, hours)
            return self.close_of(self.next_working_day(day, hours), hours)
        for _ in range(policy.working_days):
            day = self.next_working_day(day, hours)
        return self.close_of(day, hours)
