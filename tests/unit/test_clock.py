"""The clock model (pbxwatch.core.clock): pure, no I/O, no event loop."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from pbxwatch.core.clock import ClockRules, EventClock, Timed

T0 = 1_795_500_000.0  # a Tuesday in November 2026


def replay(times: list[float | None]) -> list[Timed[int]]:
    clock: EventClock[int] = EventClock()
    out: list[Timed[int]] = []
    for i, t in enumerate(times):
        out += clock.offer(i, t)
    return out + clock.drain()


def times_of(out: list[Timed[int]]) -> list[float | None]:
    return [t.time for t in sorted(out, key=lambda t: t.item)]


def test_replay_releases_in_order_and_keeps_ordinary_times() -> None:
    times = [T0 + i * 0.5 for i in range(20)]
    out = replay(list(times))
    assert [t.item for t in out] == list(range(20))
    assert times_of(out) == times
    assert all(t.verdict == "ok" for t in out)


def test_a_lone_outlier_ahead_is_not_adopted() -> None:
    times: list[float | None] = [T0 + i for i in range(10)]
    times[5] = T0 + 5 + 20 * 3600
    out = replay(times)
    got = times_of(out)
    assert got[5] == T0 + 4  # applied at the time before it
    assert got[6:] == [T0 + i for i in range(6, 10)]
    assert [t.verdict for t in sorted(out, key=lambda t: t.item)][5] == "implausible"


def test_a_lone_outlier_behind_is_not_adopted() -> None:
    times: list[float | None] = [T0 + i for i in range(10)]
    times[5] = T0 - 3 * 86400
    got = times_of(replay(times))
    assert got[5] == T0 + 4
    assert got[6:] == [T0 + i for i in range(6, 10)]


def test_absurd_values_get_the_current_time() -> None:
    times: list[float | None] = [T0 + i for i in range(12)]
    for i, bad in zip((3, 5, 7, 9), (math.nan, math.inf, -5.0, 99_999_999_999.0), strict=True):
        times[i] = bad
    clock: EventClock[int] = EventClock()
    out: list[Timed[int]] = []
    for i, t in enumerate(times):
        out += clock.offer(i, t)
    out += clock.drain()
    got = times_of(out)
    assert [got[i] for i in (3, 5, 7, 9)] == [T0 + 2, T0 + 4, T0 + 6, T0 + 8]
    assert clock.implausible == 4


def test_nights_and_weekends_are_time_passing() -> None:
    friday = [T0 + i * 10 for i in range(5)]
    monday = [T0 + 3.5 * 86400 + i * 10 for i in range(5)]
    out = replay([*friday, *monday])
    assert times_of(out) == friday + monday
    assert all(t.step is None and t.verdict == "ok" for t in out)


def test_a_lasting_step_back_is_adopted_as_a_step() -> None:
    before = [T0 + i for i in range(5)]
    after = [T0 - 3600 + 5 + i for i in range(6)]
    out = replay([*before, *after])
    assert times_of(out) == before + after
    steps = [t.step for t in out if t.step is not None]
    assert len(steps) == 1
    assert steps[0].delta == -3600 + 1


def test_the_streams_last_event_may_move_a_little_unconfirmed() -> None:
    assert times_of(replay([T0, T0 + 1, T0 + 30]))[-1] == T0 + 30
    assert times_of(replay([T0, T0 + 1, T0 + 20 * 3600]))[-1] == T0 + 1


def test_events_without_a_time_keep_their_place_while_a_jump_is_judged() -> None:
    out = replay([T0, T0 + 3600, None, T0 + 3601, None, T0 + 3602, T0 + 3603])
    assert [t.item for t in out] == list(range(7))
    assert times_of(out) == [T0, T0 + 3600, T0 + 3600, T0 + 3601, T0 + 3601, T0 + 3602,
                             T0 + 3603]  # fmt: skip


def live(rules: ClockRules | None = None) -> EventClock[int]:
    return EventClock(rules or ClockRules())


def test_live_outlier_ahead_is_applied_at_the_estimate() -> None:
    clock = live()
    host = 1_000_000.0
    offset = T0 - host
    for i in range(5):
        clock.offer(i, host + i + offset, host + i)
    [t] = clock.offer(5, host + 5 + offset + 20 * 3600, host + 5)
    assert t.verdict == "implausible"
    assert t.time == host + 5 + offset
    [t] = clock.offer(6, host + 6 + offset, host + 6)
    assert t.verdict == "ok"
    assert t.time == host + 6 + offset


def test_live_late_frames_keep_their_own_time() -> None:
    clock = live()
    host = 1_000_000.0
    clock.offer(0, T0, host)
    [t] = clock.offer(1, T0 + 1, host + 31)  # 30 s late: a stalled reader
    assert t.verdict == "ok"
    assert t.time == T0 + 1
    [t] = clock.offer(2, T0 + 2, host + 300)  # five minutes late: not plausible
    assert t.verdict == "implausible"


def test_live_steps_are_adopted_once_confirmed_both_ways() -> None:
    clock = live()
    host = 1_000_000.0
    pbx = T0
    steps = []
    out = []
    for i in range(30):
        if i == 10:
            pbx += 7200
        if i == 20:
            pbx -= 7200
        out += clock.offer(i, pbx + i, host + i)
    steps = [t.step for t in out if t.step is not None]
    assert [s.delta for s in steps] == [7200.0, -7200.0]
    assert clock.steps == 2
    # the two events before each confirmation were applied on the old timebase
    assert [out[i].time for i in (10, 11)] == [T0 + 10, T0 + 11]
    assert out[12].time == T0 + 7200 + 12
    assert out[22].time == T0 + 22


def test_live_speed_widens_the_tolerance_with_the_host_jitter() -> None:
    clock = live(ClockRules(speed=600.0))
    host = 1_000_000.0
    clock.offer(0, T0, host)
    [t] = clock.offer(1, T0 + 600 * 1.5, host + 1.0)  # half a host second of jitter
    assert t.verdict == "ok"


def test_speed_zero_holds_until_judged_or_expired() -> None:
    clock = live(ClockRules(speed=0.0))
    host = 1_000_000.0
    assert [t.item for t in clock.offer(0, T0, host)] == [0]
    assert clock.offer(1, T0 + 600, host + 0.1) == []  # a jump: held
    assert clock.expire(host + 0.5) == []
    [t] = clock.expire(host + 1.2)
    assert t.item == 1
    assert t.time == T0 + 600
    assert clock.estimate(host + 2.1) == T0 + 602


@given(st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                          st.floats(min_value=-10_000, max_value=10_000).map(lambda d: T0 + d)),
                max_size=60))  # fmt: skip
def test_replay_time_never_goes_back_but_by_a_step(times: list[float | None]) -> None:
    out = replay(times)
    assert sorted(t.item for t in out) == list(range(len(times)))
    assert [t.item for t in out] == list(range(len(times)))
    last = None
    for t in out:
        if t.time is None:
            assert last is None
            continue
        assert math.isfinite(t.time)
        if last is not None and t.step is None:
            assert t.time >= last
        last = t.time


def test_the_pbx_clock_minus_the_hosts_at_any_speed() -> None:
    """What the health figures show: at 30x the PBX day runs ahead of the
    host, but the clocks are as far apart as the PBX's time now says, not
    the model's PBX − speed × host term (5e10 s at 30x)."""
    host = 1_800_000_000.0
    for speed in (1.0, 30.0):
        clock = live(ClockRules(speed=speed))
        assert clock.pbx_minus_host(host) is None  # nothing seen yet
        clock.offer(0, host - 7 * 86400, host)  # a PBX a week behind
        assert clock.pbx_minus_host(host) == -7 * 86400
        later = clock.pbx_minus_host(host + 10)
        assert later is not None
        assert abs(later - (-7 * 86400 + (speed - 1) * 10)) < 1e-6
    zero = live(ClockRules(speed=0.0))
    zero.offer(0, host - 3600, host)
    assert zero.pbx_minus_host(host) is None  # not tied to the host's clock
