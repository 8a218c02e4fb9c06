"""Phones that become unreachable in a simulated day, on both technologies.

The simulator plans a few outages a day (``SimDay.outages``): a person's
phone unreachable in phone hours with no diversion set, some longer than
``detection.unforwarded_absence_minutes`` (pbxwatch must warn, once, and
resolve the warning when the phone is back) and some shorter (a phone
restarting: no warning).  A PJSIP day also has the phones' first qualify
(``PeerStatus`` and ``ContactStatus``), shaped as the lab's PJSIP recording
has them, and none of it may count as bad input.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from pbxwatch.ami.codec import parse_frame
from pbxwatch.ami.server import load_recording
from pbxwatch.core.incidents import Incident
from pbxwatch.pipeline import Pipeline, Record, build_engine
from pbxwatch.settings import Settings
from pbxwatch.sim.calls import Pbx
from pbxwatch.sim.day import SimDay, simulate_day
from pbxwatch.sim.live import SimPlan, SimulatedPbx, with_tech
from tests.conftest import PJSIP_RECORDINGS, RECORDINGS
from tests.sim.expect import DAY
from tests.sim.sequences import header_shapes

TECHS = ("iax2", "pjsip")
#: seeds whose days hold two warning outages and a short one (3), and one
#: warning outage and two short ones of one person (7)
SEEDS = (3, 7)
TICK = 10.0


def _day(settings: Settings, tech: str, seed: int) -> tuple[Settings, SimDay]:
    on = with_tech(settings, tech)
    return on, simulate_day(on, DAY, calls_per_hour=40, seed=seed)


def _absences(settings: Settings, day: SimDay) -> list[tuple[float, Incident]]:
    """Every unforwarded-absence incident the engine made of the day, with
    the engine's clock when it made it.  Fed as a live pbxwatch is at 1x
    (each frame received at its own time, the clock ticking every 10 s
    between frames), so a warning opens when the limit passes even in a
    quiet stretch of the day."""
    seen: list[tuple[float, Record]] = []
    pipeline = Pipeline(build_engine(settings))
    pipeline.sinks.append(lambda rec: seen.append((pipeline.engine.now, rec)))
    tick = day.start
    for t, fields in day.frames:
        while tick + TICK < t:
            tick += TICK
            pipeline.tick_live(tick)
        pipeline.feed_fields(fields, received=t)
    pipeline.finish()
    assert all(v == 0 for v in pipeline.engine.bad_input.values()), pipeline.engine.bad_input
    return [(now, r) for now, r in seen
            if isinstance(r, Incident) and r.kind == "unforwarded_absence"]  # fmt: skip


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("tech", TECHS)
def test_long_outages_warn_once_and_resolve_short_ones_do_not(
    lab_settings: Settings, tech: str, seed: int
) -> None:
    settings, day = _day(lab_settings, tech, seed)
    limit = settings.detection.unforwarded_absence_minutes * 60
    assert any(o.warns for o in day.outages)
    assert any(not o.warns for o in day.outages)
    assert all((o.end - o.start > limit) == o.warns for o in day.outages)
    found = _absences(settings, day)
    opened = [(r.extension, r.started_at) for _, r in found if r.state == "open"]
    resolved = [(r.extension, r.started_at, r.ended_at) for _, r in found
                if r.state == "resolved"]  # fmt: skip
    assert opened == [(ext, start) for ext, start, _ in day.unforwarded_absences]
    assert resolved == day.unforwarded_absences
    for now, inc in found:  # opened once the limit has passed, not before or much later
        if inc.state == "open":
            assert inc.started_at + limit <= now <= inc.started_at + limit + TICK + 1
    short = {(o.ext, o.start) for o in day.outages if not o.warns}
    assert not short & {(r.extension, r.started_at) for _, r in found}


@pytest.mark.parametrize("seed", SEEDS)
def test_nobody_calls_or_is_called_on_an_unreachable_phone(
    lab_settings: Settings, seed: int
) -> None:
    _, day = _day(lab_settings, "iax2", seed)
    for o in day.outages:
        for c in day.calls:
            involved = {c.caller, c.target, c.answered_by, c.transferred_to, *c.unanswered_rings}
            if o.ext in involved:
                assert c.end <= o.start or c.start >= o.end, (o, c)


def _recorded_shapes() -> dict[str, set[tuple[str, ...]]]:
    shapes: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for path in RECORDINGS + PJSIP_RECORDINGS:
        for kind, s in header_shapes(parse_frame(f.raw) for f in load_recording(path)).items():
            shapes[kind] |= s
    return shapes


def _recorded(event: str) -> list[dict[str, str]]:
    return [f for path in PJSIP_RECORDINGS for f in map(parse_frame, (r.raw for r in
            load_recording(path))) if f.get("Event") == event]  # fmt: skip


def test_a_pjsip_day_has_the_recorded_contact_and_peer_events(lab_settings: Settings) -> None:
    settings, day = _day(lab_settings, "pjsip", 3)
    real = _recorded_shapes()
    ours = header_shapes(fields for _, fields in day.frames)
    assert {"ContactStatus", "PeerStatus"} <= set(ours)
    wrong = {kind: sorted(s - real[kind]) for kind, s in ours.items() if not s <= real[kind]}
    assert not wrong, wrong
    for event, key in (("ContactStatus", "ContactStatus"), ("PeerStatus", "PeerStatus")):
        [privilege] = {f["Privilege"] for f in _recorded(event)}
        frames = [f for _, f in day.frames if f["Event"] == event]
        assert {f["Privilege"] for f in frames} == {privilege}
        assert {f[key] for f in frames} == {"Reachable", "Unreachable"}
    first = [f for t, f in day.frames if t == day.start and f["Event"] == "ContactStatus"]
    endpoints = sorted(d.split("/")[1] for d in Pbx.from_settings(settings).devices.values())
    assert sorted(f["EndpointName"] for f in first) == endpoints  # every phone registers
    for f in first:
        assert f["AOR"] == f["EndpointName"]
        assert f["URI"] == f"sip:{f['AOR']}@127.0.0.1:15070"
        assert int(f["RoundtripUsec"]) > 0
    peers = [f for t, f in day.frames if t == day.start and f["Event"] == "PeerStatus"]
    assert {(f["ChannelType"], f["Peer"]) for f in peers} == {
        ("PJSIP", f"PJSIP/{e}") for e in endpoints
    }


def test_an_iax2_day_says_unreachable_by_device_state_only(lab_settings: Settings) -> None:
    _, day = _day(lab_settings, "iax2", 3)
    names = {f["Event"] for _, f in day.frames}
    assert not names & {"ContactStatus", "PeerStatus"}  # none in the IAX2 recordings
    o = day.outages[0]
    device = f"IAX2/{o.ext}"
    states = [(t, f["State"]) for t, f in day.frames
              if f["Event"] == "DeviceStateChange" and f["Device"] == device]  # fmt: skip
    assert (o.start, "UNAVAILABLE") in states
    assert (o.end, "UNKNOWN") in states  # how the lab's idle IAX2 phones report


@pytest.mark.parametrize("tech", TECHS)
def test_the_state_read_mid_outage_says_unavailable(lab_settings: Settings, tech: str) -> None:
    """A pbxwatch that starts while a phone is unreachable learns it from
    DeviceStateList and ExtensionStateList."""
    settings, day = _day(lab_settings, tech, 3)
    o = next(o for o in day.outages if o.warns)
    device = f"{tech.upper()}/{o.ext}"
    sim = SimulatedPbx(settings, SimPlan(DAY), "u", "s")
    frames = iter(day.frames)
    for t, fields in frames:
        if t > (o.start + o.end) / 2:
            break
        sim.state.apply(fields)
    devices = {i["Device"]: i["State"] for i in sim.state.answer("devicestatelist", {})}
    hints = {i["Exten"]: i["StatusText"] for i in sim.state.answer("extensionstatelist", {})}
    assert devices[device] == "UNAVAILABLE"
    assert hints[o.ext] == "Unavailable"
    for t, fields in frames:
        if t > o.end:
            break
        sim.state.apply(fields)
    devices = {i["Device"]: i["State"] for i in sim.state.answer("devicestatelist", {})}
    assert devices[device] != "UNAVAILABLE"


def _state_items(settings: Settings, day: SimDay, until: float) -> list[dict[str, str]]:
    """The simulator's DeviceStateList answer at ``until``, as list items."""
    sim = SimulatedPbx(settings, SimPlan(DAY), "u", "s")
    for t, fields in day.frames:
        if t < until:
            sim.state.apply(fields)
    items = sim.state.answer("devicestatelist", {})
    return [{**item, "ActionID": f"state-{i}"} for i, item in enumerate(items)]


