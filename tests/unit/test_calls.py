"""The call state machine on synthetic and recorded event sequences."""

from __future__ import annotations

import pytest

from pbxwatch.core.calls import CallRules
from pbxwatch.core.engine import Engine
from pbxwatch.core.records import CallRecord, rings_for
from pbxwatch.settings import Settings
from tests.unit.events import chan, ev, recording_events


def _engine(settings: Settings, **rules: float) -> Engine:
    return Engine(settings.directory_model(), CallRules(**rules))


def _run(engine: Engine, events: list) -> list[CallRecord]:  # type: ignore[type-arg]
    """The call records a stream gives (incidents and reminders left out)."""
    out = []
    for e in events:
        out.extend(engine.process(e))
    out.extend(engine.flush())
    return [r for r in out if isinstance(r, CallRecord)]


def test_rings_before_answer_follow_the_ring_period() -> None:
    assert [rings_for(s, 6.0) for s in (0, 5.9, 6.0, 12.0, 17.9, 20)] == [1, 1, 2, 3, 3, 4]


def test_direct_call_answered(lab_settings: Settings) -> None:
    trunk = chan("PJSIP/op-1", "10.1", "10.1", CallerIDNum="0701234567")
    phone = chan("IAX2/1001-5", "10.2", "10.1")
    events = [
        ev("Newchannel", 100.0, **trunk, Context="from-pstn", Exten="0855001001"),
        ev("Newchannel", 100.1, **phone, Context="default", Exten="s"),
        ev("DialBegin", 100.1, **trunk, DestChannel="IAX2/1001-5", DestUniqueid="10.2"),
        ev("DialEnd", 107.0, **trunk, DestChannel="IAX2/1001-5", DestUniqueid="10.2",
           DialStatus="ANSWER"),
        ev("Hangup", 120.0, **trunk, Cause="16"),
        ev("Hangup", 120.0, **phone, Cause="16"),
    ]  # fmt: skip
    [rec] = _run(_engine(lab_settings), events)
    assert rec.direction == "inbound"  # from-pstn context, although not an IAX2/pstn channel
    assert (rec.target_kind, rec.target, rec.target_unit) == ("extension", "1001", "socialtjanst")
    assert (rec.outcome, rec.answered_by, rec.answer_seconds) == ("answered", "1001", 7.0)
    assert rec.rings_before_answer == 2
    assert rec.caller == "0701234567"
    assert rec.caller_e164 == "+46701234567"


def test_call_that_never_hangs_up_expires(lab_settings: Settings) -> None:
    engine = _engine(lab_settings, idle_timeout=600.0, max_duration=3600.0)
    trunk = chan("IAX2/pstn-1", "1.1", "1.1", CallerIDNum="0701234567")
    engine.process(ev("Newchannel", 1000.0, **trunk, Context="from-pstn", Exten="0855001002"))
    assert engine.tracked_calls == 1
    assert engine.tick(1000.0 + 599) == []
    [rec] = [r for r in engine.tick(1000.0 + 700) if isinstance(r, CallRecord)]
    assert rec.complete is False
    assert engine.tracked_calls == 0
    assert engine.tracked_channels == 0


def test_late_events_of_a_finished_call_do_not_resurrect_it(lab_settings: Settings) -> None:
    engine = _engine(lab_settings)
    trunk = chan("IAX2/pstn-1", "1.1", "1.1", CallerIDNum="0701234567")
    engine.process(ev("Newchannel", 10.0, **trunk, Context="from-pstn", Exten="0855001002"))
    engine.process(ev("Hangup", 11.0, **trunk, Cause="16"))
    assert len([r for r in engine.tick(20.0) if isinstance(r, CallRecord)]) == 1
    assert engine.process(ev("Newexten", 21.0, **trunk, Application="NoOp")) == []
    assert engine.tracked_calls == 0
    assert engine.calls.stats["late_event"] == 1


