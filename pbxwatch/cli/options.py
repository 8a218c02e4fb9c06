"""Turning command-line values into what the commands take, refusing bad
ones in one line (``ConfigError``: exit status 2) before anything starts."""

from __future__ import annotations

import argparse
import datetime as dt
import math
from pathlib import Path
from zoneinfo import ZoneInfo

from pbxwatch import configs
from pbxwatch.settings import ConfigError, Settings, load_settings


def config_path(args: argparse.Namespace, *, default: str | None = None) -> Path:
    """The file ``--config`` names.  A shipped configuration is named by
    itself (``--config lab``, ``--config example``) unless a file of that
    name is in the folder; commands that can run on the lab's (``demo``,
    ``simulate``) default to it."""
    value = getattr(args, "config", None) or default
    if value is None:
        raise ConfigError(
            f"{args.command}: --config is required (a YAML file; `pbxwatch init` writes one, "
            "`--config lab` is the lab PBX's)"
        )
    if value in configs.BUILTIN and not Path(value).exists():
        return configs.path_of(value)
    return Path(value)


def settings_of(args: argparse.Namespace, *, default: str | None = None) -> Settings:
    return load_settings(config_path(args, default=default))


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"{option}: not a date (YYYY-MM-DD): {value!r}") from exc


def parse_now(value: str | None, tz: ZoneInfo) -> float | None:
    """``--now``: ISO 8601, local time when it has no offset."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise ConfigError(f"--now: not an ISO 8601 time: {value!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()


def readable(path: str, what: str) -> None:
    try:
        with Path(path).open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {path}: cannot read: {exc.strerror or exc}") from exc


def check_args(args: argparse.Namespace) -> None:
    """Options argparse takes as numbers or paths but cannot judge."""
    port = getattr(args, "port", None)
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"--port: {port} is not a TCP port (0-65535)")
    rate = getattr(args, "calls_per_hour", None)
    if rate is not None and not (rate > 0 and math.isfinite(rate)):
        raise ConfigError(f"--calls-per-hour: must be more than 0, not {rate:g}")
    days = getattr(args, "days", None)
    if days is not None and days < 1:
        raise ConfigError(f"--days: must be 1 or more, not {days}")
    speed = getattr(args, "speed", None)
    if args.command == "serve-recording" and speed is not None:
        if not (speed >= 0 and math.isfinite(speed)):
            raise ConfigError(f"--speed: must be 0 or more, not {speed:g}")
        readable(args.recording, "recording")
        if args.transcript:
            readable(args.transcript, "transcript")
    elif speed is not None and not (speed > 0 and math.isfinite(speed)):
        raise ConfigError(f"--speed: must be more than 0, not {speed:g}")
    pbx_speed = getattr(args, "pbx_speed", None)
    if pbx_speed is not None and not (pbx_speed >= 0 and math.isfinite(pbx_speed)):
        raise ConfigError(f"--pbx-speed: must be 0 or more, not {pbx_speed:g}")
    duration = getattr(args, "duration", None)
    if duration is not None and not (duration > 0 and math.isfinite(duration)):
        raise ConfigError(f"--duration: must be more than 0 seconds, not {duration:g}")
    if args.command == "replay":
        readable(args.recording, "recording")
        if args.cut and (args.no_store or args.via_tcp or args.resume):
            raise ConfigError("--cut: needs the store and a plain replay "
                              "(not with --no-store, --via-tcp or --resume)")  # fmt: skip
