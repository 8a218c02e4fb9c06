"""``pbxwatch run``: the live pipelines of the configured PBXs (one
:class:`~pbxwatch.follower.Follower` each) and the services they share:
one store writer, metrics endpoint, MQTT relay, mail sender and console.

The AMI read path only parses and hands frames to the pure engine, which is
fast (microseconds per event) and synchronous, so event order is the
arrival order.  A clock task ticks every engine once a second with an
estimate of PBX time, so calls finish and deadlines fire even when the PBX
is quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch import heap
from pbxwatch.core.alerts import Alert
from pbxwatch.core.callbacks import CallbackChange, CallbackEvent
from pbxwatch.core.clock import ClockStep
from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.core.engine import Record
from pbxwatch.core.gaps import AmiGap
from pbxwatch.core.incidents import Incident
from pbxwatch.core.numbers import mask
from pbxwatch.follower import Follower
from pbxwatch.metrics import PBXS_PER_TURN, Health, Metrics, serve
from pbxwatch.mqtt import AlertRelay, engine_view
from pbxwatch.pipeline import JsonLinesSink, Pipeline
from pbxwatch.privacy import MaskNumbers
from pbxwatch.settings import ConfigError, Settings
from pbxwatch.store.retention import purge
from pbxwatch.store.session import open_store_waiting, writer_for
from pbxwatch.store.writer import StoreWriter

if TYPE_CHECKING:
    from pbxwatch.cluster import Cluster
    from pbxwatch.mail import MailSender
    from pbxwatch.web import WebConsole

log = logging.getLogger(__name__)


class LogSink:
    """Log each finished call and each incident in one line, numbers masked.
    Without a broker (``alerts_to_log``) an alert is logged with its text,
    the only place a unit chief's alert then goes."""

    def __init__(self, *, alerts_to_log: bool = False) -> None:
        self.alerts_to_log = alerts_to_log

    def __call__(self, rec: Record) -> None:
        if isinstance(rec, Incident):
            log.info("%s %s: %s unit=%s ext=%s queue=%s", rec.kind, rec.state,
                     rec.incident_id, rec.unit, rec.extension, rec.queue)  # fmt: skip
            return
        if isinstance(rec, CallbackEvent):
            log.info(
                "%s: %s deadline %s", rec.kind, rec.callback.callback_id, rec.callback.deadline
            )
            return
        if isinstance(rec, CallbackChange):
            return
        if isinstance(rec, ClockStep):
            log.warning("PBX clock stepped by %+.1f s (%s, confirmed by %d events): adopted; "
                        "calls in progress keep their durations", rec.delta, rec.mode,
                        rec.confirmed_by)  # fmt: skip
            return
        if isinstance(rec, AmiGap):
            log.warning("AMI gap of %.1f s (%s) reconciled: %s", rec.seconds, rec.reason,
                        ", ".join(f"{k}={v}" for k, v in rec.reconciled.items()))  # fmt: skip
            return
        if isinstance(rec, DiversionInterval):
            log.info("diversion ended: ext=%s %s %s", rec.extension, rec.source, rec.state)
            return
        if isinstance(rec, Alert):
            if self.alerts_to_log:
                log.warning("ALERT %s %s (unit %s): %s", rec.kind, rec.state, rec.unit,
                            rec.text_en)  # fmt: skip
            else:
                log.info("alert %s (%s, unit %s) queued", rec.alert_id, rec.state, rec.unit)
            return
        log.info(
            "call %s %s %s->%s/%s: %s%s",
            rec.call_id,
            rec.direction,
            mask(rec.caller_e164 or rec.caller),
            rec.target_kind,
            rec.target,
            rec.outcome,
            f" by {rec.answered_by} after {rec.answer_seconds:.1f} s" if rec.answered_by else "",
        )


async def purge_forever(
    store: AsyncEngine, settings: Settings, active: Callable[[], bool] = lambda: True
) -> None:
    """Erase personal data past retention at start and then every
    ``storage.purge_every_hours`` (wall clock: retention is a legal period,
    not PBX time).  A failed purge is logged and tried again next time.
    In a cluster only the instance doing the site's jobs purges (``active``);
    the others look again each minute."""
    every = settings.storage.purge_every_hours * 3600.0
    while True:
        if not active():
            await asyncio.sleep(min(every, 60.0))
            continue
        try:
            await purge(store, settings, time.time())
        except (SQLAlchemyError, OSError) as exc:
            log.warning("retention purge failed, will retry: %s", exc)
        await asyncio.sleep(every)


