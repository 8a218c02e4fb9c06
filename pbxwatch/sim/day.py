"""A simulated municipal working day, and the simulator's own record of it.

``simulate_day`` places calls at random (seeded) through the phone hours:
direct calls that are answered, rung unanswered into voicemail or the
contact centre, busy, abandoned, or diverted because the person set a
hänvisning; group-number and contact-centre calls; outbound calls; people
listening to their voicemail and calling back (on time, late or not at
all); and a few phones unreachable for a while with no diversion set
(``Outage``), long enough to warn of or not.  A person is never in two
calls at once.  Alongside the AMI frames
it keeps a ``SimCall`` per call saying what it made happen, so a test can
count what pbxwatch should find without asking pbxwatch.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Literal
from zoneinfo import ZoneInfo

from pbxwatch.ami.codec import encode_frame
from pbxwatch.ami.server import RecordedFrame
from pbxwatch.settings import Settings
from pbxwatch.sim.calls import Pbx, QueueAttempt, Scripts, SimQueue
from pbxwatch.sim.emitter import Emitter, Frame

CallKind = Literal[
    "direct_answered", "direct_unanswered", "direct_busy", "direct_abandoned",
    "direct_diverted", "queue", "outbound", "listen",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class SimCall:
    """What one simulated call was and what became of it."""

    kind: CallKind
    start: float
    end: float
    caller: str  # the caller's number, or the extension for calls from phones
    target: str  # extension, queue name or dialled number
    outcome: str  # answered / voicemail / voicemail_no_message / abandoned / busy / ...
    answered_by: str | None = None
    mailbox: str | None = None  # the mailbox a message was left in
    unanswered_rings: tuple[str, ...] = ()  # extensions rung without answer
    missing_forward: bool = False
    diverted: bool = False
    callback_for: int | None = None  # index of the call whose message this calls back
    answered_at: float | None = None  # when a person answered
    queue_kind: str | None = None  # "group" or "contact_centre" for calls to a queue's number
    transferred_to: str | None = None  # the extension an agent blind-transferred the call to

    @property
    def classification(self) -> str:
        """The call's type in the vocabulary of the lab recordings' truth
        files (``expected.classification``)."""
        cc = self.answered_by is not None or (self.outcome == "abandoned" and self.kind in
                                              ("direct_unanswered", "direct_diverted"))  # fmt: skip
        voicemail = "voicemail" if self.outcome == "voicemail" else "voicemail_no_message"
        cc_end = "contact_center_" + ("answered" if self.answered_by else "abandoned")
        match self.kind:
            case "direct_answered":
                return "answered"
            case "direct_abandoned":
                return "abandoned_while_ringing"
            case "direct_busy":
                return f"busy_to_{voicemail}"
            case "direct_unanswered":
                return f"ring_no_answer_to_{cc_end if cc else voicemail}"
            case "direct_diverted":
                return f"absent_to_{cc_end if cc else voicemail}"
            case "queue":
                if self.transferred_to:
                    return "queue_answered_then_transferred"
                kind = "group" if self.queue_kind == "group" else "queue"
                return f"{kind}_{'answered' if self.answered_by else 'abandoned'}"
            case "outbound":
                answered = self.outcome == "answered"
                if self.callback_for is not None:
                    return "callback_made" if answered else "callback_attempt_noanswer"
                return "outbound_answered" if answered else "outbound_not_answered"
        return "voicemail_listened"


@dataclass(frozen=True, slots=True)
class Diversion:
    ext: str
    start: float
    end: float
    state: str
    subtype: str
    message: str


@dataclass(frozen=True, slots=True)
class Outage:
    """A person's phone unreachable (switched off, unplugged, its network
    gone) in phone hours while no diversion is set: callers can reach
    nobody and nothing says why.  Only an outage longer than the limit
    (``detection.unforwarded_absence_minutes``) ``warns``; the short ones
    are a phone restarting, which pbxwatch must let pass.  Nobody calls the
    person, and they call nobody, while it lasts (the simulator has no
    recording of Asterisk failing a Dial to an unreachable phone)."""

    ext: str
    start: float
    end: float
    warns: bool


@dataclass
class SimDay:
    frames: list[Frame]
    calls: list[SimCall]
    diversions: list[Diversion]
    start: float
    end: float
    tz: ZoneInfo
    #: per message call index: "on_time" | "late" | "none" (callbacks planned)
    callback_plan: dict[int, str] = field(default_factory=dict)
    #: (queue, start, end): every member of a group number paused at once
    unstaffed: list[tuple[str, float, float]] = field(default_factory=list)
    #: phones unreachable without a diversion, in time order
    outages: list[Outage] = field(default_factory=list)

    @property
    def unforwarded_absences(self) -> list[tuple[str, float, float]]:
        """(extension, start, end) of each warning pbxwatch must open at
        ``start`` + the limit and resolve at ``end``."""
        return [(o.ext, o.start, o.end) for o in self.outages if o.warns]


_DIVERSIONS = [
    ("xa", "vacation", "Semester till 1 december", 0.0, 24.0),
    ("away", "lunch", "Lunch till 13:00", 11.5, 13.0),
    ("away", "lunch", "Lunch till 12:30", 11.75, 12.5),
    ("dnd", "meeting", "Möte till 15:00", 13.5, 15.0),
    ("away", "meeting", "Utbildning", 9.0, 10.5),
]
#: How many outages a day has: (long ones that warn, short ones that do not)
_OUTAGES = ((1, 2), (1, 2))
#: Long outages last the limit and this many minutes more; short ones this
#: share of the limit (well clear of it: pbxwatch judges once a second)
_LONG_EXTRA_MINUTES = (5.0, 40.0)
_SHORT_SHARE = (0.1, 0.6)
#: When the whole team of each group number takes a break together (hours).
_TEAM_BREAK = (12.0, 12.25)


class _Planner:
    def __init__(self, settings: Settings, day: dt.date, seed: int) -> None:
        self.settings = settings
        self.tz = ZoneInfo(settings.timezone)
        self.pbx = Pbx.from_settings(settings)
        self.rng = random.Random(seed)
        self.em = Emitter()
        self.scripts = Scripts(self.pbx, self.em)
        self.day = day
        self.busy: dict[str, list[tuple[float, float]]] = defaultdict(list)
        self.calls: list[SimCall] = []
        self.diversions: list[Diversion] = []
        self.unstaffed: list[tuple[str, float, float]] = []
        self.outages: list[Outage] = []
        members = {m for q in self.pbx.queues.values() for m in q.members}
        self.direct_people = sorted(e for e in self.pbx.dids if e not in members)
        self.group_people = sorted(members)

    def at(self, hour: float) -> float:
        h, m = int(hour), round((hour - int(hour)) * 60)
        return dt.datetime.combine(self.day, dt.time(h, m), self.tz).timestamp()

    def number(self) -> str:
        return "07" + "".join(self.rng.choice("0123456789") for _ in range(8))

    def free(self, ext: str, t: float, until: float | None = None) -> bool:
        """Nobody is in a call with ``ext`` between ``t`` and ``until``."""
        end = t + 1 if until is None else until
        return all(e <= t or s >= end for s, e in self.busy[ext])

    def occupy(self, ext: str, start: float, end: float) -> None:
        self.busy[ext].append((start, end))

    def diverted(self, ext: str, t: float) -> Diversion | None:
        return next((d for d in self.diversions if d.ext == ext and d.start <= t < d.end), None)

    # ------------------------------------------------------------ planning

    def plan_diversions(self) -> None:
        people = self.rng.sample(
            self.direct_people, k=min(len(_DIVERSIONS), len(self.direct_people))
        )
        for ext, (state, sub, msg, h0, h1) in zip(people, _DIVERSIONS, strict=False):
            start = self.at(max(h0, 6.0))
            end = self.at(min(h1, 19.0))
            self.diversions.append(Diversion(ext, start, end, state, sub, msg))
            dev, pres = self.pbx.devices[ext], self.pbx.presentities[ext]
            self.em.presence(start, pres, ext, dev, state, sub, msg)
            self.em.presence(end, pres, ext, dev, "available", "", "")

    def register_phones(self, t: float) -> None:
        """PJSIP phones answer their first qualify after the PBX starts, as
        in the lab's PJSIP recording; IAX2 phones report nothing."""
        for ext in sorted(self.pbx.devices):
            if self.pbx.devices[ext].startswith("PJSIP/"):
                self.scripts.reachability(t, ext, reachable=True)

    def plan_outages(self, open_hour: float, close_hour: float) -> None:
        """A few phones unreachable for a while, each of a person with no
        diversion then, inside both the day's calls (five minutes clear of
        its opening and closing) and the unit's phone hours; the person is
        kept out of calls meanwhile."""
        limit = self.settings.detection.unforwarded_absence_minutes * 60.0
        long_n, short_n = (self.rng.randint(*n) for n in _OUTAGES)
        for warns in [True] * long_n + [False] * short_n:
            if warns:
                seconds = limit + 60.0 * self.rng.uniform(*_LONG_EXTRA_MINUTES)
            else:
                seconds = limit * self.rng.uniform(*_SHORT_SHARE)
            earliest, latest = self.at(open_hour) + 300, self.at(close_hour) - seconds - 300
            start = self.rng.uniform(earliest, max(earliest, latest))
            ext = self.outage_person(start, start + seconds) if latest >= earliest else None
            if ext is None:  # a day too short for it, or nobody free of diversions
                continue
            start = float(round(start))
            outage = Outage(ext, start, float(round(start + seconds)), warns)
            self.outages.append(outage)
            # no call of theirs still going when the phone goes (none lasts 10 min)
            self.occupy(ext, outage.start - 600, outage.end + 60)
            self.scripts.reachability(outage.start, ext, reachable=False)
            self.scripts.reachability(outage.end, ext, reachable=True)
        self.outages.sort(key=lambda o: o.start)

    def outage_person(self, start: float, end: float) -> str | None:
        """Someone called directly, free and without a diversion from ten
        minutes before to a minute after, inside their unit's phone hours."""
        fits = [e for e in self.direct_people
                if self.free(e, start - 600, end + 60) and self.in_hours(e, start, end)
                and not any(d.ext == e and d.start < end + 60 and d.end > start - 600
                            for d in self.diversions)]  # fmt: skip
        return self.rng.choice(fits) if fits else None

    def in_hours(self, ext: str, start: float, end: float) -> bool:
        unit = self.settings.directory.units.get(self.pbx.units[ext])
        if unit is None:
            return True
        hours = unit.phone_hours
        opens = dt.datetime.combine(self.day, hours.open, self.tz).timestamp()
        return opens <= start and end <= self.close_of(ext)

    def staff_queues(self, t: float) -> None:
        for q in self.pbx.queues.values():
            for ext in q.members:
                self.em.member_event(t, "QueueMemberStatus", self.pbx.member(q, ext),
                                     self.pbx.idle_status(ext))  # fmt: skip

    def plan_team_breaks(self) -> None:
        """Every group number's members pause together: nobody available."""
        start, end = self.at(_TEAM_BREAK[0]), self.at(_TEAM_BREAK[1])
        for q in self.pbx.queues.values():
            if q.kind != "group":
                continue
            for i, ext in enumerate(q.members):
                m, idle = self.pbx.member(q, ext), self.pbx.idle_status(ext)
                self.em.member_event(start - 60 * (len(q.members) - 1 - i), "QueueMemberPause",
                                     m, idle, paused=True, reason="Rast")  # fmt: skip
                self.em.member_event(end + 60 * i, "QueueMemberPause", m, idle)
            self.unstaffed.append((q.name, start, end))

    def on_break(self, q: SimQueue, t: float) -> bool:
        """No calls to a group number around its break (a call answered
        before would end after the break began)."""
        return any(name == q.name and s - 900 <= t <= e + 60 * len(q.members)
                   for name, s, e in self.unstaffed)  # fmt: skip

    def place(self, t: float) -> None:
        roll = self.rng.random()
        if roll < 0.55:
            self.direct(t)
        elif roll < 0.85 and self.pbx.queues:
            self.queue(t, self.rng.choice(sorted(self.pbx.queues.values(), key=lambda q: q.name)))
        else:
            self.outbound(t, self.rng.choice(self.direct_people), self.number(), None)

    def showcase(self, t: float) -> None:
        """The demo's opening, a few seconds apart: a direct call answered,
        one that rings out into voicemail (an unanswered ring, a missing
        forward and a callback to make), and a call to a group number.  A
        new user sees every kind of figure move in the first seconds instead
        of waiting for chance to bring them."""
        self.direct(t, roll=0.0)
        self.direct(t + 3.0, roll=0.99)
        groups = [q for q in sorted(self.pbx.queues.values(), key=lambda q: q.name)
                  if q.kind != "contact_centre"]  # fmt: skip
        if groups:
            self.queue(t + 6.0, groups[0])

    def direct(self, t: float, roll: float | None = None) -> None:
        """A call to a person's number; ``roll`` picks its script (the
        showcase), else chance does."""
        free = [e for e in self.direct_people if self.free(e, t)]
        if not free:
            return
        ext = self.rng.choice(free)
        caller = self.number()
        sc, rng = self.scripts, self.rng
        div = self.diverted(ext, t)
        cc = self.pbx.contact_centre
        if div is not None:
            to_cc = cc is not None and rng.random() < 0.3
            msg = None if to_cc or rng.random() < 0.2 else rng.uniform(5, 40)
            attempts, who = self.cc_attempts(t, answer=True) if to_cc else ([], None)
            then: Literal["voicemail", "contact_centre"] = (
                "contact_centre" if to_cc else "voicemail"
            )
            end = sc.direct_not_reached(t, caller, ext, "diverted", then=then, message=msg,
                                        queue=attempts, talk=60)  # fmt: skip
            self.record("direct_diverted", t, end, caller, ext, to_cc, msg, who, diverted=True,
                        attempts=attempts)  # fmt: skip
            return
        roll = rng.random() if roll is None else roll
        if roll < 0.6:
            ring = rng.uniform(2, 18)
            end = sc.direct_answered(
                t, caller, ext, ring, rng.uniform(30, 400), callee_hangs_up=rng.random() < 0.3
            )
            self.calls.append(SimCall("direct_answered", t, end, caller, ext, "answered", ext,
                                      answered_at=sc.take_answer()))  # fmt: skip
        elif roll < 0.72:
            after = rng.uniform(2, 19)
            end = sc.direct_abandoned(t, caller, ext, after)
            self.calls.append(SimCall("direct_abandoned", t, end, caller, ext, "abandoned",
                                      unanswered_rings=(ext,)))  # fmt: skip
        elif roll < 0.78:
            msg = rng.uniform(5, 30) if rng.random() < 0.7 else None
            end = sc.direct_not_reached(t, caller, ext, "busy", then="voicemail", message=msg)
            self.record("direct_busy", t, end, caller, ext, False, msg, None)
        else:
            to_cc = cc is not None and rng.random() < 0.3
            msg = None if to_cc or rng.random() < 0.25 else rng.uniform(5, 40)
            attempts, who = self.cc_attempts(t + 20, answer=True) if to_cc else ([], None)
            end = sc.direct_not_reached(t, caller, ext, "noanswer",
                                        then="contact_centre" if to_cc else "voicemail",
                                        message=msg, queue=attempts, talk=60)  # fmt: skip
            self.record("direct_unanswered", t, end, caller, ext, to_cc, msg, who,
                        rung=True, attempts=attempts)  # fmt: skip
        self.occupy(ext, t, end)

    def record(self, kind: CallKind, t: float, end: float, caller: str, ext: str, to_cc: bool,
               msg: float | None, who: str | None, *, rung: bool = False,
               diverted: bool = False, attempts: list[QueueAttempt] | None = None,
               ) -> None:  # fmt: skip
        rings = ((ext,) if rung else ()) + tuple(
            a.ext for a in attempts or [] if a.result in ("noanswer", "cancel")
        )
        if to_cc:
            outcome = "answered" if who else "abandoned"
        else:
            outcome = "voicemail" if msg is not None else "voicemail_no_message"
        self.calls.append(SimCall(
            kind, t, end, caller, ext, outcome, answered_by=who,
            mailbox=self.pbx.mailboxes[ext] if msg is not None and not to_cc else None,
            unanswered_rings=rings, missing_forward=rung, diverted=diverted,
            answered_at=self.scripts.take_answer(),
        ))  # fmt: skip

    def cc_attempts(self, t: float, *, answer: bool) -> tuple[list[QueueAttempt], str | None]:
        """The contact centre rings one free agent at a time (15 s, 2 s apart)."""
        cc = self.pbx.contact_centre
        assert cc is not None
        free = [e for e in cc.members if self.free(e, t)]
        self.rng.shuffle(free)
        if not free:
            return [], None
        attempts: list[QueueAttempt] = []
        at = 1.4  # Answer + Playback before Queue()
        who: str | None = None
        if answer and len(free) > 1 and self.rng.random() < 0.3:
            attempts.append(QueueAttempt(free.pop(), at, 15.0, "noanswer"))
            at += 17.0
        if answer:
            who = free[0]
            attempts.append(QueueAttempt(who, at, self.rng.uniform(3, 12), "answer"))
            self.occupy(who, t, t + 600)
        else:  # the first agent rings out (15 s); the caller gives up on the next
            attempts.append(QueueAttempt(free[0], at, 15.0, "noanswer"))
            attempts.append(QueueAttempt(free[-1], at + 17.0, self.rng.uniform(3, 14), "cancel"))
        for a in attempts:
            self.occupy(a.ext, t, t + a.start + a.seconds + 1)
        return attempts, who

    def queue(self, t: float, q: SimQueue) -> None:
        if self.on_break(q, t):
            return
        answer = self.rng.random() < 0.8
        caller = self.number()
        transfer_to: str | None = None
        if q.kind == "contact_centre":
            attempts, who = self.cc_attempts(t, answer=answer)
            if not attempts:
                return
            attempts = [QueueAttempt(a.ext, a.start - 1.4, a.seconds, a.result) for a in attempts]
            # the recordings hold a transfer by the first agent offered the
            # call only (drawn as before, so that other days stay as they were)
            if who is not None and self.rng.random() < 0.15 and len(attempts) == 1:
                transfer_to = self.transfer_target(t)
        else:
            free = [e for e in q.members if self.free(e, t)]
            if len(free) < len(q.members):  # ringall: a member in a call is skipped
                return
            wait = self.rng.uniform(3, 20)
            who = self.rng.choice(free) if answer else None
            attempts = [
                QueueAttempt(e, 0.0, wait, "answer" if e == who else
                             ("elsewhere" if who else "cancel"))
                for e in free
            ]  # fmt: skip
        talk = self.rng.uniform(40, 300)
        end = self.scripts.queue_call(t, caller, q, attempts, talk, transfer_to)
        for a in attempts:
            self.occupy(a.ext, t, end if a.result == "answer" else t + a.start + a.seconds + 1)
        if transfer_to is not None:
            self.occupy(transfer_to, t, end)
        rings = tuple(a.ext for a in attempts if a.result in ("noanswer", "cancel"))
        self.calls.append(SimCall("queue", t, end, caller, q.name,
                                  "answered" if who else "abandoned", who,
                                  unanswered_rings=rings, queue_kind=q.kind,
                                  answered_at=self.scripts.take_answer(),
                                  transferred_to=transfer_to))  # fmt: skip

    def transfer_target(self, t: float) -> str | None:
        """Someone free for the whole transferred call (and without hänvisning)."""
        free = [e for e in self.direct_people
                if self.free(e, t, t + 700) and self.diverted(e, t) is None]  # fmt: skip
        return self.rng.choice(free) if free else None

    def outbound(self, t: float, ext: str, number: str, callback_for: int | None) -> bool:
        if not self.free(ext, t, t + 300):
            return False
        result = self.rng.choice(["answer", "answer", "answer", "noanswer"])
        seconds = self.rng.uniform(30, 200) if result == "answer" else self.rng.uniform(10, 30)
        end = self.scripts.outbound(t, ext, number, result, seconds)  # type: ignore[arg-type]
        self.occupy(ext, t, end)
        outcome = "answered" if result == "answer" else "no_answer"
        self.calls.append(SimCall("outbound", t, end, ext, number, outcome,
                                  callback_for=callback_for))  # fmt: skip
        return True

    def close_of(self, ext: str) -> float:
        """When the owner's unit closes its phones today."""
        unit = self.settings.directory.units.get(self.pbx.units[ext])
        close = unit.phone_hours.close if unit else dt.time(16, 30)
        return dt.datetime.combine(self.day, close, self.tz).timestamp()

    def follow_up(self) -> dict[int, str]:
        """Listen to messages and call back: on time, late (after closing) or never."""
        plan: dict[int, str] = {}
        messages = [(i, c) for i, c in enumerate(self.calls) if c.mailbox]
        listened: set[str] = set()
        for i, call in messages:
            owner = call.target
            close = self.close_of(owner)
            if owner not in listened:
                self.listen_after(owner, call.end + self.rng.uniform(60, 1800))
                listened.add(owner)
            choice = self.rng.choice(["on_time", "on_time", "late", "none"])
            when = (
                self.rng.uniform(call.end + 120, max(call.end + 180, close - 300))
                if choice == "on_time"
                else close + self.rng.uniform(300, 1800)
            )
            if choice == "on_time" and when >= close:
                choice = "late"
            if choice != "none":
                for _ in range(20):  # find a moment the owner is free
                    if self.outbound(when, owner, call.caller, i):
                        break
                    when += 240
                else:
                    choice = "none"
                if choice == "on_time" and when >= close:
                    choice = "late"
            plan[i] = choice
        return plan

    def listen_after(self, ext: str, t: float) -> None:
        while not self.free(ext, t, t + 30):
            t += 60
        end = self.scripts.listen(t, ext)
        self.occupy(ext, t, end)
        self.calls.append(SimCall("listen", t, end, ext, "*97", "completed"))