def test_call_joined_midway_is_marked_incomplete(lab_settings: Settings) -> None:
    engine = _engine(lab_settings)
    phone = chan("IAX2/1001-9", "5.2", "5.1")
    engine.process(ev("Newstate", 10.0, **phone, ChannelStateDesc="Up"))
    engine.process(ev("Hangup", 12.0, **phone, Cause="16"))
    [rec] = [r for r in engine.tick(30.0) if isinstance(r, CallRecord)]
    assert rec.complete is False


def test_each_event_twice_gives_the_same_calls(lab_settings: Settings) -> None:
    events = recording_events("group_number_answered") + recording_events("voicemail_callback")
    once = _run(_engine(lab_settings), events)
    twice = _run(_engine(lab_settings), [e for e in events for _ in (0, 1)])
    assert twice == once


def test_list_items_of_actions_are_not_live_events(lab_settings: Settings) -> None:
    """status_actions.ami interleaves CoreShowChannel items (with ActionID and
    Linkedid) with live events: they must not create or change calls."""
    events = recording_events("status_actions")
    with_items = _run(_engine(lab_settings), events)
    live_only = _run(_engine(lab_settings), [e for e in events if e.action_id is None])
    assert with_items == live_only
    assert len(with_items) == 4


def test_presence_snapshot_at_call_start_decides_diversion(lab_settings: Settings) -> None:
    engine = _engine(lab_settings)
    engine.process(ev("PresenceStateChange", 5.0, Presentity="CustomPresence:1002",
                      Status="away", Subtype="lunch", Message="Lunch till 13:00"))  # fmt: skip
    trunk = chan("IAX2/pstn-7", "7.1", "7.1", CallerIDNum="0703456789")
    events = [
        ev("Newchannel", 10.0, **trunk, Context="from-pstn", Exten="0855001002"),
        ev("Newexten", 10.0, **trunk, Application="VoiceMail", AppData="1002@default,u"),
        ev("PresenceStateChange", 12.0, Presentity="CustomPresence:1002", Status="available"),
        ev("MessageWaiting", 29.0, **trunk, Mailbox="1002@default", New="1", Old="0"),
        ev("Hangup", 29.0, **trunk, Cause="16"),
    ]
    [rec] = _run(engine, events)
    assert rec.outcome == "voicemail"
    assert rec.voicemail_mailbox == "1002@default"
    assert rec.diverted
    assert rec.diversion_reason == "away lunch Lunch till 13:00"


def test_busy_greeting_is_not_a_diversion(lab_settings: Settings) -> None:
    trunk = chan("IAX2/pstn-8", "8.1", "8.1", CallerIDNum="0701112223")
    events = [
        ev("PresenceStateChange", 1.0, Presentity="CustomPresence:1005", Status="available"),
        ev("Newchannel", 10.0, **trunk, Context="from-pstn", Exten="0855001005"),
        ev("Newexten", 10.0, **trunk, Application="VoiceMail", AppData="1005@default,b"),
        ev("Hangup", 15.0, **trunk, Cause="16"),
    ]
    [rec] = _run(_engine(lab_settings), events)
    assert rec.outcome == "voicemail_no_message"
    assert not rec.diverted


def test_short_abandon_and_where(lab_settings: Settings) -> None:
    trunk = chan("IAX2/pstn-9", "9.1", "9.1", CallerIDNum="0701112224")
    phone = chan("IAX2/1003-1", "9.2", "9.1")
    dial = {**trunk, "DestChannel": "IAX2/1003-1", "DestUniqueid": "9.2"}
    events = [
        ev("Newchannel", 10.0, **trunk, Context="from-pstn", Exten="0855001003"),
        ev("Newchannel", 10.0, **phone),
        ev("DialBegin", 10.0, **dial),
        ev("HangupRequest", 13.0, **trunk, Cause="16"),
        ev("DialEnd", 13.0, **dial, DialStatus="CANCEL"),
        ev("Hangup", 13.0, **phone, Cause="16"),
        ev("Hangup", 13.0, **trunk, Cause="16"),
    ]
    [rec] = _run(_engine(lab_settings), events)
    assert (rec.outcome, rec.abandoned_where, rec.short_abandon) == ("abandoned", "ringing", True)
    assert [(r.extension, r.result) for r in rec.rings] == [("1003", "cancelled")]


