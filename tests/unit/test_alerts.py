"""Alerts made from the core's records: ids, texts, masking, rate limits."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from pbxwatch.core.alerts import AlertMaker
from pbxwatch.core.callbacks import Callback, CallbackEvent
from pbxwatch.core.incidents import Incident
from pbxwatch.settings import Settings

TZ = ZoneInfo("Europe/Stockholm")
T = dt.datetime(2026, 11, 24, 9, 12, tzinfo=TZ).timestamp()


def _maker(settings: Settings, show_numbers: bool = False) -> AlertMaker:
    directory = settings.directory_model()
    if show_numbers:
        unit = directory.units["socialtjanst"]
        directory.units["socialtjanst"] = dataclasses.replace(unit, show_caller_numbers=True)
    return AlertMaker(directory, TZ, digest_seconds=1800)


def _callback() -> Callback:
    deadline = dt.datetime(2026, 11, 24, 17, 0, tzinfo=TZ).timestamp()
    return Callback("callback:c1:1001@default", "c1", "1001@default", "1001", "socialtjanst",
                    "0701234567", "+46701234567", T, deadline)  # fmt: skip


def test_callback_reminders_say_who_when_and_the_deadline(lab_settings: Settings) -> None:
    maker = _maker(lab_settings)
    cb = _callback()
    [soon] = maker.on_records([CallbackEvent("callback_due_soon", cb, T + 3600)], T + 3600)
    assert soon.alert_id == "callback_due_soon:callback:c1:1001@default"
    assert soon.text_sv == (
        "Röstmeddelande till Anna Lindqvist 09:12 har inte ringts tillbaka; tidsgräns 17:00"
    )
    assert soon.text_en.startswith("Voicemail for Anna Lindqvist left at 09:12")
    assert soon.unit_name == "Socialtjänst"
    assert soon.data["caller"] == "+4670*****67"  # masked unless the unit allows numbers
    [late] = maker.on_records([CallbackEvent("callback_overdue", cb, cb.deadline + 60)], T)
    assert late.severity == "warning"
    assert "tidsgränsen 17:00 har passerat" in late.text_sv
    payload = late.payload()
    assert set(payload) == {"alert_id", "kind", "state", "unit", "unit_name", "severity",
                            "created_at", "text", "data"}  # fmt: skip
    assert payload["created_at"].startswith("2026-11-24T17:01")


def test_numbers_shown_where_the_unit_allows(lab_settings: Settings) -> None:
    maker = _maker(lab_settings, show_numbers=True)
    [soon] = maker.on_records([CallbackEvent("callback_due_soon", _callback(), T)], T)
    assert soon.data["caller"] == "+46701234567"


def _miss(at: float, ext: str = "1002") -> Incident:
    return Incident(f"missing_forward:c{at}", "missing_forward", "resolved", at, at,
                    unit="socialtjanst", call_id=f"c{at}", extension=ext,
                    details={"landed_in": "voicemail"})  # fmt: skip


def test_missing_forwards_first_at_once_then_a_digest_per_window(lab_settings: Settings) -> None:
    maker = _maker(lab_settings)
    w0 = T - T % 1800
    first = maker.on_records([_miss(T)], T)
    assert [a.alert_id for a in first] == [f"missing_forward:socialtjanst:{w0:.0f}"]
    assert "Erik Öberg" in first[0].text_sv
    assert "inte hänvisad" in first[0].text_sv
    assert maker.on_records([_miss(T + 60, "1007"), _miss(T + 120)], T + 120) == []
    [digest] = maker.tick(w0 + 1800)
    assert digest.alert_id == f"missing_forward:socialtjanst:{w0:.0f}:digest"
    assert len(digest.data["misses"]) == 2
    assert "Ytterligare 2 samtal" in digest.text_sv
    assert maker.tick(w0 + 3600) == []  # nothing more to say


def test_lasting_conditions_open_and_resolve_under_matching_ids(lab_settings: Settings) -> None:
    maker = _maker(lab_settings)
    opened = Incident("group_unstaffed:bygglov:1.000", "group_unstaffed", "open", T,
                      unit="bygglov", queue="bygglov")  # fmt: skip
    closed = Incident("group_unstaffed:bygglov:1.000", "group_unstaffed", "resolved", T,
                      T + 900, unit="bygglov", queue="bygglov")  # fmt: skip
    [a] = maker.on_records([opened], T)
    [b] = maker.on_records([closed], T + 900)
    assert (a.alert_id, a.state) == ("group_unstaffed:bygglov:1.000:open", "firing")
    assert (b.alert_id, b.state) == ("group_unstaffed:bygglov:1.000:resolved", "resolved")
    assert "Ingen är tillgänglig på gruppnumret bygglov sedan 09:12" in a.text_sv
    absent = Incident("unforwarded_absence:1002:1.000", "unforwarded_absence", "open", T,
                      unit="socialtjanst", extension="1002")  # fmt: skip
    [c] = maker.on_records([absent], T)
    assert (
        c.text_en == "Erik Öberg's phone has been unreachable since 09:12 and no diversion is set"
    )


def test_an_overdue_alert_across_a_gap_says_it_may_be_wrong(lab_settings: Settings) -> None:
    """#18: a callback whose window overlapped a gap may have been made
    unseen: the alert goes out, marked, in both languages and in its data."""
    from pbxwatch.core.gaps import AmiGap

    maker = _maker(lab_settings)
    cb = _callback()
    gap = AmiGap("gap:x", "ami:x", T + 600, T + 900, "pbxwatch was not running (restart)", {})
    [late] = maker.on_records([gap, CallbackEvent("callback_overdue", cb, cb.deadline + 60)],
                              cb.deadline + 60)  # fmt: skip
    assert late.text_sv.endswith("(kan ha ringts tillbaka medan pbxwatch inte såg växeln)")
    assert late.text_en.endswith("(may have been called back while pbxwatch could not see the PBX)")
    assert late.data["unsure"] == "ami_gap"
    assert late.data["gaps"] == [{"from": "2026-11-24T09:22:00.000+01:00",
                                  "to": "2026-11-24T09:27:00.000+01:00"}]  # fmt: skip
    # a gap before the message was left, or none: a plain alert
    plain = _maker(lab_settings)
    early = AmiGap("gap:y", "ami:x", T - 900, T - 600, "lost", {})
    [late] = plain.on_records([early, CallbackEvent("callback_overdue", cb, cb.deadline + 60)],
                              cb.deadline + 60)  # fmt: skip
    assert "unsure" not in late.data
    assert "pbxwatch" not in late.text_sv
    # still blind (connection lost, not back yet): marked too
    blind = _maker(lab_settings)
    blind.blind_since = cb.deadline - 60
    [late] = blind.on_records([CallbackEvent("callback_overdue", cb, cb.deadline + 60)],
                              cb.deadline + 60)  # fmt: skip
    assert late.data["gaps"][0]["to"] is None


def test_a_missing_forward_across_a_gap_says_a_diversion_may_have_been_missed(
    lab_settings: Settings,
) -> None:
    """#18: a call that straddled a gap may have had a diversion set unseen."""
    maker = _maker(lab_settings)
    miss = _miss(T)
    unsure = dataclasses.replace(miss, details={**miss.details, "unsure": "ami_gap"})
    [alert] = maker.on_records([unsure], T)
    assert alert.text_sv.endswith("en hänvisning kan ha missats)")
    assert alert.text_en.endswith("a diversion may have been missed)")
    assert alert.data["unsure"] == "ami_gap"
    assert alert.data["misses"][0]["unsure"] == "ami_gap"
