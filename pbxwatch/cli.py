"""``pbxwatch`` command line."""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime as dt
import logging
import logging.handlers
import math
import queue
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pbxwatch import __version__
from pbxwatch.core.engine import Record
from pbxwatch.core.records import CallRecord
from pbxwatch.privacy import MaskNumbers
from pbxwatch.settings import ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from pbxwatch.pipeline import Pipeline
    from pbxwatch.sim.live import SimPlan

log = logging.getLogger("pbxwatch")

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbxwatch", description=__doc__)
    p.add_argument("--version", action="version", version=f"pbxwatch {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("replay", help="run a recorded AMI stream through the pipeline")
    r.add_argument("recording", help="an .ami file (raw AMI bytes)")
    r.add_argument("--config", required=True)
    r.add_argument("--json", action="store_true", help="print JSON Lines, one per record")
    r.add_argument(
        "--now",
        help="evaluate callbacks at this time (ISO 8601; default: the last event's time)",
    )
    r.add_argument("--no-store", action="store_true", help="do not write to the configured store")
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue after the stream position committed in the store (after a crash)",
    )
    r.add_argument(
        "--cut",
        action="store_true",
        help="the recording ends where the connection to the PBX was lost: keep the calls "
        "in progress (checkpointed in the store as the configured PBX, ami.host:ami.port) "
        "for the next `pbxwatch run` to continue, instead of finishing them",
    )
    r.add_argument(
        "--via-tcp",
        action="store_true",
        help="serve the recording from the built-in AMI server and read it with the real client",
    )

    run = sub.add_parser("run", help="connect to a live Asterisk and process events")
    run.add_argument("--config", required=True)
    run.add_argument("--json", action="store_true", help="print finished calls as JSON Lines")
    run.add_argument(
        "--pbx-speed", type=float, default=1.0, metavar="X",
        help="PBX seconds per host second: 1 for a real PBX (default), X for "
        "`simulate --speed X` or `serve-recording --speed X`, 0 when the PBX's "
        "time is not tied to this host's clock (a recording served as fast as it goes)",
    )  # fmt: skip

    db = sub.add_parser("db", help="database schema and retention")
    db.add_argument(
        "action",
        choices=["upgrade", "check", "purge"],
        help="upgrade/check the schema; purge personal data past retention",
    )
    db.add_argument("--config", required=True)
    db.add_argument("--now", help="purge: as if at this time (ISO 8601; default: now)")
    db.add_argument(
        "--compact",
        action="store_true",
        help="purge: also rewrite the tables so no erased value stays in the "
        "data files (PostgreSQL VACUUM FULL, locks the tables while it runs)",
    )

    rep = sub.add_parser("report", help="guideline figures of one unit and period")
    rep.add_argument("--config", required=True)
    rep.add_argument("--unit", required=True, help="unit slug as in directory.units")
    rep.add_argument("--from", dest="date_from", required=True, help="first day, YYYY-MM-DD")
    rep.add_argument("--to", dest="date_to", required=True, help="last day, YYYY-MM-DD")
    rep.add_argument("--format", choices=["table", "csv", "json"], default="table")
    rep.add_argument("--now", help="judge open callbacks at this time (ISO 8601; default: now)")

    al = sub.add_parser("alerts", help="unit chiefs' alerts over MQTT")
    al.add_argument("action", choices=["tail"], help="tail: print alerts as they arrive")
    al.add_argument("--config", required=True)
    al.add_argument("--unit", help="only this unit's alerts (default: every unit)")
    al.add_argument("--queues", action="store_true", help="also print live queue state")
    al.add_argument("--json", action="store_true", help="print the payloads as they are")

    c = sub.add_parser("check-config", help="validate a configuration file")
    c.add_argument("config")

    d = sub.add_parser("demo", help="the simulated PBX and pbxwatch together, with a summary")
    _sim_options(d, speed=60.0)
    d.add_argument("--data-dir", default="demo-data", help="where the SQLite store goes")
    d.add_argument("--metrics-listen", help="host:port of /metrics (default: metrics.listen)")
    d.add_argument("--duration", type=float, help="stop after this many seconds")

    sim = sub.add_parser("simulate", help="run the PBX simulator as an AMI server")
    _sim_options(sim, speed=60.0)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=5038)
    sim.add_argument("--username", default="pbxwatch")
    sim.add_argument("--secret-env", default="PBXWATCH_AMI_SECRET")
    sim.add_argument("--record", help="write the simulator's own record of each call (JSON Lines)")
    sim.add_argument(
        "--wait-for-client",
        action="store_true",
        help="start the first day when the first client logs in, not at once",
    )

    s = sub.add_parser("serve-recording", help="serve an .ami recording as an AMI server")
    s.add_argument("recording")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=5038)
    s.add_argument(
        "--speed", type=float, default=0.0, help="1 = real time, 0 = as fast as possible"
    )
    s.add_argument("--username", default="pbxwatch")
    s.add_argument("--secret-env", default="PBXWATCH_AMI_SECRET")
    s.add_argument(
        "--transcript",
        help="answer the state read after login from this recorded transcript "
        "(*.transcript.json of a restart recording)",
    )
    return p


