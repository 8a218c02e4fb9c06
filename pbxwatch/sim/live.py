"""The simulator as a live PBX: an AMI server that plays simulated working
days in (accelerated) real time to every client that logs in.

Each working day is generated in full by ``simulate_day`` (so the
simulator keeps its own record of what it made happen, ``days``) and then
sent frame by frame when its time comes: ``speed`` simulated seconds pass
per wall-clock second, and the night between two working days is skipped.
Status actions are answered from a ``PbxState`` that sees every frame
just before the clients do.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from zoneinfo import ZoneInfo

import holidays

from pbxwatch.ami.codec import encode_frame
from pbxwatch.ami.server import AmiServer
from pbxwatch.core.calendar import PhoneHours, WorkCalendar
from pbxwatch.settings import Settings
from pbxwatch.sim.calls import Pbx
from pbxwatch.sim.day import SimDay, simulate_day
from pbxwatch.sim.state import PbxState

log = logging.getLogger(__name__)

#: the days the simulated municipality works (Monday to Friday)
OFFICE_HOURS = PhoneHours()
#: how often a wait for the next frame checks for a pause (wall seconds)
PAUSE_CHECK_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class SimPlan:
    """What to simulate and how fast."""

    first_day: dt.date
    days: int | None = None  # None: working day after working day, until stopped
    calls_per_hour: float = 40.0
    speed: float = 60.0  # simulated seconds per wall-clock second
    seed: int = 1
    open_hour: float = 8.0
    close_hour: float = 16.5
    #: faults of the PBX's clock: (true PBX time, seconds the clock steps by
    #: then), e.g. an NTP correction; the frames' Timestamps follow the clock
    clock_steps: tuple[tuple[float, float], ...] = ()
    #: how long before opening a day's stream begins (the team logging in)
    lead_in_seconds: float = 1800.0
    #: the first call a second after opening, not after a random wait
    call_at_open: bool = False

    def skew(self, t: float) -> float:
        """How far the PBX's clock is off at true time ``t``."""
        return sum(delta for at, delta in self.clock_steps if at <= t)


#: the channel technologies the simulator can speak
TECHS = {"iax2": "IAX2", "pjsip": "PJSIP"}


def with_tech(settings: Settings, tech: str) -> Settings:
    """The same PBX on another channel technology (``pjsip``): the phones'
    devices and the trunk patterns renamed, as the lab's PJSIP twin is the
    IAX2 one with PJSIP endpoints of the same names."""
    name = TECHS[tech.lower()]

    def renamed(device: str) -> str:
        head, sep, rest = device.partition("/")
        return f"{name}/{rest}" if sep and head.lower() in ("iax2", "pjsip", "sip") else device

    d = settings.directory
    people = {ext: p.model_copy(update={"devices": [renamed(x) for x in p.devices]})
              for ext, p in d.people.items()}  # fmt: skip
    templates = [renamed(t) for t in d.device_templates]
    directory = d.model_copy(update={"people": people, "device_templates": templates})
    inbound = settings.inbound.model_copy(
        update={"trunk_channels": [renamed(t) for t in settings.inbound.trunk_channels]}
    )
    return settings.model_copy(update={"directory": directory, "inbound": inbound})


def sim_calendar(settings: Settings) -> WorkCalendar:
    """The municipality's calendar: Swedish public holidays and eves, and
    the configured closed days."""
    return WorkCalendar(ZoneInfo(settings.timezone), frozenset(settings.calendar.closed_days))


def closed_because(settings: Settings, day: dt.date) -> str | None:
    """Why ``day`` is not a working day (``None`` when it is one): the
    simulator plays working days only."""
    if sim_calendar(settings).is_working_day(day, OFFICE_HOURS):
        return None
    if day.weekday() >= 5:
        return "lördag" if day.weekday() == 5 else "söndag"
    name = holidays.country_holidays(
        "SE", years=day.year, categories=("public", "de_facto"), language="sv"
    )
    return name.get(day) or "a closed day in calendar.closed_days"


def first_working_day(settings: Settings, day: dt.date) -> dt.date:
    cal = sim_calendar(settings)
    return day if cal.is_working_day(day, OFFICE_HOURS) else cal.next_working_day(day, OFFICE_HOURS)


def working_days(settings: Settings, first: dt.date, count: int | None) -> Iterator[dt.date]:
    """The working days from ``first`` on: weekends, public holidays,
    julafton, nyårsafton and midsommarafton, and the configured closed days
    are skipped, as the municipality's phones are closed on them."""
    day, n = first_working_day(settings, first), 0
    cal = sim_calendar(settings)
    while count is None or n < count:
        yield day
        n += 1
        day = cal.next_working_day(day, OFFICE_HOURS)


