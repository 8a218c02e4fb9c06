"""Working days, phone hours and deadlines (Europe/Stockholm, DST, holidays)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.core.calendar import CallbackPolicy, PhoneHours, WorkCalendar

TZ = ZoneInfo("Europe/Stockholm")
CAL = WorkCalendar(TZ)
HOURS = PhoneHours(open=dt.time(8, 0), close=dt.time(16, 30))
SAME_DAY = CallbackPolicy(deadline="same_working_day")
TWO_DAYS = CallbackPolicy(deadline="working_days", working_days=2)


def at(*args: int) -> float:
    return dt.datetime(*args, tzinfo=TZ).timestamp()  # type: ignore[misc]


def local(t: float) -> str:
    return dt.datetime.fromtimestamp(t, TZ).isoformat()


@pytest.mark.parametrize(
    ("left", "policy", "due"),
    [
        # Friday 28 April 2028, 16:45 (after closing); Monday 1 May is a holiday
        ((2028, 4, 28, 16, 45), SAME_DAY, "2028-05-02T16:30:00+02:00"),
        ((2028, 4, 28, 16, 45), TWO_DAYS, "2028-05-03T16:30:00+02:00"),
        # Friday 22 December 2028 16:45: Christmas Day Monday, Boxing Day Tuesday
        ((2028, 12, 22, 16, 45), SAME_DAY, "2028-12-27T16:30:00+01:00"),
        ((2028, 12, 22, 16, 45), TWO_DAYS, "2028-12-28T16:30:00+01:00"),
        # before closing on a working day: the same day / two working days on
        ((2026, 11, 23, 9, 12), SAME_DAY, "2026-11-23T16:30:00+01:00"),
        ((2026, 11, 23, 9, 12), TWO_DAYS, "2026-11-25T16:30:00+01:00"),
        # midsommarafton (de-facto closed) Friday 19 June 2026
        ((2026, 6, 18, 17, 0), SAME_DAY, "2026-06-22T16:30:00+02:00"),
        # julafton Thursday 24 Dec 2026 is closed; 25-26 are holidays
        ((2026, 12, 23, 16, 0), TWO_DAYS, "2026-12-29T16:30:00+01:00"),
    ],
)
def test_deadlines(left: tuple[int, ...], policy: CallbackPolicy, due: str) -> None:
    assert local(CAL.deadline(at(*left), policy, HOURS)) == due


def test_spring_forward_night() -> None:
    """29 March 2026 02:00 CET -> 03:00 CEST.  A message in that night
    (Sunday) is due Monday at 16:30 summer time."""
    before = dt.datetime(2026, 3, 29, 0, 59, 59, tzinfo=dt.UTC).timestamp()  # 01:59:59 CET
    after = dt.datetime(2026, 3, 29, 1, 0, 1, tzinfo=dt.UTC).timestamp()  # 03:00:01 CEST
    for t in (before, after):
        assert local(CAL.deadline(t, SAME_DAY, HOURS)) == "2026-03-30T16:30:00+02:00"
        assert local(CAL.deadline(t, TWO_DAYS, HOURS)) == "2026-03-31T16:30:00+02:00"


def test_fall_back_night() -> None:
    """25 Oct 2026 03:00 CEST -> 02:00 CET: 02:30 happens twice.  Both are
    Sunday; the deadline is Monday 16:30 winter time, the wall-clock time
    people expect, although that day has 25 hours."""
    first = dt.datetime(2026, 10, 25, 0, 30, tzinfo=dt.UTC).timestamp()  # 02:30 CEST
    second = dt.datetime(2026, 10, 25, 1, 30, tzinfo=dt.UTC).timestamp()  # 02:30 CET
    for t in (first, second):
        assert local(CAL.deadline(t, SAME_DAY, HOURS)) == "2026-10-26T16:30:00+01:00"
    # Friday before the change, 2 working days: Tuesday 16:30 CET
    fri = at(2026, 10, 23, 10, 0)
    assert local(CAL.deadline(fri, TWO_DAYS, HOURS)) == "2026-10-27T16:30:00+01:00"
    # the Monday close is 25 h after the Sunday 15:30 UTC, not 24 h
    assert CAL.close_of(dt.date(2026, 10, 26), HOURS) - CAL.close_of(
        dt.date(2026, 10, 23), HOURS
    ) == pytest.approx(3 * 86400 + 3600)


def test_configured_closed_day() -> None:
    cal = WorkCalendar(TZ, frozenset({dt.date(2026, 11, 24)}))  # a klämdag
    assert local(cal.deadline(at(2026, 11, 23, 17, 0), SAME_DAY, HOURS)) == (
        "2026-11-25T16:30:00+01:00"
    )


def test_phone_hours() -> None:
    assert CAL.in_phone_hours(at(2026, 11, 23, 8, 0), HOURS)
    assert not CAL.in_phone_hours(at(2026, 11, 23, 16, 30), HOURS)
    assert not CAL.in_phone_hours(at(2026, 11, 22, 10, 0), HOURS)  # Sunday
    assert not CAL.in_phone_hours(at(2026, 12, 24, 10, 0), HOURS)  # julafton


def test_bank_eves_shorten_phone_hours_only_where_the_unit_says_so() -> None:
    """Maundy Thursday 2 April 2026 is a bank "from 2pm" eve: a unit with
    ``eve_close`` 14:00 closes then, and same-day callbacks are due then; a
    unit without it keeps 16:30.  Good Friday is a holiday as usual."""
    early = PhoneHours(open=dt.time(8, 0), close=dt.time(16, 30), eve_close=dt.time(14, 0))
    assert CAL.in_phone_hours(at(2026, 4, 2, 13, 59), early)
    assert not CAL.in_phone_hours(at(2026, 4, 2, 14, 0), early)
    assert CAL.in_phone_hours(at(2026, 4, 2, 14, 0), HOURS)
    assert CAL.in_phone_hours(at(2026, 4, 1, 15, 0), early)  # an ordinary Wednesday
    assert (
        local(CAL.deadline(at(2026, 4, 2, 10, 0), SAME_DAY, early)) == "2026-04-02T14:00:00+02:00"
    )
    assert (
        local(CAL.deadline(at(2026, 4, 2, 10, 0), SAME_DAY, HOURS)) == "2026-04-02T16:30:00+02:00"
    )
    # left after the early close: due Tuesday after Easter (Fri and Mon are holidays)
    assert (
        local(CAL.deadline(at(2026, 4, 2, 15, 0), SAME_DAY, early)) == "2026-04-07T16:30:00+02:00"
    )