def _join_cluster(settings: Settings, store: AsyncEngine, writer: StoreWriter,
                  followers: Sequence[Follower]) -> Cluster | None:  # fmt: skip
    """This instance's part in a hot standby (``cluster.enabled``), or None."""
    if not settings.cluster.enabled:
        return None
    from pbxwatch.cluster import Cluster

    wait = settings.cluster.ready_max_seconds
    cluster = Cluster(settings, store, writer, [f.pbx_id for f in followers],
                      ready=lambda: _all_ready(followers, wait))  # fmt: skip
    log.info("cluster: %s joins as %s (leases of %.0f s)", cluster.name, cluster.holder,
             settings.cluster.lease_seconds)  # fmt: skip
    return cluster


#: called once a second with the pipeline and the PBX time (the demo's summary)
Observer = Callable[[Pipeline, float], None]


async def run_live(
    settings: Settings,
    *,
    json_out: bool = False,
    observers: Sequence[Observer] = (),
    sinks: Sequence[Callable[[Record], None]] = (),
    frame_probe: Callable[[Mapping[str, str]], None] | None = None,
    pbx_speed: float = 1.0,
) -> int:
    """Follow the configured PBXs until SIGINT/SIGTERM: one AMI session and
    one core each (a :class:`Follower`), on this loop, and one store writer,
    metrics endpoint, MQTT relay, mail sender and console for all.
    ``observers`` are called once a second (with the first PBX's pipeline),
    ``sinks`` get every record, ``frame_probe`` every frame after the core
    and the sinks are done with it (the latency benchmark).  ``pbx_speed``
    is how many PBX seconds pass per host second: 1 for a real PBX, more
    for a simulator or ``serve-recording --speed``."""
    if not settings.privacy.mask_numbers_in_logs:
        log.warning("privacy.mask_numbers_in_logs is off: caller numbers appear in the log")
        for handler in logging.getLogger().handlers:
            for f in [f for f in handler.filters if isinstance(f, MaskNumbers)]:
                handler.removeFilter(f)
    loop = asyncio.get_running_loop()
    views = settings.pbx_views()
    health = Health(store_up=False)  # the first PBX's and the shared services'
    followers = [
        Follower(
            view,
            health=health if i == 0 else Health(),
            pbx_speed=pbx_speed,
            loop=loop,
            where=f"pbxs.{i}.ami" if settings.pbxs else "ami",
        )
        for i, view in enumerate(views)
    ]
    lead = followers[0]  # what the console shows
    pipeline, clock = lead.pipeline, lead.clock
    metrics, http = _start_metrics(settings, pipeline, health)  # up while the store is not

    def store_down() -> None:
        health.store_connect_failures += 1
        if metrics is not None:
            metrics.refresh(pipeline.engine, time.time(), health)

    store = await open_store_waiting(settings, on_failure=store_down)
    health.store_up = True
    # one writer for all: its spill file is named after the first PBX (the
    # single PBX's as before)
    writer = writer_for(lead.settings, store, lead.source_name)
    # the console is built before the heap settles: its ~45 000 objects
    # (FastAPI, uvicorn, the routes and schemas) live as long as the process;
    # left out of the freeze, every full collection walked them (60-80 ms
    # on the reader's loop, bench/console.py)
    web = _build_web(settings, followers, store)
    frozen = heap.settle()
    log.debug("%d start-up objects frozen out of garbage collection", frozen)
    cluster = _join_cluster(settings, store, writer, followers)
    if cluster is not None:
        await cluster.round_once()  # an owner resumes from the store, a standby follows
    for follower in followers:
        owner = cluster is None or cluster.owns(follower.pbx_id)
        # after settle: restored state comes and goes
        await follower.recover(store, writer, owner=owner,
                               keep_seconds=settings.cluster.keep_seconds)  # fmt: skip
        if cluster is not None:
            assert follower.port is not None
            cluster.ports[follower.pbx_id] = follower.port
            await cluster.renew_if_due()  # hundreds of PBXs recover for longer than a lease
    web = await _start_web(web)  # after the restored counters
    if settings.mail.enabled:  # an alert's mail rows are written with it
        from pbxwatch.mail import MailRows

        writer.mail_rows = MailRows(settings)
    writer.start()
    alerts_to_log = not settings.mqtt.enabled
    for follower in followers:
        port = follower.port
        assert port is not None
        fp = follower.pipeline
        fp.sinks.append(port.submit)
        fp.sinks.append(LogSink(alerts_to_log=alerts_to_log))
        fp.sinks.extend(sinks)
        if json_out:
            fp.sinks.append(JsonLinesSink(sys.stdout, ZoneInfo(follower.settings.timezone),
                                          follower.pbx_id))  # fmt: skip
        follower.frame_probe = frame_probe
    if metrics is not None:
        for follower in followers:
            # restored callbacks were counted by the last run (ids as the records have them)
            metrics.adopt(follower.pipeline.engine, follower.stamp.id)
            follower.pipeline.sinks.append(metrics.sink(follower.pbx_id))

    def stop() -> None:
        for follower in followers:
            follower.stop_source()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop)

    relay: AlertRelay | None = None
    relay_task: asyncio.Task[None] | None = None
    mail: MailSender | None = None

    failed_observers: set[Observer] = set()

    async def ticker() -> None:
        while True:
            host = time.time()
            times = []
            for i, follower in enumerate(followers):
                times.append(follower.tick(host))
                if i % PBXS_PER_TURN == PBXS_PER_TURN - 1:
                    await asyncio.sleep(0)  # many PBXs: the readers between their ticks
            now = times[0]  # the first PBX's time: the observers'
            for follower in followers:
                follower.observe(host)
            if cluster is not None:
                _observe_cluster(cluster, followers, health)
            _observe_shared(health, writer, relay)
            if mail is not None:
                health.mail_sent, health.mail_failed = mail.sent, mail.failed
                health.mail_backlog, health.mail_smtp_up = mail.backlog, mail.smtp_up
            if metrics is not None:
                await metrics.refresh_sliced([(f.pbx_id, f.pipeline.engine, t, f.health)
                                              for f, t in zip(followers, times, strict=True)],
                                             health)  # fmt: skip
            for observer in observers:
                try:
                    observer(pipeline, now)
                except Exception:  # a summary that cannot write must not stop the clock
                    if observer not in failed_observers:
                        failed_observers.add(observer)
                        log.exception("observer %r failed; the run goes on", observer)
            await asyncio.sleep(1.0)

    site_jobs = (lambda: True) if cluster is None else (lambda: cluster.site_jobs)
    tasks = [
        asyncio.create_task(ticker()),
        asyncio.create_task(purge_forever(store, settings, site_jobs)),
    ]
    if cluster is not None:
        tasks.append(asyncio.create_task(cluster.run(), name="cluster"))
    for follower in followers:
        tasks.extend(follower.tasks())
    if settings.mqtt.enabled:
        relay = AlertRelay(settings, store, engine_view(lead.settings, pipeline.engine, clock),
                           pbx=lead.pbx_id, claims=cluster)  # fmt: skip
        for follower in followers:
            if follower is not lead:
                fe = follower.pipeline.engine
                relay.add_pbx(follower.pbx_id, engine_view(follower.settings, fe, follower.clock))
            follower.relay = relay
        writer.on_alerts_committed = relay.wake
        relay_task = asyncio.create_task(relay.run())
    mail, mail_task = _start_mail(settings, store, writer, lambda: clock.estimate(time.time()),
                                  site_jobs)  # fmt: skip
    sessions = [asyncio.create_task(f.run(), name=f"ami-{f.pbx_id}") for f in followers]
    tasks.append(asyncio.create_task(_settle_after_login(followers), name="settle"))
    try:
        # one session failing for good (a refused login) stops them all
        await asyncio.wait(sessions, return_when=asyncio.FIRST_EXCEPTION)
        for follower in followers:
            follower.stop_source()
        await asyncio.wait(sessions)
        for task in sessions:
            failed = task.exception()
            if failed is not None:
                raise failed
    finally:
        for follower in followers:
            follower.stop_source()
        for task in sessions:  # run_live cancelled: so are the sessions, as before
            task.cancel()
        await asyncio.gather(*sessions, return_exceptions=True)
        for follower in followers:
            follower.finish()
        await _shut_down(settings, tasks, writer, relay, relay_task)
        await _stop_mail(settings, mail, mail_task)
        if cluster is not None:  # after the outboxes: their last claims are under the leases
            await cluster.stop()
        if web is not None:
            await web.stop()
        await store.dispose()
        if http is not None:
            http.shutdown()
            http.server_close()
    log.info("stopped: %d calls in progress checkpointed for the next start",
             sum(f.pipeline.engine.tracked_calls for f in followers))  # fmt: skip
    return 0