def test_unknown_and_garbage_events_are_counted_not_fatal(lab_settings: Settings) -> None:
    engine = _engine(lab_settings)
    engine.process(ev("SomethingNew", 1.0, Foo="bar"))
    engine.process(ev("DialBegin", 2.0, Linkedid="x", Uniqueid="y"))
    engine.process(ev("Hangup", 3.0, Channel="IAX2/x-1", Uniqueid="zz", Linkedid="zz", Cause="?"))
    assert engine.events_by_name["other"] == 1
    assert not [k for k in engine.stats if k.startswith("handler_error")]
    assert engine.tracked_calls == 1  # the DialBegin introduced a channel we never saw created
    assert len([r for r in engine.tick(10**6) if isinstance(r, CallRecord)]) == 1
    assert engine.tracked_calls == 0


def test_bad_input_is_counted_by_kind_and_logged_once(
    lab_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from pbxwatch.follower import FirstSeen

    engine = _engine(lab_settings)
    first_seen = FirstSeen("bad AMI input")
    for t in range(1, 4):  # three of each
        engine.process(ev("SomethingNew", float(t), Uniqueid="u9", Linkedid="u9"))
        engine.process(ev("Hangup", float(t), Channel="IAX2/x-1", Uniqueid="zz", Linkedid="zz"))
        first_seen.check(engine.bad_input)
    bad = engine.bad_input
    assert bad["unknown_event"] == 3
    assert bad["event_for_unknown_channel"] == 3
    assert engine.tracked_calls == 0  # an unknown event makes up no call
    lines = [r.getMessage() for r in caplog.records if "bad AMI input" in r.getMessage()]
    assert len(lines) == 2, lines


def test_a_call_in_progress_shares_its_strings(lab_settings: Settings) -> None:
    """What a call keeps of its frames (bench/memory.py): one Linkedid
    string for the call and its channels, a ring's id is its channel's,
    repeated values (context, extension, "<unknown>") are one string, and
    the open channels follow the hangups."""
    engine = _engine(lab_settings)
    trunk = chan("PJSIP/op-1", "10.1", "10.1", CallerIDNum="0701234567")
    phones = [chan(f"IAX2/100{i}-5", f"10.{i + 1}", "10.1", CallerIDNum="<unknown>")
              for i in (1, 2)]  # fmt: skip
    events = [ev("Newchannel", 100.0, **trunk, Context="from-pstn", Exten="0855001001")]
    for i, phone in enumerate(phones, 1):
        events += [
            ev("Newchannel", 100.1, **phone, Context="default", Exten="s"),
            ev("DialBegin", 100.1, **trunk, DestChannel=f"IAX2/100{i}-5",
               DestUniqueid=f"10.{i + 1}"),
        ]  # fmt: skip
    for e in events:
        engine.process(e)
    [call] = engine.calls.calls.values()
    a, b = (call.channels[f"10.{i + 1}"] for i in (1, 2))
    assert all(c.linkedid is call.linkedid for c in call.channels.values())
    assert call.origin is not None
    assert call.origin.uniqueid is call.linkedid
    assert a.context is b.context
    assert a.exten is b.exten
    assert a.caller_num is b.caller_num
    assert call.rings["10.2"].dest_uniqueid is a.uniqueid
    assert call.open_channels == {"10.1", "10.2", "10.3"}
    engine.process(ev("Hangup", 110.0, **phones[0], Cause="26"))
    engine.settle()  # the clock may hold an event until the next confirms its time
    assert call.open_channels == {"10.1", "10.3"}
    assert call.ended_at is None
    engine.process(ev("Hangup", 111.0, **phones[1], Cause="16"))
    engine.process(ev("Hangup", 111.0, **trunk, Cause="16"))
    engine.settle()
    assert call.open_channels == set()
    assert call.ended_at is not None
