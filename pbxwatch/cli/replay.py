"""``pbxwatch replay``: a recorded AMI stream through the pipeline."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from pbxwatch.cli.options import parse_now, settings_of
from pbxwatch.core.engine import Engine, Record
from pbxwatch.core.records import CallRecord
from pbxwatch.pipeline import JsonLinesSink, Pipeline, build_engine
from pbxwatch.settings import ConfigError, Settings
from pbxwatch.stamp import PbxStamp

log = logging.getLogger("pbxwatch")


def replay(args: argparse.Namespace) -> int:
    from pbxwatch.replay import replay_file

    settings = pbx_of(settings_of(args), args.pbx)
    stamp = PbxStamp(settings.pbx_id)
    pipeline = Pipeline(build_engine(settings, keep_everything=True), stamp=stamp)
    tz = ZoneInfo(settings.timezone)
    now = parse_now(args.now, tz)
    summary = Summary()
    pipeline.sinks.append(summary)
    json_sink = JsonLinesSink(sys.stdout, tz, settings.pbx_id)
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
            json_sink.write_core(obj)
    log.info("replayed %d frames (%d events) in %.3f s: %d calls; %s", frames,
             eng.stats["events"], elapsed, summary.calls,
             ", ".join(f"{k} {v}" for k, v in sorted(summary.outcomes.items())))  # fmt: skip
    _say_unmatched(eng)
    if not args.json:
        print(f"{summary.calls} calls in {elapsed:.3f} s")
        for k, v in sorted(summary.outcomes.items()):
            print(f"  {k:22s} {v}")
    return 0


async def _replay_stored(args: argparse.Namespace, settings: Settings, pipeline: Pipeline) -> int:
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
            await restore(engine, pipeline.engine, pipeline.stamp)
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


def pbx_of(settings: Settings, pbx: str | None) -> Settings:
    """The view of the PBX ``--pbx`` names (default: the first)."""
    views = settings.pbx_views()
    if pbx is None:
        return views[0]
    for view in views:
        if view.pbx_id == pbx:
            return view
    raise ConfigError(
        f"--pbx: no PBX {pbx!r} in the configuration ({', '.join(settings.pbx_ids())})"
    )


def _say_unmatched(eng: Engine) -> None:
    """A configuration whose device names or trunk patterns the stream never
    matched is wrong for this PBX more often than not: said in one line."""
    devices, trunks = eng.directory.unmatched()
    total = len(eng.directory.devices)
    if not eng.stats["events"] or not (trunks or (total and len(devices) == total)):
        return
    parts = []
    if total and len(devices) == total:
        parts.append(f"none of the {total} configured devices (e.g. {devices[0]})")
    if trunks:
        parts.append(f"the trunk pattern(s) {', '.join(trunks)}")
    found = eng.directory.usage.by_resource
    log.warning("configuration: the stream matched %s%s", " nor ".join(parts),
                f"; {found} device names were recognised by their extension alone"
                if found else "")  # fmt: skip


class Summary:
    """Calls by direction and outcome, for the replay's last lines."""

    def __init__(self) -> None:
        self.calls = 0
        self.outcomes: dict[str, int] = {}

    def __call__(self, rec: Record) -> None:
        if not isinstance(rec, CallRecord):
            return
        self.calls += 1
        key = f"{rec.direction}/{rec.outcome}"
        self.outcomes[key] = self.outcomes.get(key, 0) + 1
