"""What the console reads from the running pipeline, only when a page, an
API call or an SSE client asks: the queue book and pbxwatch's health.

Nothing here is called from the AMI read path.  A snapshot of every queue
is built at most once per ``CACHE_SECONDS`` whatever the number of SSE
clients, and filtered per viewer (no personal data is in it: queue names,
counts and member states).  The queue book's counters run since the start
(they survive restarts in the checkpoint): "today" is the difference to a
baseline taken when the PBX's local day changed, sampled by
:meth:`LiveView.sample` every few seconds.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from pbxwatch.core.directory import resource_of_device
from pbxwatch.core.engine import Engine
from pbxwatch.core.queues import QueueState, member_state
from pbxwatch.core.records import iso
from pbxwatch.metrics.health import Health
from pbxwatch.settings import DEFAULT_PBX, Settings
from pbxwatch.stamp import PbxStamp

#: a snapshot is rebuilt at most this often, however many clients ask
CACHE_SECONDS = 0.25
#: the counters that have a "today"
_DAILY = ("offered", "answered", "answered_within_sl", "abandoned", "short_abandoned")


@dataclass
class _Baseline:
    day: dt.date | None  # None until the first event tells the PBX's time
    taken_at: float | None  # PBX time; None: counted from the day's start
    counts: dict[str, dict[str, int]]


@dataclass
class LiveView:
    """The engine and health of ``run`` (or of a test), read on demand."""

    settings: Settings
    engine: Engine
    health: Health
    #: PBX time now; default: the engine's clock estimate of the host's clock
    clock: Callable[[], float] | None = None
    #: the PBX it is of; the first's health also holds the shared services'
    pbx: str = DEFAULT_PBX
    #: the other PBXs followed (many PBXs in one run): shown with this one
    others: list[LiveView] = field(default_factory=list)
    _baseline: _Baseline | None = field(default=None, init=False)
    _cache: tuple[float, dict[str, Any]] | None = field(default=None, init=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    def now(self) -> float:
        if self.clock is not None:
            return self.clock()
        host = time.time()
        return self.engine.clock.estimate(host) or host

    def _counts(self) -> dict[str, dict[str, int]]:
        return {
            name: {k: getattr(q, k) for k in _DAILY}
            for name, q in self.engine.queues.queues.items()
        }

    @property
    def every(self) -> list[LiveView]:
        """This PBX's view and the others', the first first."""
        return [self, *self.others]

    @property
    def pbxs(self) -> list[str]:
        return [v.pbx for v in self.every]

    @property
    def ami_up(self) -> bool:
        """Logged in to every PBX's AMI."""
        return all(v.health.ami_up for v in self.every)

    def sample(self) -> None:
        for view in self.every:
            view._sample()

    def _sample(self) -> None:
        """Keep the day's baseline.  The first is the counters as the
        console starts (zero on a fresh start, else what a checkpoint
        restored: then "today" counts from this start, and says so); at
        each change of the PBX's local day the counters are the new one."""
        if self._baseline is None:
            counts = self._counts()
            restored = any(v for c in counts.values() for v in c.values())
            day = self._day() if self.engine.last_event_time is not None else None
            self._baseline = _Baseline(day, self.now() if restored else None, counts)
            return
        if self.engine.last_event_time is None:
            return  # no PBX time yet
        day = self._day()
        if self._baseline.day is None:
            self._baseline.day = day
        elif day != self._baseline.day:
            self._baseline = _Baseline(day, self.now(), self._counts())

    def _day(self) -> dt.date:
        return dt.datetime.fromtimestamp(self.now(), self.tz).date()

    def queues(self) -> list[dict[str, Any]]:
        """Every configured queue of every PBX now, the first PBX's first."""
        return [q for view in self.every for q in view._own_queues()]

    def _own_queues(self) -> list[dict[str, Any]]:
        """This PBX's queues now (cached for ``CACHE_SECONDS``)."""
        host = time.monotonic()
        if self._cache is not None and host - self._cache[0] < CACHE_SECONDS:
            return list(self._cache[1]["queues"])
        self._sample()
        now = self.now()
        out = [self._queue(name, now) for name in sorted(self.settings.directory.queues)]
        self._cache = (host, {"queues": out})
        return list(out)

    def _queue(self, name: str, now: float) -> dict[str, Any]:
        cfg = self.settings.directory.queues[name]
        q = self.engine.queues.queues.get(name) or QueueState(name)
        assert self._baseline is not None
        base = self._baseline.counts.get(name, dict.fromkeys(_DAILY, 0))
        today = {k: getattr(q, k) - base.get(k, 0) for k in _DAILY}
        offered = today["offered"] - today["short_abandoned"]
        by_state = {"available": 0, "in_call": 0, "paused": 0, "logged_out": 0}
        for m in q.members.values():
            state = member_state(m)
            by_state["logged_out" if state == "unavailable" else state] += 1
        seen = {resource_of_device(iface) for iface in q.members}
        by_state["logged_out"] += sum(ext not in seen for ext in cfg.members)  # never heard of
        unit = self.engine.directory.unit(cfg.unit)
        return {
            "queue": name,
            "pbx": self.pbx,
            # unique over PBXs, as their ids: a queue of another PBX is <id>:<name>
            "id": PbxStamp(self.pbx).id(name),
            "kind": cfg.kind,
            "unit": cfg.unit,
            "unit_name": self.settings.directory.units[cfg.unit].name,
            "waiting": len(q.waiting),
            "longest_wait_seconds": round(
                max((now - t for t in q.waiting.values()), default=0.0), 1
            ),
            "service_level": round(today["answered_within_sl"] / offered, 4)
            if offered > 0
            else None,
            "service_level_seconds": cfg.service_level_seconds,
            "answered_today": today["answered"],
            "abandoned_today": today["abandoned"],
            "members": by_state,
            "in_phone_hours": self.engine.calendar.in_phone_hours(now, unit.phone_hours),
            "unstaffed": q.unstaffed_since is not None,
            "unstaffed_since": iso(q.unstaffed_since, self.tz),
            "today_since": None
            if self._baseline.taken_at is None
            else iso(self._baseline.taken_at, self.tz),
        }

    def health_view(self, gaps_today: int | None) -> dict[str, Any]:
        """pbxwatch's health: the first PBX's AMI and stream (with one PBX,
        the one's), the shared store and MQTT, and under ``pbxs`` each
        PBX's own; ``ami_up`` only while every PBX is logged in."""
        h = self.health
        return {
            "ami_up": self.ami_up,
            "last_event_at": iso(h.last_event_time, self.tz),
            "event_lag_seconds": round(h.event_lag_seconds, 3),
            "clock_offset_seconds": round(h.clock_offset_seconds, 3),
            "store_up": h.store_up,
            "store_backlog": h.store_backlog,
            "outbox_backlog": h.outbox_backlog,
            "mqtt_enabled": self.settings.mqtt.enabled,
            "mqtt_up": h.mqtt_up,
            "calls_in_progress": sum(v.engine.tracked_calls for v in self.every),
            "gaps_today": gaps_today,
            "now": iso(self.now(), self.tz),
            "pbxs": [v._pbx_health() for v in self.every],
        }

    def _pbx_health(self) -> dict[str, Any]:
        h = self.health
        return {
            "pbx": self.pbx,
            "ami_up": h.ami_up,
            "last_event_at": iso(h.last_event_time, self.tz),
            "event_lag_seconds": round(h.event_lag_seconds, 3),
            "clock_offset_seconds": round(h.clock_offset_seconds, 3),
            "calls_in_progress": self.engine.tracked_calls,
        }

    def day_start(self) -> float:
        """The PBX's local midnight of today (epoch)."""
        local = dt.datetime.fromtimestamp(self.now(), self.tz)
        return dt.datetime.combine(local.date(), dt.time(0), self.tz).timestamp()
