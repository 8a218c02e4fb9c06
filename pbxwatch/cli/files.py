"""The commands on configuration files: ``init`` and ``check-config``."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from pbxwatch import configs
from pbxwatch.cli.options import config_path
from pbxwatch.settings import ConfigError, load_settings

STARTER_HEAD = """\
# Written by `pbxwatch init` on {date} from the annotated example.
# To watch your own PBX:
#   1. site, timezone, and ami: where your Asterisk manager interface is (a
#      read-only manager user; the secret comes from PBXWATCH_AMI_SECRET);
#   2. inbound: which channels are calls from outside;
#   3. directory: your units, people, numbers and queues (the example's are
#      the fictional Exempelkommun's);
#   4. storage: SQLite in data/ by default, or PostgreSQL.
# Then:  pbxwatch check-config {path}
#        PBXWATCH_AMI_SECRET=... pbxwatch run --config {path}
#
"""


def init(args: argparse.Namespace) -> int:
    """Write the annotated example as a starting point, refusing to
    overwrite a file unless told to."""
    path = Path(args.path)
    if path.exists() and not args.force:
        raise ConfigError(f"init: {path} exists already (--force overwrites it)")
    body = configs.text_of("example")
    body = body.split("\n", 1)[1] if body.startswith("# pbxwatch configuration") else body
    text = STARTER_HEAD.format(date=dt.date.today().isoformat(), path=path) + body
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"init: cannot write {path}: {exc.strerror or exc}") from exc
    load_settings(path)  # what it wrote must be valid
    print(f"wrote {path}: edit it, then `pbxwatch check-config {path}`")
    return 0


def check_config(args: argparse.Namespace) -> int:
    if args.path is not None:
        args.config = args.path
    path = config_path(args)
    s = load_settings(path)
    d = s.directory
    print(f"{path}: OK — site {s.site}, {len(d.units)} units, {len(d.people)} people, "
          f"{len(d.queues)} queues")  # fmt: skip
    for slug, unit in sorted(d.units.items()):
        if "phone_hours" not in unit.model_fields_set:  # say what it will be judged by
            h = unit.phone_hours
            print(f"  directory.units.{slug}.phone_hours not given: the default "
                  f"{'/'.join(h.days)} {h.open:%H:%M}-{h.close:%H:%M} {s.timezone}")  # fmt: skip
    return 0
