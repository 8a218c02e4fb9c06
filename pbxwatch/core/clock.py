"""Which time an event happened at: the PBX's ``Timestamp``, checked.

Every fact pbxwatch records is dated by the PBX's own clock, but a single
garbled ``Timestamp`` (NaN, a year 5138, a value 20 h ahead) must not move
the core's clock, and a real change of the PBX's clock must not be taken
for garbage.  This module is the one place that decides; the engine asks it
and applies each event at the time it answers.

Two modes, because they have different evidence:

**Live** (frames carry their *receipt time*, the host's clock when the bytes
came off the socket).  The model keeps the PBX−host offset: PBX time runs
``speed`` times as fast as the host's (1 for a real PBX; a simulator or
``serve-recording --speed X`` runs faster on purpose), so an event's sample
``Timestamp − speed × received`` estimates the offset.  The estimate is the
largest sample of the recent ones: a frame can arrive late (network,
buffers, a busy loop) but never before it was sent, so the promptest frame
is the truest.  An event ahead of the estimate by more than ``tolerance`` or
behind it by more than ``max_delay`` is *implausible*: counted, and applied
at the estimated time, ``offset + speed × received``.  When ``confirm``
implausible events in a row agree with each other, the PBX clock really
stepped (an NTP correction, a PBX restarted with a wrong clock): the new
offset is adopted and a :class:`ClockStep` is returned, so the engine can
move calls in progress onto the new timebase and keep their durations whole.

**Replay** (no receipt times).  Time only has the events after it to be
checked against, so an event that leaves the recent run of time (forward by
more than ``jump``, or back by more than ``tolerance``) is held with the next
ones until ``lookahead`` later timestamps have been seen.  If ``confirm`` of
them agree with it, the jump is real: nights and weekends of a multi-day
recording are time passing (a jump back is a clock step).  Otherwise it was
a lone outlier and is applied at the time before it.  Holding costs a few
events of delay in a replay and nothing else.

**Live, not tied to the host** (``speed`` 0: a recording or a simulator
served as fast as it goes).  Receipt times say nothing about PBX time, so
events are judged as in a replay; what is held longer than ``hold`` host
seconds without a verdict is judged on the evidence there is, so a quiet
stream does not keep its last events back.

**Always.**  A ``Timestamp`` that is missing gets the current time; one that
is not a finite epoch between 1970 and 2200 is counted implausible and gets
the current time.  Time never moves back except by an adopted step, so no
duration is ever negative or computed from a rejected time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar
from zoneinfo import ZoneInfo

from pbxwatch.core.events import plausible_epoch
from pbxwatch.core.records import iso

T = TypeVar("T")

Verdict = Literal["ok", "none", "implausible"]


@dataclass(frozen=True, slots=True)
class ClockRules:
    """How much disagreement is noise.  Times in PBX seconds."""

    tolerance: float = 5.0  # live: ahead of the estimate; replay: back from the run
    max_delay: float = 60.0  # live: how late a frame may arrive and keep its time
    confirm: int = 3  # events that must agree before a step or jump is adopted
    speed: float = 1.0  # live: PBX seconds per host second; 0: not tied to the host
    jump: float = 2.0  # replay: a forward move larger than this is checked
    lookahead: int = 5  # replay: later timestamps a held jump is judged on
    window: int = 64  # live: recent samples the offset estimate is the max of
    unconfirmed_jump: float = 3600.0  # replay: a last event may move this far unconfirmed
    hold: float = 1.0  # live at speed 0: host seconds an event may wait for a verdict

    def live_tolerances(self) -> tuple[float, float]:
        """(ahead, behind) in PBX seconds.  A faster-than-real-time PBX turns
        the host's scheduling jitter into PBX seconds: two host seconds of
        slack, scaled by ``speed``, are never less than what is configured."""
        slack = 2.0 * self.speed if self.speed > 1.0 else 0.0
        return max(self.tolerance, slack), max(self.max_delay, slack)


@dataclass(frozen=True, slots=True)
class ClockStep:
    """The PBX's clock moved, and pbxwatch adopted the move."""

    step_id: str
    at: float  # PBX time on the new timebase when the step was adopted
    delta: float  # new − old, seconds
    mode: str  # "live" or "replay"
    confirmed_by: int  # events that agreed with the new time

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        return {
            "type": "clock_step",
            "step_id": self.step_id,
            "at": iso(self.at, tz),
            "delta_seconds": round(self.delta, 3),
            "mode": self.mode,
            "confirmed_by": self.confirmed_by,
        }


@dataclass(slots=True)
class Timed(Generic[T]):
    """An item released by the clock with the time to apply it at."""

    item: T
    time: float | None  # None only before any plausible time was seen
    verdict: Verdict
    step: ClockStep | None = None  # adopted just before this item


