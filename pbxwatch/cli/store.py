"""The commands on the store: ``db upgrade|check|purge`` and ``report``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.engine import make_url

from pbxwatch.cli.options import parse_date, parse_now, settings_of
from pbxwatch.settings import ConfigError, Settings


async def db(args: argparse.Namespace) -> int:
    from pbxwatch.store.db import SchemaError, check_schema, make_engine, upgrade

    settings = settings_of(args)
    if args.action == "purge":
        return await _purge(args, settings)
    if args.action == "check":
        _stored_already(settings)
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


def store_name(settings: Settings) -> str:
    """The store as a person can find it: the SQLite file, or the
    database's URL without its password."""
    url = make_url(settings.storage.resolved_url())
    if url.get_backend_name() == "sqlite" and url.database:
        return f"SQLite {Path(url.database).resolve()}"
    return url.render_as_string(hide_password=True)


def _stored_already(settings: Settings) -> None:
    """Reading commands refuse an embedded store that does not exist
    rather than make an empty one and report zeros from it."""
    url = make_url(settings.storage.resolved_url())
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return
    if not Path(url.database).exists():
        raise ConfigError(
            f"storage: no database at {url.database} (storage.data_dir "
            f"{settings.storage.data_dir}): nothing has been stored there. "
            "`pbxwatch demo` stores into demo-data/ and prints the report command that reads it"
        )


async def _purge(args: argparse.Namespace, settings: Settings) -> int:
    from pbxwatch.store.retention import purge
    from pbxwatch.store.session import open_store

    tz = ZoneInfo(settings.timezone)
    now = parse_now(args.now, tz) or time.time()
    _stored_already(settings)
    print(f"pbxwatch: purging {store_name(settings)}", file=sys.stderr)
    engine = await open_store(settings)
    try:
        report = await purge(engine, settings, now, compact=args.compact)
    finally:
        await engine.dispose()
    print(json.dumps(report.to_json(tz), ensure_ascii=False))
    return 0


async def report(args: argparse.Namespace) -> int:
    from pbxwatch.report import build, render
    from pbxwatch.store.session import open_store

    settings = settings_of(args)
    tz = ZoneInfo(settings.timezone)
    date_from, date_to = parse_date(args.date_from, "--from"), parse_date(args.date_to, "--to")
    if date_to < date_from:
        raise ConfigError(f"--to: {date_to} is before --from {date_from}")
    now = parse_now(args.now, tz) or time.time()
    fmt, out = args.format, getattr(args, "out", None)
    if fmt == "pdf" and not out:
        raise ConfigError("report: --format pdf needs --out FILE")
    if args.unit == "all" and fmt in ("table", "csv"):
        raise ConfigError("report: --unit all needs --format json, html or pdf")
    _stored_already(settings)
    print(f"pbxwatch: reading {store_name(settings)}", file=sys.stderr)
    engine = await open_store(settings)
    try:
        if fmt in ("json", "html", "pdf"):
            from pbxwatch.reports.worker import make

            lang = getattr(args, "lang", "sv")
            data = await make(engine, settings, args.unit, date_from, date_to, now, fmt, lang)
        else:
            result = await build(engine, settings, args.unit, date_from, date_to, now)
    finally:
        await engine.dispose()
    if fmt in ("json", "html", "pdf"):
        return _write_document(data, out)
    text = render(result, fmt, tz)
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def _write_document(data: bytes, out: str | None) -> int:
    """The report's bytes (``pbxwatch.reports.worker.make``, the console's
    too) to ``out``, or to stdout."""
    if out:
        Path(out).write_bytes(data)
        print(f"pbxwatch: wrote {Path(out).resolve()}", file=sys.stderr)
    else:
        sys.stdout.flush()  # nothing written as text goes after the bytes
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    return 0
