"""The commands that stay up: ``run``, ``serve-recording``, ``alerts tail``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from pbxwatch.cli.options import settings_of
from pbxwatch.settings import ConfigError


def run(args: argparse.Namespace) -> int:
    from pbxwatch.app import run_live

    settings = settings_of(args)
    return asyncio.run(run_live(settings, json_out=args.json, pbx_speed=args.pbx_speed))


def secret_from(args: argparse.Namespace) -> str:
    secret = os.environ.get(args.secret_env)
    if not secret:
        raise ConfigError(f"--secret-env: environment variable {args.secret_env} is not set")
    return secret


def serve(args: argparse.Namespace) -> int:
    from pbxwatch.ami.server import serve_forever
    from pbxwatch.ami.transcript import TranscriptError

    secret = secret_from(args)
    try:
        asyncio.run(serve_forever(args.recording, args.host, args.port, args.username, secret,
                                  args.speed, args.transcript))  # fmt: skip
    except TranscriptError as exc:
        raise ConfigError(f"--transcript: {exc}") from exc
    return 0


async def alerts(args: argparse.Namespace) -> int:
    import aiomqtt

    from pbxwatch.mqtt import tail

    settings = settings_of(args)
    if args.unit and args.unit not in settings.directory.units:
        raise ConfigError(f"--unit: unknown unit {args.unit!r}")
    m = settings.mqtt
    try:
        await tail(settings, args.unit, args.json, args.queues, lambda s: print(s, flush=True))
    except aiomqtt.MqttError as exc:
        print(f"pbxwatch: MQTT broker {m.host}:{m.port}: {exc}", file=sys.stderr)
        return 1
    return 0