@pytest.mark.parametrize("tech", TECHS)
def test_a_pbxwatch_started_mid_outage_warns_from_the_state_read(
    lab_settings: Settings, tech: str
) -> None:
    """pbxwatch started a minute into a long outage, its first event before
    the answer to its state read (as a live login goes): DeviceStateList
    says UNAVAILABLE, so the warning opens once the limit has passed since
    the state read (pbxwatch cannot know the phone went earlier) and
    resolves when the phone is back."""
    settings, day = _day(lab_settings, tech, 3)
    limit = settings.detection.unforwarded_absence_minutes * 60
    o = next(o for o in day.outages if o.warns)
    later = [(t, f) for t, f in day.frames if t >= o.start + 60]
    while later[0][1]["Event"].startswith("RTCP"):  # skipped unread: they set no clock
        later.pop(0)
    restart = later[0][0]
    seen: list[Record] = []
    pipeline = Pipeline(build_engine(settings), [seen.append])
    pipeline.feed_fields(later[0][1], received=restart)
    for item in _state_items(settings, day, restart):
        pipeline.feed_fields(item)  # as the state read feeds them: no time of their own
    tick = restart
    for t, fields in later[1:]:
        while tick + TICK < t:
            tick += TICK
            pipeline.tick_live(tick)
        pipeline.feed_fields(fields, received=t)
    pipeline.finish()
    mine = [r for r in seen if isinstance(r, Incident) and r.kind == "unforwarded_absence"
            and r.extension == o.ext and r.started_at < o.end]  # fmt: skip
    assert [(r.state, r.ended_at) for r in mine] == [("open", None), ("resolved", o.end)]
    assert mine[0].started_at == pytest.approx(restart, abs=1e-3)
    assert o.end - restart > limit


def test_a_pbxwatch_whose_state_read_comes_first_waits_the_limit(
    lab_settings: Settings,
) -> None:
    settings, day = _day(lab_settings, "iax2", 3)
    o = next(o for o in day.outages if o.warns)
    later = [(t, f) for t, f in day.frames if t >= o.start + 60]
    seen: list[Record] = []
    pipeline = Pipeline(build_engine(settings), [seen.append])
    for item in _state_items(settings, day, later[0][0]):
        pipeline.feed_fields(item)
    for t, fields in later:
        pipeline.feed_fields(fields, received=t)
    opened = [r for r in seen if isinstance(r, Incident) and r.kind == "unforwarded_absence"]
    assert opened
    # unreachable before pbxwatch knew the PBX's time: counted from the first
    # moment it did (not from 1970), so the warning waits the whole limit
    assert opened[0].started_at >= later[0][0]
