"""The simulator's commands: ``demo`` and ``simulate``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
from pathlib import Path

from pbxwatch.cli.live import secret_from
from pbxwatch.cli.options import config_path, parse_date
from pbxwatch.settings import ConfigError, Settings, load_settings
from pbxwatch.sim.live import SimPlan, closed_because, first_working_day

log = logging.getLogger("pbxwatch")

#: the demo's day starts this long before opening, and a call comes at once
DEMO_LEAD_IN_SECONDS = 10.0


def sim_plan(
    args: argparse.Namespace,
    settings: Settings,
    *,
    lead_in_seconds: float = 1800.0,
    call_at_open: bool = False,
) -> SimPlan:
    """What to simulate.  An explicit ``--start`` on a closed day is refused
    (the simulator plays working days; a closed municipality has no calls
    to follow); by default it is today, or the next working day."""
    if args.start:
        first = parse_date(args.start, "--start")
        why = closed_because(settings, first)
        if why is not None:
            raise ConfigError(f"--start: {first} is a closed day ({why}): the simulator plays "
                              f"working days; the next one is "
                              f"{first_working_day(settings, first)}")  # fmt: skip
    else:
        today = dt.date.today()
        first = first_working_day(settings, today)
        if first != today:
            log.info("today is a closed day (%s): simulating %s", closed_because(settings, today),
                     first)  # fmt: skip
    return SimPlan(first, args.days, args.calls_per_hour, args.speed, args.seed,
                   lead_in_seconds=lead_in_seconds, call_at_open=call_at_open)  # fmt: skip


def _on_tech(settings: Settings, args: argparse.Namespace) -> Settings:
    from pbxwatch.sim.live import with_tech

    return with_tech(settings, args.tech) if args.tech else settings


def demo(args: argparse.Namespace) -> int:
    from pbxwatch.demo import run_demo, terminal_lang

    path = config_path(args, default="lab")
    settings = _on_tech(load_settings(path), args)
    plan = sim_plan(args, settings, lead_in_seconds=DEMO_LEAD_IN_SECONDS, call_at_open=True)
    data_dir = Path(args.data_dir)
    lang = args.lang or terminal_lang(os.environ)
    code = asyncio.run(run_demo(settings, plan, data_dir=data_dir, lang=lang,
                                metrics_listen=args.metrics_listen,
                                duration=args.duration))  # fmt: skip
    print(next_steps(args, settings, plan, data_dir), flush=True)
    return code


def next_steps(args: argparse.Namespace, settings: Settings, plan: SimPlan, data_dir: Path) -> str:
    """Where the demo's data is, and the exact command that reports on it."""
    config = args.config if getattr(args, "config", None) else "lab"
    unit = next(iter(settings.directory.units))
    day = plan.first_day.isoformat()
    # the demo stores into SQLite in data_dir whatever the configuration says
    # (the store's URL too, when it names one: then that is what to override)
    store = (
        f"PBXWATCH_STORAGE__URL=sqlite+aiosqlite:///{data_dir / 'pbxwatch.db'}"
        if settings.storage.url
        else f"PBXWATCH_STORAGE__DATA_DIR={data_dir}"
    )
    return (f"\nThe demo's data is in {data_dir.resolve()} (SQLite). A report of it:\n"
            f"  {store} pbxwatch report --config {config} "
            f"--unit {unit} --from {day} --to {day}")  # fmt: skip


def simulate(args: argparse.Namespace) -> int:
    from pbxwatch.sim.live import serve_simulation

    secret = secret_from(args)
    settings = _on_tech(load_settings(config_path(args, default="lab")), args)
    plan = sim_plan(args, settings)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(serve_simulation(settings, plan, args.host, args.port, args.username,
                                     secret, args.record,
                                     wait_for_client=args.wait_for_client))  # fmt: skip
    return 0