@dataclass
class SimulatedPbx:
    settings: Settings
    plan: SimPlan
    username: str
    secret: str
    days: list[SimDay] = field(default_factory=list)  # the simulator's own record
    sent: int = 0  # frames published
    finished: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.state = PbxState(Pbx.from_settings(self.settings))
        self.server = AmiServer(None, self.username, self.secret, state=self.state)
        self.now: float | None = None  # the simulated clock
        self.server.clock = lambda: self._opening() if self.now is None else self.now
        self._running = asyncio.Event()
        self._running.set()
        self._paused_at = 0.0
        self._held = 0.0  # wall seconds spent paused: the day's clock stood still
        self._skipped = 0.0  # PBX seconds let pass at once

    def pause(self) -> None:
        """Stop the simulated clock (tests: a restart that takes exactly
        the PBX time they let pass before pausing)."""
        if self._running.is_set():
            self._running.clear()
            self._paused_at = time.monotonic()

    def fast_forward(self, seconds: float) -> None:
        """Let ``seconds`` of PBX time pass at once (tests: skip the quiet
        half hour before opening)."""
        self._skipped += seconds

    def resume(self) -> None:
        if not self._running.is_set():
            self._held += time.monotonic() - self._paused_at
            self._running.set()

    def _opening(self) -> float:
        """The simulated clock before the first frame: half an hour before
        the first day opens (not the host's clock, which may be days away)."""
        first = next(working_days(self.settings, self.plan.first_day, 1))
        midnight = dt.datetime.combine(first, dt.time(), ZoneInfo(self.settings.timezone))
        return midnight.timestamp() + self.plan.open_hour * 3600.0 - self.plan.lead_in_seconds

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        return await self.server.start(host, port)

    async def close(self) -> None:
        await self.server.close()

    async def run(self) -> None:
        """Play the planned days; returns when the last one has been sent."""
        p = self.plan
        for i, date in enumerate(working_days(self.settings, p.first_day, p.days)):
            day = simulate_day(self.settings, date, calls_per_hour=p.calls_per_hour,
                               seed=p.seed + i, open_hour=p.open_hour,
                               close_hour=p.close_hour, lead_in_seconds=p.lead_in_seconds,
                               call_at_open=p.call_at_open and i == 0,
                               register=i == 0)  # fmt: skip
            self.days.append(day)
            log.info("simulating %s: %d calls, %d events", date, len(day.calls), len(day.frames))
            await self._play(day)
        self.finished.set()

    async def _play(self, day: SimDay) -> None:
        start_sim, start_wall = day.start, time.monotonic()  # what comes before: at once
        held = self._held
        for t, frame in day.frames:
            fields = frame
            await self._until(start_wall, (t - start_sim) / self.plan.speed, held)
            skew = self.plan.skew(t) if self.plan.clock_steps else 0.0
            if skew and "Timestamp" in frame:
                fields = {**frame, "Timestamp": f"{float(frame['Timestamp']) + skew:.6f}"}
            self.now = t + skew
            self.state.apply(fields)
            self.server.publish(encode_frame(fields).rstrip(b"\r\n"))
            self.sent += 1
            if self.sent % 200 == 0:
                await self.server.drain()
        self.now = day.end
        self._skipped = 0.0  # the next day from its start

    async def _until(self, start_wall: float, offset: float, held: float) -> None:
        """Wait until a frame ``offset`` wall seconds into the day is due,
        counting neither the PBX time skipped nor the wall time paused.  A
        pause that comes during the wait holds the frame too: the wait is in
        short steps, each checking for it (one long sleep published the next
        frame, and moved the clock a Ping answers with, while paused)."""
        while True:
            if not self._running.is_set():
                await self._running.wait()
            due = offset - self._skipped / self.plan.speed + self._held - held
            delay = start_wall + due - time.monotonic()
            if delay <= 0.002:
                return
            await asyncio.sleep(min(delay, PAUSE_CHECK_SECONDS))


def call_json(day: SimDay, index: int) -> dict[str, object]:
    """One call of the simulator's record, as ``simulate --record`` writes it."""
    call = day.calls[index]
    date = dt.datetime.fromtimestamp(day.start, day.tz).date().isoformat()
    return {**asdict(call), "classification": call.classification, "day": date}


async def serve_simulation(
    settings: Settings,
    plan: SimPlan,
    host: str,
    port: int,
    username: str,
    secret: str,
    record: str | None = None,
    *,
    wait_for_client: bool = False,
) -> None:
    """``pbxwatch simulate``: serve simulated days until stopped (or done);
    with ``wait_for_client`` the first day starts at the first login."""
    sim = SimulatedPbx(settings, plan, username, secret)
    bound = await sim.start(host, port)
    _stop_on_sigterm()
    log.info("simulated PBX on %s:%d (speed %gx, %g calls/hour)", host, bound, plan.speed,
             plan.calls_per_hour)  # fmt: skip
    try:
        while wait_for_client and sim.server.logins == 0:
            await asyncio.sleep(0.05)
        await sim.run()
        log.info("all %d days sent (%d events); still serving status actions", len(sim.days),
                 sim.sent)  # fmt: skip
        if record:
            write_record(sim.days, record)
        await asyncio.Event().wait()
    finally:
        if record and not sim.finished.is_set():
            write_record(sim.days, record)
        await sim.close()


def _stop_on_sigterm() -> None:
    """SIGTERM ends the simulation as Ctrl-C does: through ``finally``, so
    ``--record`` keeps what was generated so far."""
    task = asyncio.current_task()
    if task is not None:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def write_record(days: list[SimDay], path: str) -> None:
    """Write the record whole, then move it into place: a reader that sees
    the file sees all of it."""
    import json
    import os

    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        for day in days:
            for i in range(len(day.calls)):
                fh.write(json.dumps(call_json(day, i), ensure_ascii=False) + "\n")
    os.replace(tmp, path)
