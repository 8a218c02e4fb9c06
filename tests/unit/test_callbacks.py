"""Voicemail callback obligations: who may fulfil them, number formats,
listening, exemptions and reminders sent once."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.callbacks import CallbackBook
from pbxwatch.core.directory import Directory
from pbxwatch.core.diversion import Presence
from pbxwatch.core.records import CallRecord
from pbxwatch.settings import Settings

TZ = ZoneInfo("Europe/Stockholm")
T0 = dt.datetime(2026, 11, 23, 9, 12, tzinfo=TZ).timestamp()  # Monday 09:12


def _directory(settings: Settings, **policy: object) -> Directory:
    d = settings.directory_model()
    unit = d.units["socialtjanst"]
    new = dataclasses.replace(
        unit, callback_policy=dataclasses.replace(unit.callback_policy, **policy)
    )
    return dataclasses.replace(d, units={**d.units, "socialtjanst": new})


def _message(caller: str = "0701234567", at: float = T0) -> CallRecord:
    return CallRecord(
        call_id=f"in-{at}", started_at=at - 40, ended_at=at, direction="inbound",
        caller=caller, caller_e164="+46" + caller[1:] if caller.startswith("0") else None,
        dialled="0855001001", target_kind="extension", target="1001",
        target_unit="socialtjanst", outcome="voicemail", voicemail_mailbox="1001@default",
        voicemail_left_at=at,
    )  # fmt: skip


def _dial(from_ext: str, number: str, at: float, answered: bool = True) -> CallRecord:
    return CallRecord(
        call_id=f"out-{at}", started_at=at, ended_at=at + 30, direction="outbound",
        caller=from_ext, caller_e164=None, dialled=number, target_kind="external",
        target=number, target_unit=None, outcome="answered" if answered else "no_answer",
    )  # fmt: skip


def _book(settings: Settings, **policy: object) -> CallbackBook:
    return CallbackBook(_directory(settings, **policy), WorkCalendar(TZ))


@pytest.mark.parametrize(
    ("policy", "from_ext", "fulfilled"),
    [
        ("owner", "1001", True),
        ("owner", "1002", False),  # a colleague in the same unit
        ("unit", "1002", True),
        ("unit", "1005", False),  # IT-support, another unit
        ("anyone", "1005", True),
    ],
)
def test_who_may_call_back(lab_settings: Settings, policy: str, from_ext: str, fulfilled: bool):  # type: ignore[no-untyped-def]
    book = _book(lab_settings, fulfilled_by=policy)
    cb = book.on_call(_message())
    assert cb is not None
    book.on_call(_dial(from_ext, "0701234567", T0 + 600))
    state = book.callbacks[cb.callback_id].state(T0 + 700)
    assert state == ("called_back" if fulfilled else "pending")


@pytest.mark.parametrize("dialled", ["0701234567", "+46701234567", "0046701234567"])
def test_caller_number_in_three_formats(lab_settings: Settings, dialled: str) -> None:
    book = _book(lab_settings)
    cb = book.on_call(_message("0701234567"))
    assert cb is not None
    book.on_call(_dial("1001", dialled, T0 + 60))
    assert book.callbacks[cb.callback_id].state(T0 + 100) == "called_back"


def test_attempt_or_answered(lab_settings: Settings) -> None:
    strict = _book(lab_settings, counts="answered")
    cb = strict.on_call(_message())
    assert cb is not None
    strict.on_call(_dial("1001", "0701234567", T0 + 60, answered=False))
    assert strict.callbacks[cb.callback_id].resolved_at is None
    lenient = _book(lab_settings)
    cb = lenient.on_call(_message())
    assert cb is not None
    lenient.on_call(_dial("1001", "0701234567", T0 + 60, answered=False))
    assert lenient.callbacks[cb.callback_id].state(T0 + 100) == "called_back"


def test_late_callback_and_reminders_sent_once(lab_settings: Settings) -> None:
    book = _book(lab_settings, due_soon_seconds=3600.0)
    cb = book.on_call(_message())
    assert cb is not None
    deadline = cb.deadline  # 17:00 (lab phone hours close at 17:00)
    assert book.tick(deadline - 7200) == []
    assert [e.kind for e in book.tick(deadline - 1800)] == ["callback_due_soon"]
    assert book.tick(deadline - 60) == []
    assert [e.kind for e in book.tick(deadline + 1)] == ["callback_overdue"]
    assert book.tick(deadline + 3600) == []
    assert book.callbacks[cb.callback_id].state(deadline + 1) == "overdue"
    book.on_call(_dial("1001", "0701234567", deadline + 7200))
    assert book.callbacks[cb.callback_id].state(deadline + 8000) == "called_back_late"


def test_listened_oldest_first(lab_settings: Settings) -> None:
    book = _book(lab_settings)
    first = book.on_call(_message("0701111111", T0))
    second = book.on_call(_message("0702222222", T0 + 100))
    assert first is not None
    assert second is not None
    book.on_message_waiting("1001@default", 1, T0)
    book.on_message_waiting("1001@default", 2, T0 + 100)
    book.on_message_waiting("1001@default", 1, T0 + 500)  # one heard
    assert book.callbacks[first.callback_id].listened_at == T0 + 500
    assert book.callbacks[second.callback_id].listened_at is None


def test_exempt_only_where_the_policy_says_so_and_anonymous(lab_settings: Settings) -> None:
    book = _book(lab_settings, during_absence="exempt")
    away = Presence("xa", "", "Semester till 1 december", T0 - 86400)
    cb = book.on_call(_message(), away)
    assert cb is not None
    assert cb.state(T0 + 10**6) == "exempt"
    lunch = Presence("away", "lunch", "Lunch till 13:00", T0 - 600)
    cb2 = book.on_call(_message(at=T0 + 1), lunch)
    assert cb2 is not None
    assert cb2.state(T0 + 2) == "pending"
    anon = book.on_call(dataclasses.replace(_message(at=T0 + 2), caller=None, caller_e164=None))
    assert anon is not None
    assert anon.state(T0 + 10**6) == "no_number"


def test_a_message_left_in_a_vacation_is_deferred_until_the_return(
    lab_settings: Settings,
) -> None:
    """Falkenberg lifts only the same-day rule: the deadline counts from the
    owner's return, the end of the vacation's diversion."""
    book = _book(lab_settings)  # socialtjanst: same working day
    away = Presence("xa", "", "Semester till 1 december", T0 - 86400)
    cb = book.on_call(_message(), away)
    assert cb is not None
    assert cb.deferred_reason is not None
    assert cb.state(T0 + 10 * 86400) == "deferred"  # no deadline while away: never overdue
    assert book.tick(T0 + 10 * 86400) == []
    back = T0 + 3 * 86400  # Thursday 09:12
    book.on_return("1001", back)
    cb = book.callbacks[cb.callback_id]
    close = dt.datetime(2026, 11, 26, 17, 0, tzinfo=TZ).timestamp()  # the lab closes 17:00
    assert (cb.returned_at, cb.deadline) == (back, close)  # the same working day as the return
    assert cb.state(back + 60) == "pending"
    events = book.tick(close + 1)
    assert [e.kind for e in events] == ["callback_overdue"]
    assert book.callbacks[cb.callback_id].state(close + 1) == "overdue"


def test_a_deferred_message_called_back_by_the_unit_meanwhile_is_on_time(
    lab_settings: Settings,
) -> None:
    book = _book(lab_settings, fulfilled_by="unit")
    away = Presence("xa", "", "Tjänsteresa", T0 - 3600)
    cb = book.on_call(_message(), away)
    assert cb is not None
    book.on_call(_dial("1002", "0701234567", T0 + 86400))  # a colleague, the next day
    assert book.callbacks[cb.callback_id].state(T0 + 5 * 86400) == "called_back"