def _sim_options(p: argparse.ArgumentParser, *, speed: float) -> None:
    p.add_argument("--config", default="config/lab.yaml", help="directory of the PBX to simulate")
    p.add_argument("--speed", type=float, default=speed,
                   help="simulated seconds per second (60: a day in 9 minutes)")  # fmt: skip
    p.add_argument("--calls-per-hour", type=float, default=40.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", help="first day to simulate, YYYY-MM-DD (default: today)")
    p.add_argument("--days", type=int, help="working days to simulate (default: until stopped)")


def _sim_plan(args: argparse.Namespace) -> SimPlan:
    from pbxwatch.sim.live import SimPlan

    if args.speed <= 0:
        raise ConfigError("--speed: must be more than 0")
    try:
        first = dt.date.fromisoformat(args.start) if args.start else dt.date.today()
    except ValueError as exc:
        raise ConfigError(f"--start: not a date (YYYY-MM-DD): {args.start!r}") from exc
    return SimPlan(first, args.days, args.calls_per_hour, args.speed, args.seed)


def _demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pbxwatch.demo import run_demo

    settings = load_settings(args.config)
    return asyncio.run(run_demo(settings, _sim_plan(args), data_dir=Path(args.data_dir),
                                metrics_listen=args.metrics_listen,
                                duration=args.duration))  # fmt: skip


def _simulate(args: argparse.Namespace) -> int:
    import os

    from pbxwatch.sim.live import serve_simulation

    secret = os.environ.get(args.secret_env)
    if not secret:
        raise ConfigError(f"--secret-env: environment variable {args.secret_env} is not set")
    settings = load_settings(args.config)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(serve_simulation(settings, _sim_plan(args), args.host, args.port,
                                     args.username, secret, args.record,
                                     wait_for_client=args.wait_for_client))  # fmt: skip
    return 0


def _setup_logging(verbose: bool) -> None:
    """Lines are masked (``privacy.mask_numbers_in_logs`` may lift it) and
    queued where they are logged, and written to stderr by a thread of the
    logging module: a slow terminal or journal never holds up the AMI
    reader.  Left alone when logging is configured already (a program that
    embeds pbxwatch, or the tests)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    root = logging.getLogger()
    if root.handlers:
        return
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    out = logging.StreamHandler(sys.stderr)
    out.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    to_queue = logging.handlers.QueueHandler(lines)
    to_queue.addFilter(MaskNumbers())
    root.addHandler(to_queue)
    listener = logging.handlers.QueueListener(lines, out)
    listener.start()
    atexit.register(listener.stop)  # writes what is queued before the process ends


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _setup_logging(args.verbose)
    try:
        _check_args(args)
        if args.command == "check-config":
            return _check_config(args.config)
        if args.command == "replay":
            return _replay(args)
        if args.command == "run":
            return _run(args)
        if args.command == "serve-recording":
            return _serve(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "db":
            return asyncio.run(_db(args))
        if args.command == "report":
            return asyncio.run(_report(args))
        if args.command == "alerts":
            return asyncio.run(_alerts(args))
    except ConfigError as exc:
        print(f"pbxwatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return 1


def _check_args(args: argparse.Namespace) -> None:
    """Options argparse takes as numbers or paths but cannot judge: refused
    in one line (exit 2) before anything starts."""
    port = getattr(args, "port", None)
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"--port: {port} is not a TCP port (0-65535)")
    rate = getattr(args, "calls_per_hour", None)
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise ConfigError(f"--calls-per-hour: must be more than 0, not {rate:g}")
    days = getattr(args, "days", None)
    if days is not None and days < 1:
        raise ConfigError(f"--days: must be 1 or more, not {days}")
    if args.command == "serve-recording":
        if not (args.speed >= 0 and math.isfinite(args.speed)):
            raise ConfigError(f"--speed: must be 0 or more, not {args.speed:g}")
        _readable(args.recording, "recording")
        if args.transcript:
            _readable(args.transcript, "transcript")
    if args.command == "replay":
        _readable(args.recording, "recording")
        if args.cut and (args.no_store or args.via_tcp or args.resume):
            raise ConfigError("--cut: needs the store and a plain replay "
                              "(not with --no-store, --via-tcp or --resume)")  # fmt: skip


def _readable(path: str, what: str) -> None:
    from pathlib import Path

    try:
        with Path(path).open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror or exc}") from exc


def _check_config(path: str) -> int:
    s = load_settings(path)
    d = s.directory
    print(
        f"{path}: OK — site {s.site}, {len(d.units)} units, {len(d.people)} people, "
        f"{len(d.queues)} queues"
    )
    for slug, unit in sorted(d.units.items()):
        if "phone_hours" not in unit.model_fields_set:  # say what it will be judged by
            h = unit.phone_hours
            print(f"  directory.units.{slug}.phone_hours not given: the default "
                  f"{'/'.join(h.days)} {h.open:%H:%M}-{h.close:%H:%M} {s.timezone}")  # fmt: skip
    return 0


def _replay(args: argparse.Namespace) -> int:
    from pbxwatch.pipeline import JsonLinesSink, Pipeline, build_engine
    from pbxwatch.replay import replay_file

    settings = load_settings(args.config)
    pipeline = Pipeline(build_engine(settings, keep_everything=True))
    tz = ZoneInfo(settings.timezone)
    now = _parse_now(args.now, tz)
    summary = _Summary()
    pipeline.sinks.append(summary)
    json_sink = JsonLinesSink(sys.stdout, tz)
    if args.json:
        pipeline.sinks.append(json_sink)
    t0 = time.perf_counter()
    try:
        if not args.no_store:
            frames = asyncio.run(_replay_stored(args, settings, pipeline))
        elif args.via_tcp:
            from pbxwatch.ami.tcp_replay import replay_via_tcp

            frames = asyncio.run(replay_via_tcp(args.recording, settings, pipeline))
        else:
            frames = replay_file(args.recording, pipeline)
    except OSError as exc:
        print(f"pbxwatch: cannot read {args.recording}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - t0
    eng = pipeline.engine
    if now is not None:
        pipeline.tick(now)
    if args.json:
        for obj in eng.snapshot(tz, now):
            json_sink.write(obj)
    log.info(
        "replayed %d frames (%d events) in %.3f s: %d calls; %s",
        frames,
        eng.stats["events"],
        elapsed,
        summary.calls,
        ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())),
    )
    if not args.json:
        print(f"{summary.calls} calls in {elapsed:.3f} s")
        for k, v in sorted(summary.outcomes.items()):
            print(f"  {k:22s} {v}")
    return 0


async def _replay_stored(args: argparse.Namespace, settings: Settings, pipeline: Pipeline) -> int:
    from pathlib import Path

    from pbxwatch.replay import replay_into_store
    from pbxwatch.store.db import stream_position
    from pbxwatch.store.session import open_store, restore, writer_for

    engine = await open_store(settings)
    # a cut recording is the PBX's own stream: the next `run` carries on from it
    source = settings.source_name() if args.cut else f"replay:{Path(args.recording).name}"
    writer = writer_for(settings, engine, source)
    writer.withhold_alerts = "replay"  # kept as a record, never sent to a chief
    try:
        skip = 0
        if args.resume:
            skip = await stream_position(engine, source)
            await restore(engine, pipeline.engine)
            log.info("resuming %s after frame %d", args.recording, skip)
        pipeline.sinks.append(writer.submit)
        if args.via_tcp:
            from pbxwatch.ami.tcp_replay import replay_via_tcp

            writer.start()
            frames = await replay_via_tcp(args.recording, settings, pipeline)
            await writer.close()
        else:
            frames = await replay_into_store(
                args.recording, pipeline, writer, skip_frames=skip, cut=args.cut
            )
        log.info("store: %d rows in %d batches", writer.stats.rows_written, writer.stats.batches)
        return frames
    finally:
        await engine.dispose()


async def _db(args: argparse.Namespace) -> int:
    from pbxwatch.store.db import SchemaError, check_schema, make_engine, upgrade

    settings = load_settings(args.config)
    if args.action == "purge":
        return await _purge(args, settings)
    engine = make_engine(settings.storage.resolved_url())
    where = engine.url.render_as_string(hide_password=True)
    try:
        if args.action == "upgrade":
            before, after = await upgrade(engine)
            print(f"{where}: schema {before or 'none'} -> {after}")
            return 0
        await check_schema(engine)
        print(f"{where}: schema up to date")
        return 0
    except SchemaError as exc:
        raise ConfigError(str(exc)) from exc
    except OSError as exc:
        raise ConfigError(f"storage: cannot reach {where}: {exc}") from exc
    finally:
        await engine.dispose()


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from pbxwatch.store.retention import purge
    from pbxwatch.store.session import open_store

    now = _parse_now(args.now, ZoneInfo(settings.timezone)) or time.time()
    engine = await open_store(settings)
    try:
        report = await purge(engine, settings, now, compact=args.compact)
    finally:
        await engine.dispose()
    print(json.dumps(report.to_json(), ensure_ascii=False))
    return 0


async def _report(args: argparse.Namespace) -> int:
    from pbxwatch.report import build, render
    from pbxwatch.store.session import open_store

    settings = load_settings(args.config)
    tz = ZoneInfo(settings.timezone)
    date_from, date_to = _parse_date(args.date_from, "--from"), _parse_date(args.date_to, "--to")
    now = _parse_now(args.now, tz) or time.time()
    engine = await open_store(settings)
    try:
        report = await build(engine, settings, args.unit, date_from, date_to, now)
    finally:
        await engine.dispose()
    sys.stdout.write(render(report, args.format, tz))
    return 0


async def _alerts(args: argparse.Namespace) -> int:
    import aiomqtt

    from pbxwatch.mqtt import tail

    settings = load_settings(args.config)
    if args.unit and args.unit not in settings.directory.units:
        raise ConfigError(f"--unit: unknown unit {args.unit!r}")
    m = settings.mqtt
    try:
        await tail(settings, args.unit, args.json, args.queues, lambda s: print(s, flush=True))
    except aiomqtt.MqttError as exc:
        print(f"pbxwatch: MQTT broker {m.host}:{m.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def _parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: not a date (YYYY-MM-DD): {value!r}") from exc


def _run(args: argparse.Namespace) -> int:
    from pbxwatch.app import run_live

    if not (args.pbx_speed >= 0 and math.isfinite(args.pbx_speed)):
        raise ConfigError(f"--pbx-speed: must be 0 or more, not {args.pbx_speed:g}")
    settings = load_settings(args.config)
    return asyncio.run(run_live(settings, json_out=args.json, pbx_speed=args.pbx_speed))


def _serve(args: argparse.Namespace) -> int:
    import os

    from pbxwatch.ami.server import serve_forever

    secret = os.environ.get(args.secret_env)
    if not secret:
        raise ConfigError(f"--secret-env: environment variable {args.secret_env} is not set")
    from pbxwatch.ami.transcript import TranscriptError

    try:
        asyncio.run(serve_forever(args.recording, args.host, args.port, args.username, secret,
                                  args.speed, args.transcript))  # fmt: skip
    except TranscriptError as exc:
        raise ConfigError(f"--transcript: {exc}") from exc
    return 0


def _parse_now(value: str | None, tz: ZoneInfo) -> float | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--now: not an ISO 8601 time: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


class _Summary:
    def __init__(self) -> None:
        self.calls = 0
        self.outcomes: dict[str, int] = {}

    def __call__(self, rec: Record) -> None:
        if not isinstance(rec, CallRecord):
            return
        self.calls += 1
        key = f"{rec.direction}/{rec.outcome}"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