async def _shut_down(
    settings: Settings,
    tasks: list[asyncio.Task[None]],
    writer: StoreWriter,
    relay: AlertRelay | None,
    relay_task: asyncio.Task[None] | None,
) -> None:
    """After the AMI session ended: stop the clock and pollers, write what
    is queued (or keep it on disk), then publish what the outbox holds."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        try:
            await task
        except asyncio.CancelledError:
            pass
        except Exception:  # report it, but shut down cleanly all the same
            log.exception("task %s had failed", task.get_name())
    await writer.close(timeout=settings.storage.shutdown_flush_seconds)
    if relay is None or relay_task is None:
        return
    relay.stop()
    done, _ = await asyncio.wait([relay_task], timeout=settings.mqtt.shutdown_drain_seconds)
    if not done:
        log.warning("MQTT: %d alerts not published yet; they go out at the next start",
                    relay.backlog)  # fmt: skip
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task


def _start_mail(
    settings: Settings,
    store: AsyncEngine,
    writer: StoreWriter,
    now: Callable[[], float | None],
    active: Callable[[], bool],
) -> tuple[MailSender | None, asyncio.Task[None] | None]:
    """The mail sender, woken by every batch with alerts (after the relay)."""
    if not settings.mail.enabled:
        return None, None
    from pbxwatch.mail import MailSender

    mail = MailSender(settings, store, now, settled=writer.caught_up, active=active)
    relay_wake = writer.on_alerts_committed

    def wake() -> None:
        if relay_wake is not None:
            relay_wake()
        mail.wake()

    writer.on_alerts_committed = wake
    return mail, asyncio.create_task(mail.run(), name="mail-sender")


async def _stop_mail(
    settings: Settings, mail: MailSender | None, task: asyncio.Task[None] | None
) -> None:
    """Send what is due for a moment; the rest goes at the next start."""
    if mail is None or task is None:
        return
    mail.stop()
    done, _ = await asyncio.wait([task], timeout=settings.mail.shutdown_drain_seconds)
    if not done:
        log.warning("mail: %d mails not sent yet; they go out at the next start", mail.backlog)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _start_metrics(
    settings: Settings, pipeline: Pipeline, health: Health
) -> tuple[Metrics | None, Any]:
    if not settings.metrics.enabled:
        return None, None
    metrics = Metrics(settings)
    metrics.refresh(pipeline.engine, time.time(), health)
    try:
        return metrics, serve(settings.metrics, metrics.registry)
    except OSError as exc:
        where = settings.metrics.listen
        raise ConfigError(f"metrics.listen: cannot listen on {where}: {exc}") from exc


def _build_web(
    settings: Settings, followers: Sequence[Follower], store: AsyncEngine
) -> WebConsole | None:
    """The console, built but not yet serving; it reads the engines only
    when asked (every PBX's, the first PBX's first)."""
    if not settings.web.enabled:
        return None
    from pbxwatch.web import LiveView, WebConsole

    first, *rest = followers
    others = [LiveView(f.settings, f.pipeline.engine, f.health, pbx=f.pbx_id) for f in rest]
    view = LiveView(first.settings, first.pipeline.engine, first.health, pbx=first.pbx_id,
                    others=others)  # fmt: skip
    return WebConsole(settings, view, store)


async def _start_web(console: WebConsole | None) -> WebConsole | None:
    """The console on this loop.  An address in use leaves pbxwatch running
    without it (logged)."""
    if console is None:
        return None
    try:
        await console.start()
    except ConfigError as exc:
        log.error("%s; running without the console", exc)
        return None
    return console


def _all_ready(followers: Sequence[Follower], wait: float) -> bool:
    """Every follower asked (each notes when it last saw a call in part, so
    none may be skipped once one says no), then whether all are ready."""
    answers = [f.ready_to_own(wait) for f in followers]
    return all(answers)


async def _settle_after_login(followers: Sequence[Follower]) -> None:
    frozen = await heap.settle_when_read(followers)
    log.debug("%d objects frozen out of garbage collection after the first state reads", frozen)


def _observe_cluster(cluster: Cluster, followers: Sequence[Follower], health: Health) -> None:
    for follower in followers:
        follower.health.owner = cluster.owns(follower.pbx_id)
        follower.health.takeovers = cluster.takeovers[follower.pbx_id]
    health.cluster_instances = cluster.instances
    health.failover_seconds = cluster.last_failover_seconds


def _observe_shared(health: Health, writer: StoreWriter, relay: AlertRelay | None) -> None:
    """What all PBXs share (the first PBX's ``health`` holds it)."""
    if relay is not None:
        health.mqtt_up = relay.connected
        health.mqtt_connect_failures = relay.connect_failures
        health.outbox_backlog = relay.backlog
        health.outbox_published = relay.published
    health.store_backlog = writer.backlog
    health.store = writer.stats
