"""``pbxwatch`` command line: parse, set up logging, run one command.

A command is refused in one line with exit status 2 (``ConfigError``)
when its configuration or an option is wrong, before anything starts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Sequence

from pbxwatch.cli import completion, files, live, replay, sim, store
from pbxwatch.cli.logs import setup_logging
from pbxwatch.cli.options import check_args
from pbxwatch.cli.parser import build
from pbxwatch.settings import ConfigError

log = logging.getLogger("pbxwatch")

EXIT_CONFIG = 2

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "check-config": files.check_config,
    "completion": completion.completion,
    "init": files.init,
    "replay": replay.replay,
    "run": live.run,
    "serve-recording": live.serve,
    "demo": sim.demo,
    "simulate": sim.simulate,
    "db": lambda args: asyncio.run(store.db(args)),
    "report": lambda args: asyncio.run(store.report(args)),
    "alerts": lambda args: asyncio.run(live.alerts(args)),
}


def main(argv: Sequence[str] | None = None) -> int:
    _never_fail_on_encoding()
    args = build().parse_args(argv)
    setup_logging(getattr(args, "verbose", False))
    try:
        check_args(args)
        return COMMANDS[args.command](args)
    except ConfigError as exc:
        print(f"pbxwatch: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130


def _never_fail_on_encoding() -> None:
    """A terminal or pipe whose encoding lacks "—" or "ä" (an ASCII locale)
    gets them escaped: the demo's summary raised UnicodeEncodeError on its
    first line and said nothing at all."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
