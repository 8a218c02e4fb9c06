"""The restart recording through the pure core: part 1, a checkpoint at
the cut, a fresh engine restored from it, the state read of part 2's
transcript, part 2.  The same semantics the socket test shows end to end
(tests/chaos/test_restart_pair.py), without I/O."""

from __future__ import annotations

import json
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.ami.codec import iter_recording
from pbxwatch.ami.transcript import Transcript
from pbxwatch.core import checkpoint
from pbxwatch.core.engine import Engine, Record
from pbxwatch.core.events import AmiEvent
from pbxwatch.core.gaps import AmiGap, PbxSnapshot, VoicemailMessage
from pbxwatch.pipeline import build_engine
from pbxwatch.resync import list_items, summary_messages
from pbxwatch.settings import Settings
from tests.conftest import FIXTURES
from tests.restart import check_restart

TZ = ZoneInfo("Europe/Stockholm")


def events_of(name: str) -> list[AmiEvent]:
    """The live events (answers to the recorder's actions left out)."""
    out = []
    for fields in iter_recording((FIXTURES / name).read_bytes()):
        ev = AmiEvent.from_fields(fields)
        if ev is not None and ev.action_id is None:
            out.append(ev)
    return out


def snapshot_of(transcript: Transcript) -> PbxSnapshot:
    """What ``pbxwatch.resync.read_state`` makes of the recorded answers."""
    channels: list[dict[str, str]] = []
    counts: dict[str, int] = {}
    messages: dict[str, tuple[VoicemailMessage, ...]] = {}
    pbx_time = None
    for a in transcript.answers:
        args = dict(a.args)
        if a.action == "ping":
            pbx_time = float(a.response["Timestamp"])
        elif a.action == "coreshowchannels":
            channels = list_items(a.list_events)
        elif a.action == "mailboxcount":
            counts[args["mailbox"]] = int(a.response["NewMessages"])
        elif a.action == "voicemailboxsummary":
            listed = summary_messages([a.response, *a.list_events])
            assert listed is not None
            messages[f"{args['mailbox']}@{args['context']}"] = listed
    # read_state lists the channels right after the Ping: on its clock
    return PbxSnapshot(tuple(channels), counts, messages, {}, pbx_time, channels_time=pbx_time)


def _feed(engine: Engine, events: list[AmiEvent]) -> list[Record]:
    out: list[Record] = []
    for ev in events:
        out.extend(engine.process(ev))
    return out


def _json(records: list[Record]) -> list[dict[str, Any]]:
    return [r.to_json(TZ) for r in records if hasattr(r, "to_json")]


@pytest.mark.parametrize("late", [0.0, 2.0, 5.0])
def test_the_restart_recording_through_the_core(lab_settings: Settings, late: float) -> None:
    """``late``: PBX seconds of part 2's events that come in before the
    state read is answered (a slow PBX, a loaded host); they are held until
    the channel list says which calls they belong to."""
    truth = json.loads((FIXTURES / "restart_gap.truth.json").read_text("utf-8"))
    first = build_engine(lab_settings, keep_everything=True)
    part1 = _feed(first, events_of("restart_gap.part1.ami")) + first.settle()
    state = json.loads(json.dumps(checkpoint.dump(first)))

    second = build_engine(lab_settings, keep_everything=True)
    for cb in first.callbacks.callbacks.values():  # the store restores these
        second.callbacks.restore(cb)
    assert checkpoint.load(second, state).calls == 7  # "7 calls still up" at the cut
    second.connection_lost(first.last_event_time, "pbxwatch was not running (restart)")
    snap = snapshot_of(Transcript.load(FIXTURES / "restart_gap.part2.transcript.json"))
    live = events_of("restart_gap.part2.ami")
    second.awaiting_state()  # as a live run does before each login
    limit = (snap.pbx_time or 0) + late
    before = [ev for ev in live if ev.time is not None and ev.time <= limit]
    part2 = _feed(second, before) + second.reconcile(snap, snap.pbx_time, "ami:test")
    part2 += _feed(second, live[len(before) :]) + second.flush()

    [gap] = [r for r in part2 if isinstance(r, AmiGap)]
    cut = json.loads((FIXTURES / "restart_gap.cut.json").read_text("utf-8"))
    assert cut["part1_closed_at"] - 2 < gap.started_at <= cut["part1_closed_at"]
    assert cut["part2_connected_at"] <= gap.ended_at < cut["part2_connected_at"] + 1
    # r02 and m0027; with the list answered late, a call it still shows may
    # have been seen to end before the answer came
    assert (
        gap.reconciled["calls_still_up"] == 2
        if not late
        else 1 <= gap.reconciled["calls_still_up"] <= 2
    )
    assert gap.reconciled["calls_ended_unseen"] == 5
    assert gap.reconciled["calls_begun_unseen"] == 4
    assert gap.reconciled["messages_left_unseen"] == 3

    # the callbacks as they stand at the end: the second engine holds them all
    # (part 1's, restored as the store would, and the new ones)
    end = truth["recording_stopped_t"]
    records = _json(part1) + _json(part2)
    records += [cb.to_json(TZ, end) for cb in second.callbacks.callbacks.values()]
    assert check_restart(truth, records) == []
