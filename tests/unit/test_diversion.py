"""Diversion from presence, custom CF/DND device states and AstDB, kept as
intervals; and the unforwarded-absence warning that depends on it."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.calls import CallRules
from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.core.engine import Engine, Record
from pbxwatch.core.incidents import Incident
from pbxwatch.core.records import CallRecord
from pbxwatch.settings import Settings
from tests.unit.events import chan, ev

TZ = ZoneInfo("Europe/Stockholm")
T0 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=TZ).timestamp()  # Monday 09:00


def _engine(settings: Settings, **directory_changes: object) -> Engine:
    directory = dataclasses.replace(settings.directory_model(), **directory_changes)  # type: ignore[arg-type]
    return Engine(directory, CallRules(), WorkCalendar(TZ), unforwarded_absence_seconds=900)


def _voicemail_call(at: float, ext: str = "1002") -> list:  # type: ignore[type-arg]
    trunk = chan(f"IAX2/pstn-{at:.0f}", f"{at}.1", f"{at}.1", CallerIDNum="0703456789")
    return [
        ev("Newchannel", at, **trunk, Context="from-pstn", Exten=f"085500{ext}"),
        ev("Newexten", at, **trunk, Application="VoiceMail", AppData=f"{ext}@default,u"),
        ev("MessageWaiting", at + 20, **trunk, Mailbox=f"{ext}@default", New="1", Old="0"),
        ev("Hangup", at + 20, **trunk, Cause="16"),
    ]


def _feed(engine: Engine, events: list) -> list[Record]:  # type: ignore[type-arg]
    out: list[Record] = []
    for e in events:
        out.extend(engine.process(e))
    return out + engine.settle()  # the state is looked at next


def test_custom_cf_device_state_diverts_and_makes_an_interval(lab_settings: Settings) -> None:
    engine = _engine(lab_settings)
    out = _feed(engine, [ev("DeviceStateChange", T0, Device="Custom:CF1002", State="INUSE")])
    out += _feed(engine, _voicemail_call(T0 + 60))
    out += _feed(engine, [ev("DeviceStateChange", T0 + 600, Device="Custom:CF1002", State="INUSE")])
    out += _feed(engine, [ev("DeviceStateChange", T0 + 900, Device="Custom:CF1002",
                             State="NOT_INUSE")])  # fmt: skip
    out += engine.flush()
    [call] = [r for r in out if isinstance(r, CallRecord)]
    assert call.diverted
    assert call.outcome == "voicemail"
    assert call.diversion_reason == "cf Custom:CF1002"
    assert not [r for r in out if isinstance(r, Incident) and r.kind == "missing_forward"]
    [interval] = [r for r in out if isinstance(r, DiversionInterval)]
    assert (interval.extension, interval.source, interval.start, interval.end) == (
        "1002", "call_forward", T0, T0 + 900,
    )  # fmt: skip


def test_astdb_forward_and_dnd(lab_settings: Settings) -> None:
    engine = _engine(lab_settings, astdb_families={"CF": "call_forward", "DND": "dnd"})
    out = _feed(engine, [
        ev("DBGetResponse", T0, ActionID="cf-1", Family="CF", Key="1002", Val="0701234567"),
        ev("DBGetResponse", T0, ActionID="dnd-1", Family="DND", Key="1003", Val="YES"),
        ev("DBGetResponse", T0, ActionID="x", Family="other", Key="1004", Val="1"),
    ])  # fmt: skip
    assert engine.presence.is_diverted("1002") is True
    assert engine.presence.is_diverted("1003") is True
    assert engine.presence.is_diverted("1004") is None
    out += _feed(engine, _voicemail_call(T0 + 60))
    out += _feed(engine, [
        ev("DBGetResponse", T0 + 300, ActionID="cf-2", Family="CF", Key="1002", Val="0701234567"),
        ev("DBGetResponse", T0 + 600, ActionID="cf-3", Family="CF", Key="1002", Val=""),
    ])  # fmt: skip
    [call] = [r for r in out if isinstance(r, CallRecord)]
    assert call.diverted
    assert call.diversion_reason == "cf CF/1002 0701234567"
    [closed] = [r for r in out if isinstance(r, DiversionInterval)]
    assert (closed.extension, closed.message, closed.end) == ("1002", "0701234567", T0 + 600)
    assert engine.presence.is_diverted("1002") is False
    [still_on] = engine.presence.open_intervals()
    assert (still_on.extension, still_on.source, still_on.end) == ("1003", "dnd", None)


def test_change_of_reason_closes_one_interval_and_opens_the_next(lab_settings: Settings) -> None:
    engine = _engine(lab_settings)

    def presence(t: float, status: str, message: str = "") -> object:
        return ev("PresenceStateChange", t, Presentity="CustomPresence:1001", Status=status,
                  Subtype="", Message=message)  # fmt: skip

    out = _feed(engine, [
        presence(T0, "away", "Lunch till 13:00"),
        ev("PresenceStatus", T0 + 0.01, Exten="1001", Status="away", Message="Lunch till 13:00"),
        presence(T0 + 3600, "xa", "Semester"),
        presence(T0 + 7200, "available"),
    ])  # fmt: skip
    got = [(i.state, i.message, i.start, i.end) for i in out if isinstance(i, DiversionInterval)]
    assert got == [
        ("away", "Lunch till 13:00", T0, T0 + 3600),
        ("xa", "Semester", T0 + 3600, T0 + 7200),
    ]


def _absence(out: list[Record]) -> list[tuple[str, str | None, float | None]]:
    return [
        (i.state, i.extension, i.ended_at)
        for i in out
        if isinstance(i, Incident) and i.kind == "unforwarded_absence"
    ]


def test_unforwarded_absence_opens_after_threshold_and_resolves_on_diversion(
    lab_settings: Settings,
) -> None:
    engine = _engine(lab_settings)
    out = _feed(engine, [ev("DeviceStateChange", T0, Device="IAX2/1002", State="UNAVAILABLE")])
    out += engine.tick(T0 + 899)
    assert _absence(out) == []
    out += engine.tick(T0 + 901)
    assert _absence(out) == [("open", "1002", None)]
    out += _feed(engine, [ev("PresenceStateChange", T0 + 1200, Presentity="CustomPresence:1002",
                             Status="xa", Message="Sjuk")])  # fmt: skip
    out += engine.tick(T0 + 1201)
    assert _absence(out) == [("open", "1002", None), ("resolved", "1002", T0 + 1200)]


def test_unforwarded_absence_resolves_when_the_phone_is_back(lab_settings: Settings) -> None:
    engine = _engine(lab_settings)
    out = _feed(engine, [ev("DeviceStateChange", T0, Device="IAX2/1002", State="UNAVAILABLE")])
    out += engine.tick(T0 + 1000)
    out += _feed(engine, [ev("DeviceStateChange", T0 + 1500, Device="IAX2/1002",
                             State="NOT_INUSE")])  # fmt: skip
    assert _absence(out) == [("open", "1002", None), ("resolved", "1002", T0 + 1500)]


def test_no_unforwarded_absence_when_diverted_or_outside_phone_hours(
    lab_settings: Settings,
) -> None:
    diverted = _engine(lab_settings)
    out = _feed(diverted, [
        ev("DeviceStateChange", T0 - 10, Device="Custom:DND1002", State="INUSE"),
        ev("DeviceStateChange", T0, Device="IAX2/1002", State="UNAVAILABLE"),
    ])  # fmt: skip
    out += diverted.tick(T0 + 3600)
    assert _absence(out) == []

    evening = T0 + 11 * 3600  # 20:00, phone hours closed at 17:00
    late = _engine(lab_settings)
    out = _feed(late, [ev("DeviceStateChange", evening, Device="IAX2/1002", State="UNAVAILABLE")])
    out += late.tick(evening + 3 * 3600)
    assert _absence(out) == []


def test_restored_unforwarded_absence_resolves_with_its_own_id(lab_settings: Settings) -> None:
    """After a restart the open warning carries on: no second one opens,
    and it resolves under the id it was stored with."""
    first = _engine(lab_settings)
    out = _feed(first, [ev("DeviceStateChange", T0, Device="IAX2/1002", State="UNAVAILABLE")])
    [opened] = [r for r in out + first.tick(T0 + 1000) if isinstance(r, Incident)]

    restarted = _engine(lab_settings)
    assert restarted.restore_incident(opened)
    out = restarted.tick(T0 + 5000)
    out += _feed(restarted, [ev("DeviceStateChange", T0 + 6000, Device="IAX2/1002",
                                State="NOT_INUSE")])  # fmt: skip
    resolved = [r for r in out if isinstance(r, Incident)]
    assert [(r.incident_id, r.state, r.started_at, r.ended_at) for r in resolved] == [
        (opened.incident_id, "resolved", T0, T0 + 6000)
    ]