def simulate_day(
    settings: Settings,
    day: dt.date,
    *,
    calls_per_hour: float = 40.0,
    seed: int = 1,
    open_hour: float = 8.0,
    close_hour: float = 16.5,
    lead_in_seconds: float = 1800.0,
    call_at_open: bool = False,
    register: bool = True,
) -> SimDay:
    """Generate one working day on ``day``; frames sorted by time.  The
    day's stream begins ``lead_in_seconds`` before opening (the team logs
    in); with ``call_at_open`` the first call comes a second after opening
    instead of after a random wait, with the showcase's calls (the demo:
    something of every kind happens at once).
    With ``register`` (the first day a PBX plays) the PJSIP phones report
    reachable as the day's stream begins."""
    p = _Planner(settings, day, seed)
    start, close = p.at(open_hour) - lead_in_seconds, p.at(close_hour)
    if register:
        p.register_phones(start)
    p.staff_queues(start)
    p.plan_diversions()
    p.plan_team_breaks()
    p.plan_outages(open_hour, close_hour)
    t = p.at(open_hour)
    if call_at_open:
        p.showcase(t + 1.0)
    while True:
        t += p.rng.expovariate(calls_per_hour / 3600.0)
        if t >= close:
            break
        p.place(t)
    plan = p.follow_up()
    frames = _fill_message_counts(sorted(p.em.frames, key=lambda f: f[0]))
    end = max(c.end for c in p.calls) + 60 if p.calls else close
    order = sorted(range(len(p.calls)), key=lambda i: p.calls[i].start)
    new_index = {old: new for new, old in enumerate(order)}  # planned order -> time order
    calls = [p.calls[i] for i in order]
    calls = [
        c if c.callback_for is None else replace(c, callback_for=new_index[c.callback_for])
        for c in calls
    ]
    return SimDay(frames, calls, p.diversions, start, end, p.tz,
                  {new_index[i]: v for i, v in plan.items()}, p.unstaffed,
                  p.outages)  # fmt: skip


