"""The ``pbxwatch`` command line's options, with a help text each.

``-v`` and ``--config`` are global: accepted before the subcommand and
after it (``pbxwatch -v run ...`` and ``pbxwatch run -v ...``).  They are
declared once, in :func:`_global_options`, on the top parser and on every
subcommand, with ``SUPPRESS`` as the default so that a subcommand that
was not given one does not overwrite what came before it."""

from __future__ import annotations

import argparse

from pbxwatch import __version__

DESCRIPTION = (
    "pbxwatch follows an Asterisk PBX over the AMI and reports how well a "
    "municipality lives up to its telephony guidelines: unanswered rings, "
    "missing diversions (hänvisning), voicemail callbacks and unstaffed group numbers."
)
EPILOG = (
    "Start with `pbxwatch demo` (a simulated PBX, no configuration needed) or "
    "`pbxwatch init` (a starter configuration for a real PBX). "
    "`pbxwatch COMMAND --help` tells more."
)
ISO_NOW = "ISO 8601, e.g. 2026-12-01T16:00 (local time unless it has an offset)"


def _global_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="debug logging"
    )
    p.add_argument(
        "--config",
        metavar="CFG",
        default=argparse.SUPPRESS,
        help="the configuration (YAML); `lab` and `example` name the shipped ones",
    )


def build() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pbxwatch", description=DESCRIPTION, epilog=EPILOG)
    p.add_argument(
        "--version",
        action="version",
        version=f"pbxwatch {__version__}",
        help="print the version and exit",
    )
    _global_options(p)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str) -> argparse.ArgumentParser:
        c = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".")
        _global_options(c)
        return c

    _replay(command("replay", "run a recorded AMI stream through the pipeline"))
    _run(command("run", "connect to a live Asterisk and process its events"))
    _demo(command("demo", "the simulated PBX and pbxwatch together, with a live summary"))
    _simulate(command("simulate", "run the PBX simulator as an AMI server"))
    _init(command("init", "write a commented starter configuration for a real PBX"))
    _check(command("check-config", "validate a configuration file"))
    _db(command("db", "database schema and retention"))
    _report(command("report", "the guideline figures of one unit and period, from the store"))
    _alerts(command("alerts", "unit chiefs' alerts over MQTT"))
    _serve(command("serve-recording", "serve an .ami recording as an AMI server"))
    shell = command("completion", "print a shell completion script")
    shell.add_argument(
        "shell", choices=["bash"], help='the shell: eval "$(pbxwatch completion bash)"'
    )
    return p


def _replay(r: argparse.ArgumentParser) -> None:
    r.add_argument("recording", help="an .ami file (raw AMI bytes as Asterisk sent them)")
    r.add_argument("--json", action="store_true", help="print JSON Lines, one per record")
    r.add_argument(
        "--now", help=f"evaluate callbacks at this time ({ISO_NOW}; default: the last event's time)"
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
        help="the recording ends where the connection to the PBX was lost: keep the "
        "calls in progress (checkpointed in the store as the configured PBX, "
        "ami.host:ami.port) for the next `pbxwatch run` to continue",
    )
    r.add_argument(
        "--via-tcp",
        action="store_true",
        help="serve the recording from the built-in AMI server and read it with the real client",
    )
    r.add_argument(
        "--pbx",
        metavar="ID",
        help="which of the configuration's pbxs the recording is of (default: the first)",
    )


def _run(r: argparse.ArgumentParser) -> None:
    r.add_argument("--json", action="store_true", help="print finished calls as JSON Lines")
    r.add_argument(
        "--pbx-speed",
        type=float,
        default=1.0,
        metavar="X",
        help="PBX seconds per host second: 1 for a real PBX (default), X for "
        "`simulate --speed X` or `serve-recording --speed X`, 0 when the PBX's "
        "time is not tied to this host's clock",
    )


def _sim_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        metavar="X",
        help="simulated seconds per second (default 60: a day in 9 minutes)",
    )
    p.add_argument(
        "--calls-per-hour",
        type=float,
        default=40.0,
        metavar="N",
        help="inbound calls an hour in phone hours (default 40)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=1,
        help="the random seed: the same seed gives the same day (default 1)",
    )
    p.add_argument(
        "--start",
        metavar="DATE",
        help="first day to simulate, YYYY-MM-DD (default: today, or the next working "
        "day when today is closed)",
    )
    p.add_argument(
        "--tech",
        choices=["iax2", "pjsip"],
        help="the channel technology of the simulated phones and trunk (default: the "
        "configuration's device names)",
    )
    p.add_argument(
        "--days", type=int, metavar="N", help="working days to simulate (default: until stopped)"
    )


