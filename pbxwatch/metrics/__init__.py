"""Prometheus metrics: the guideline KPIs, live queue health and pbxwatch's
own health, in a registry of our own.

- :mod:`.counters`: **what happened**, counted from the records the core
  emits (``Metrics`` is a pipeline sink), with the report's definitions;
- :mod:`.state`: **what is true now** (callbacks open, queue state, phone
  hours), rebuilt from the engine by ``refresh()`` on the event loop;
- :mod:`.health`: pbxwatch's own state (AMI, store, clock, MQTT);
- the process (and platform) collectors of prometheus-client: memory, CPU,
  open files, start time of the process.

The ``_created`` series of prometheus-client's counters and histograms are
turned off: they doubled the series count and no dashboard or rule reads
them (a restart shows as a counter reset, which ``increase()`` handles).

Labels are bounded sets from the configuration: the PBX's id (``pbx``, on
every series of one PBX's calls, queues, AMI session and stream; ``main``
when there is one), unit, queue, target kind, outcome, direction, member
state, event name (allow-list plus ``other``), bad-input kind.  Never a
phone number, a name or a channel id.  A unit that spans PBXs has a series
on each: dashboards and rules add them up (``sum by (unit)``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Iterator, Sequence

from prometheus_client import (
    CollectorRegistry,
    Metric,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

from pbxwatch.core.engine import Engine, Record
from pbxwatch.metrics.counters import NO_UNIT, TARGET_KINDS, RecordCounters, served_by
from pbxwatch.metrics.health import Health, pbx_health_families, shared_health_families
from pbxwatch.metrics.state import (
    MEMBER_STATES,
    StateCollector,
    Watched,
    callback_state,
    phone_hours,
    queue_state,
    ring_limits,
)
from pbxwatch.metrics_http import MetricsServer, serve_metrics
from pbxwatch.settings import ConfigError, MetricsSettings, Settings

__all__ = ["MEMBER_STATES", "NO_UNIT", "PBXS_PER_TURN", "TARGET_KINDS", "Health", "Metrics",
           "serve"]  # fmt: skip

log = logging.getLogger(__name__)

#: PBXs whose state families are built in one turn of the loop (about a
#: millisecond each): see ``Metrics.refresh_sliced``
PBXS_PER_TURN = 4


class Metrics:
    """The record counters (a pipeline sink per PBX: :meth:`sink`), plus
    the state gauges (:meth:`refresh`)."""

    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide, read at collect
        self.registry = registry or CollectorRegistry(auto_describe=True)
        self.units = sorted(settings.directory.units)
        self.served = {s.pbx: s for s in served_by(settings)}
        self.counters = RecordCounters(settings, self.registry, list(self.served.values()))
        self._state = StateCollector()
        self.registry.register(self._state)
        ProcessCollector(registry=self.registry)  # process_* (from /proc: Linux only)
        PlatformCollector(registry=self.registry)  # python_info
        self._first = next(iter(self.served))

    def __call__(self, rec: Record) -> None:
        """A record of the first (or only) PBX."""
        self.counters.count(self._first, rec)

    def sink(self, pbx: str) -> Callable[[Record], None]:
        """The sink for the records of PBX ``pbx`` (a configured id)."""
        if pbx not in self.served:
            raise KeyError(f"no PBX {pbx!r} in the configuration")
        return functools.partial(self.counters.count, pbx)

    def adopt(self, engine: Engine, stamp: Callable[[str], str] | None = None) -> None:
        """Callbacks restored from the store were counted by an earlier run
        (``stamp``: their ids as the records counted come, ``PbxStamp.id``)."""
        self.counters.adopt(engine, stamp)

    def refresh(self, engine: Engine, now: float, health: Health) -> None:
        """Rebuild the state families of the first (or only) PBX, whose
        ``health`` holds the shared services' too (see :meth:`refresh_all`)."""
        self.refresh_all([(self._first, engine, now, health)], health)

    def refresh_all(self, each: Sequence[tuple[str, Engine, float, Health]],
                    shared: Health) -> None:  # fmt: skip
        """Rebuild the state families (call on the event loop): ``each`` is
        ``(pbx, engine, its PBX time now, its health)``, ``shared`` holds the
        store's, MQTT's and mail's health."""
        self._publish(list(self._parts(each)), each, shared)

    async def refresh_sliced(self, each: Sequence[tuple[str, Engine, float, Health]],
                             shared: Health) -> None:  # fmt: skip
        """:meth:`refresh_all` a few PBXs per turn of the loop: with many
        PBXs the whole rebuild (about a millisecond a PBX) would hold the
        AMI readers up for tens of milliseconds once a second.  The families
        are swapped in whole at the end, so a scrape sees one refresh."""
        parts = []
        for part in self._parts(each):
            parts.append(part)
            await asyncio.sleep(0)  # the readers between two slices
        self._publish(parts, each, shared)

    def _parts(self, each: Sequence[tuple[str, Engine, float, Health]]) -> Iterator[list[Metric]]:
        """The state families of ``PBXS_PER_TURN`` PBXs at a time."""
        for i in range(0, len(each), PBXS_PER_TURN):
            yield self._pbx_families(each[i : i + PBXS_PER_TURN])

    def _pbx_families(self, each: Sequence[tuple[str, Engine, float, Health]]) -> list[Metric]:
        watched = [Watched(self.served[pbx], engine, now, h) for pbx, engine, now, h in each]
        families = callback_state(watched)
        families += queue_state(watched)
        families += phone_hours(watched)
        families += pbx_health_families([(pbx, e, h) for pbx, e, _, h in each])
        return families

    def _publish(self, parts: list[list[Metric]], each: Sequence[tuple[str, Engine, float, Health]],
                 shared: Health) -> None:  # fmt: skip
        families = _merged(parts)
        families += ring_limits(self.counters.ring_limit)
        if each:
            families += shared_health_families(each[0][1], shared)
        self._state.families = families


def _merged(parts: list[list[Metric]]) -> list[Metric]:
    """The families of each slice of PBXs as one family per name."""
    by_name: dict[str, Metric] = {}
    for part in parts:
        for family in part:
            if family.name in by_name:
                by_name[family.name].samples.extend(family.samples)
            else:
                by_name[family.name] = family
    return list(by_name.values())


def serve(settings: MetricsSettings, registry: CollectorRegistry) -> MetricsServer:
    """Start the /metrics endpoint in a thread (bounded: see
    :mod:`pbxwatch.metrics_http`); returns the server (has ``shutdown()``)."""
    try:
        server = serve_metrics(settings.host, settings.port, registry)
    except OSError as exc:  # the port taken, the address not this host's: one line, exit 2
        raise ConfigError(f"metrics.listen: {settings.listen}: {exc.strerror or exc}") from exc
    log.info("metrics on http://%s/metrics", settings.listen)
    return server