def frames_to_bytes(frames: list[Frame]) -> list[RecordedFrame]:
    """The frames as the AMI server sends them (raw, without the blank line)."""
    return [RecordedFrame(encode_frame(f)[:-2].rstrip(b"\r\n"), t) for t, f in frames]


def recording_bytes(frames: list[Frame]) -> bytes:
    """The frames as an ``.ami`` recording (banner, then frame after frame)."""
    from pbxwatch.ami.codec import EOM
    from pbxwatch.ami.server import BANNER

    return BANNER + b"".join(f.raw + EOM for f in frames_to_bytes(frames))


def _fill_message_counts(frames: list[Frame]) -> list[Frame]:
    """MessageWaiting New/Old as app_voicemail reports them, in time order."""
    new: dict[str, int] = defaultdict(int)
    old: dict[str, int] = defaultdict(int)
    for _, fields in frames:
        if fields.get("Event") != "MessageWaiting" or fields.get("Old") != "?":
            continue
        box = fields["Mailbox"]
        if fields["New"] == "+1":
            new[box] += 1
        else:  # listened: every new message becomes old
            old[box] += new[box]
            new[box] = 0
        fields["New"], fields["Old"] = str(new[box]), str(old[box])
        fields["Waiting"] = "1" if new[box] else "0"
    return frames