def _demo(d: argparse.ArgumentParser) -> None:
    _sim_options(d)
    d.add_argument(
        "--data-dir",
        default="demo-data",
        help="where the SQLite store and the demo's configuration go (default: demo-data)",
    )
    d.add_argument(
        "--metrics-listen",
        metavar="HOST:PORT",
        help="where /metrics is served (default: metrics.listen)",
    )
    d.add_argument(
        "--duration",
        type=float,
        metavar="SECONDS",
        help="stop after this many seconds (default: when the days are done, or Ctrl-C)",
    )
    d.add_argument(
        "--lang",
        choices=["sv", "en"],
        help="language of the summary on the terminal (default: Swedish, "
        "English when LC_ALL, LC_MESSAGES or LANG names another language)",
    )


def _simulate(s: argparse.ArgumentParser) -> None:
    _sim_options(s)
    _listen(s)
    s.add_argument(
        "--record",
        metavar="FILE",
        help="write the simulator's own record of each call (JSON Lines)",
    )
    s.add_argument(
        "--wait-for-client",
        action="store_true",
        help="start the first day when the first client logs in, not at once",
    )


def _listen(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=5038, help="TCP port to listen on (default 5038)")
    p.add_argument(
        "--username", default="pbxwatch", help="the AMI user a client logs in as (default pbxwatch)"
    )
    p.add_argument(
        "--secret-env",
        default="PBXWATCH_AMI_SECRET",
        metavar="VAR",
        help="environment variable holding that user's secret (default PBXWATCH_AMI_SECRET)",
    )


def _init(i: argparse.ArgumentParser) -> None:
    i.add_argument(
        "path", nargs="?", default="pbxwatch.yaml", help="where to write it (default pbxwatch.yaml)"
    )
    i.add_argument("--force", action="store_true", help="overwrite a file that is there")


def _check(c: argparse.ArgumentParser) -> None:
    c.add_argument(
        "path", nargs="?", metavar="CFG", help="the configuration to check (or --config)"
    )


def _db(d: argparse.ArgumentParser) -> None:
    d.add_argument(
        "action",
        choices=["upgrade", "check", "purge"],
        help="upgrade/check the schema; purge personal data past retention",
    )
    d.add_argument("--now", help=f"purge: as if at this time ({ISO_NOW}; default: now)")
    d.add_argument(
        "--compact",
        action="store_true",
        help="purge: also rewrite the tables so no erased value stays in the data "
        "files (PostgreSQL VACUUM FULL, locks the tables while it runs)",
    )


def _report(r: argparse.ArgumentParser) -> None:
    r.add_argument(
        "--unit",
        required=True,
        help="unit slug as in directory.units, or `all`: every unit side by side (json, html, pdf)",
    )
    r.add_argument(
        "--from",
        dest="date_from",
        required=True,
        metavar="DATE",
        help="first day, YYYY-MM-DD (local)",
    )
    r.add_argument(
        "--to",
        dest="date_to",
        required=True,
        metavar="DATE",
        help="last day, YYYY-MM-DD (local, included)",
    )
    r.add_argument(
        "--format",
        choices=["table", "csv", "json", "html", "pdf"],
        default="table",
        help="output format (default table); json, html and pdf hold the previous "
        "period beside this one, html and pdf with charts, definitions and a cover page",
    )
    r.add_argument(
        "--out",
        metavar="FILE",
        help="write the report to FILE (required for pdf; default stdout)",
    )
    r.add_argument(
        "--lang", choices=["sv", "en"], default="sv", help="html/pdf language (default sv)"
    )
    r.add_argument("--now", help=f"judge open callbacks at this time ({ISO_NOW}; default: now)")


def _alerts(a: argparse.ArgumentParser) -> None:
    a.add_argument("action", choices=["tail"], help="tail: print alerts as they arrive")
    a.add_argument("--unit", help="only this unit's alerts (default: every unit)")
    a.add_argument("--queues", action="store_true", help="also print live queue and unit state")
    a.add_argument("--json", action="store_true", help="print the payloads as they are")


def _serve(s: argparse.ArgumentParser) -> None:
    s.add_argument("recording", help="an .ami file (raw AMI bytes)")
    _listen(s)
    s.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="X",
        help="1 = real time, 0 = as fast as possible (default)",
    )
    s.add_argument(
        "--transcript",
        metavar="FILE",
        help="answer the state read after login from this recorded transcript "
        "(*.transcript.json of a restart recording)",
    )