@dataclass(slots=True)
class _Held(Generic[T]):
    item: T
    ts: float | None
    verdict: Verdict


@dataclass
class EventClock(Generic[T]):
    """Decides the time of each item (an event) offered to it, in order.

    ``offer`` returns the items it can release now; in replay mode some are
    held until later ones judge them, and ``drain`` releases the rest at the
    end of the stream."""

    rules: ClockRules = field(default_factory=ClockRules)
    #: the time of the last released item (monotone but for adopted steps)
    now: float | None = None
    implausible: int = 0
    steps: int = 0
    #: live: estimated PBX − speed × host offset, None before the first sample
    offset: float | None = None
    _held: deque[_Held[T]] = field(default_factory=deque, init=False, repr=False)
    _samples: deque[float] = field(default_factory=deque, init=False, repr=False)
    _candidates: list[float] = field(default_factory=list, init=False, repr=False)
    _host: float | None = field(default=None, init=False, repr=False)  # speed 0: last receipt
    _held_since: float | None = field(default=None, init=False, repr=False)
    _tolerances: tuple[float, float] = field(default=(0.0, 0.0), init=False, repr=False)

    def __post_init__(self) -> None:
        self._tolerances = self.rules.live_tolerances()

    # ------------------------------------------------------------ public

    def offer(self, item: T, ts: float | None, received: float | None = None) -> list[Timed[T]]:
        """Time ``item`` whose ``Timestamp`` is ``ts``; ``received`` (host
        epoch seconds) makes it a live judgement, None a replay's."""
        if ts is not None and not plausible_epoch(ts):
            self.implausible += 1
            return self._release_or_hold(item, None, "implausible")
        if ts is None:
            return self._release_or_hold(item, None, "none")
        at = self.quick(ts, received)
        if at is not None:  # plausible, nothing held: applied at once
            return [Timed(item, at, "ok")]
        if received is not None and self.rules.speed > 0:
            return [self._live_outside(item, ts, received)]
        # a replay's jump, or an event behind one already held: judged later
        if not self._held:
            self._held_since = received
        self._held.append(_Held(item, ts, "ok"))
        return list(self._judge(final=False))

    def quick(self, ts: float | None, received: float | None = None) -> float | None:
        """The common case of ``offer`` without its allocations: the time to
        apply an event at when it is plausible, nothing is held and no step
        is under way; None sends the caller to ``offer``."""
        if ts is None or self._held or not plausible_epoch(ts):
            return None
        now, rules = self.now, self.rules
        if received is not None and rules.speed > 0:
            if self.offset is None:
                return None
            sample = ts - rules.speed * received
            d = sample - self.offset
            ahead, behind = self._tolerances
            if not -behind <= d <= ahead:
                return None
            if self._candidates:
                self._candidates.clear()
            self._learn(sample)
        else:
            if received is not None:
                self._host = received
            if now is not None and not now - rules.tolerance <= ts <= now + rules.jump:
                return None
        if now is None or ts > now:
            self.now = now = ts
        return now

    def drain(self) -> list[Timed[T]]:
        """End of the stream: judge what is held on the evidence there is."""
        return list(self._judge(final=True))

    def passed(self, t: float) -> None:
        """Time ``t`` is known to have come (a tick the caller vouches for)."""
        if not self._held and plausible_epoch(t) and (self.now is None or t > self.now):
            self.now = t

    def expire(self, host_now: float) -> list[Timed[T]]:
        """Live at speed 0: judge what has waited ``hold`` host seconds."""
        since = self._held_since
        if not self._held or since is None or host_now - since < self.rules.hold:
            return []
        return self.drain()

    def estimate(self, host_now: float) -> float | None:
        """Live: PBX time now, from the host's clock (for ticks)."""
        if self.offset is not None:
            t = self.offset + self.rules.speed * host_now
        elif self._host is not None and self.now is not None:
            t = self.now + max(0.0, host_now - self._host)  # speed 0: host seconds pass
        else:
            return self.now
        return t if self.now is None else max(t, self.now)

    def pbx_minus_host(self, host_now: float) -> float | None:
        """Live: how far the PBX clock is from the host's now (``None`` until
        known, and at speed 0, where the two are not tied).  The model's
        ``offset`` is PBX − speed × host, which is this at speed 1 only."""
        if self.offset is None or self.rules.speed <= 0:
            return None
        estimate = self.estimate(host_now)
        return None if estimate is None else estimate - host_now

    @property
    def ready(self) -> bool:
        """Whether ``estimate`` has anything to go on yet."""
        return self.offset is not None or (self._host is not None and self.now is not None)

    def observe(self, ts: float | None, received: float) -> None:
        """Live: a PBX time that is not an event's (a ``Ping`` answer)
        teaches the offset when nothing else has yet; at speed 0 it is the
        only word on how far PBX time went while no event came."""
        if ts is None or not plausible_epoch(ts):
            return
        if self.rules.speed > 0 and self.offset is None:
            self._learn(ts - self.rules.speed * received)
        elif self.rules.speed == 0 and (self.now is None or ts > self.now):
            # nothing else tells how far PBX time went while nothing came
            self.now, self._host = ts, received

    # ----------------------------------------------------------- live

    def _live_outside(self, item: T, ts: float, received: float) -> Timed[T]:
        """A live event ``quick`` did not accept: the first one (it teaches
        the offset), or one outside the tolerances of the estimate."""
        sample = ts - self.rules.speed * received
        if self.offset is None:
            self._learn(sample)
            return self._at(item, ts, "ok")
        self.implausible += 1
        step = self._maybe_step(sample, self._tolerances[0])
        if step is not None:
            return self._at(item, ts, "implausible", step)
        return self._at(item, self.offset + self.rules.speed * received, "implausible")

    def _maybe_step(self, sample: float, tol: float) -> ClockStep | None:
        c = self._candidates
        if c and abs(sample - c[-1]) > 2 * tol:
            c.clear()  # not the same new time as the ones before
        c.append(sample)
        if len(c) < self.rules.confirm:
            return None
        assert self.offset is not None
        # the promptest of the confirming frames, as the offset is the
        # promptest of the recent ones: the step's size is then off by the
        # difference of two delays (ms on a real PBX, times ``speed`` faster)
        delta = max(c) - self.offset
        self.offset = None
        self._samples.clear()
        for s in c:
            self._learn(s)
        c.clear()
        return self._step(delta, self.rules.confirm, "live")

    def _learn(self, sample: float) -> None:
        samples = self._samples
        samples.append(sample)
        if len(samples) > self.rules.window:
            old = samples.popleft()
            if old == self.offset:
                self.offset = max(samples)
                return
        if self.offset is None or sample > self.offset:
            self.offset = sample

    # --------------------------------------------------------- replay

    def _leaves_run(self, ts: float) -> bool:
        now = self.now
        return now is not None and not (now - self.rules.tolerance <= ts <= now + self.rules.jump)

    def _judge(self, *, final: bool) -> Iterator[Timed[T]]:
        held = self._held
        self._held_since = self._host if held else None
        while held:
            head = held[0]
            if head.ts is None:
                held.popleft()
                yield self._at(head.item, None, head.verdict)
                continue
            if not self._leaves_run(head.ts):
                held.popleft()
                yield self._at(head.item, head.ts, "ok")
                continue
            verdict = self._vote(head.ts, final=final)
            if verdict is None:
                return  # wait for more evidence
            held.popleft()
            if verdict:
                step = None
                if self.now is not None and head.ts < self.now:
                    step = self._step(head.ts - self.now, self.rules.confirm, "replay")
                yield self._at(head.item, head.ts, "ok", step)
            else:
                self.implausible += 1
                yield self._at(head.item, None, "implausible")

    def _vote(self, ts: float, *, final: bool) -> bool | None:
        """Does the evidence after a held time agree with it (True), with
        the run before it (False), or not enough yet (None)?"""
        assert self.now is not None
        tol, jump, now = self.rules.tolerance, self.rules.jump, self.now
        forward = ts > now
        agree = against = seen = 0
        for h in list(self._held)[1:]:
            if h.ts is None:
                continue
            seen += 1
            if now - tol <= h.ts <= now + jump:
                against += 1  # back in the run before it
            elif forward:
                if h.ts >= ts - tol:
                    agree += 1
                else:
                    against += 1
            elif ts - tol <= h.ts < now - tol:
                agree += 1
            if seen >= self.rules.lookahead:
                break
        need = self.rules.confirm
        if agree >= need:
            return True
        if against > self.rules.lookahead - need or seen >= self.rules.lookahead:
            return False
        if final:
            if seen == 0:  # the stream's last event: a modest move is believed
                return forward and ts - now <= self.rules.unconfirmed_jump
            return agree > against
        return None

    # --------------------------------------------------------- shared

    def _release_or_hold(self, item: T, ts: float | None, verdict: Verdict) -> list[Timed[T]]:
        if self._held:
            self._held.append(_Held(item, ts, verdict))
            return []
        return [self._at(item, None, verdict)]

    def _at(
        self, item: T, ts: float | None, verdict: Verdict, step: ClockStep | None = None
    ) -> Timed[T]:
        if step is not None or self.now is None:
            self.now = ts if ts is not None else self.now
        elif ts is not None and ts > self.now:
            self.now = ts
        return Timed(item, self.now, verdict, step)

    def _step(self, delta: float, confirmed_by: int, mode: str) -> ClockStep:
        self.steps += 1
        at = (self.now or 0.0) + delta
        return ClockStep(f"clockstep:{mode}:{at:.3f}", at, delta, mode, confirmed_by)
