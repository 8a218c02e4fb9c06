"""The report made in a child process, off the AMI reader's event loop.

A report reads every call of its period and aggregates them in Python, and
its PDF is WeasyPrint's layout: seconds of CPU under the GIL.  The console
serves on the loop that reads the AMI stream, so ``/units/{unit}/report``
does none of that itself: ``in_child`` starts ``python -m
pbxwatch.reports.worker``, writes the request to its standard input (one
JSON object: the settings as validated, unit, dates, the PBX's now, format,
language) and reads the report's bytes from its standard output.  The child
opens its own database engine from the same settings (``storage.url`` or
the SQLite file in ``data_dir``; the password from ``storage.password_env``,
which the child reads from the environment it inherits: no secret is on a
command line, and the request holds only what the YAML holds) and exits,
so the memory a year's rows took goes back to the system with it.

``make`` is the one entry that builds a report's bytes from an open engine;
``pbxwatch report`` (``pbxwatch.cli.store``) calls it in its own process.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.settings import ConfigError, Settings

log = logging.getLogger(__name__)

FORMATS = ("json", "html", "pdf")
#: exit status of a child that refused the request (its message on stderr)
REFUSED = 2
#: the child's scheduling priority below the service's (best effort)
NICENESS = 5


class ReportFailed(RuntimeError):
    """The child exited without a report; the message is its last words."""


class ReportTimeout(ReportFailed):
    """The child took longer than allowed and was killed."""


def encode(doc: dict[str, Any], fmt: str, lang: str = "sv") -> bytes:
    """The document as the bytes of ``fmt``: JSON (indented, as ``pbxwatch
    report --format json`` prints it), the HTML page, or its PDF."""
    from pbxwatch.reports import render

    if fmt == "json":
        return (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode()
    if fmt == "html":
        return render.html(doc, lang).encode()
    if fmt == "pdf":
        return render.pdf(doc, lang)
    raise ConfigError(f"report: format {fmt!r}; one of {', '.join(FORMATS)}")


async def make(
    engine: AsyncEngine,
    settings: Settings,
    unit: str,
    date_from: dt.date,
    date_to: dt.date,
    now: float,
    fmt: str,
    lang: str = "sv",
) -> bytes:
    """The report (``pbxwatch.reports.document``) of ``unit`` (or "all") as
    the bytes of ``fmt``."""
    from pbxwatch.reports.document import document

    doc = await document(engine, settings, unit, date_from, date_to, now)
    return encode(doc, fmt, lang)


# ------------------------------------------------------------------ the parent's side


@dataclass(frozen=True)
class ReportRequest:
    settings: Settings
    unit: str
    date_from: dt.date
    date_to: dt.date
    now: float
    fmt: str
    lang: str = "sv"
    #: the database the console reads when it is not the one the settings
    #: name (a test's console over another file); never with a password
    store_url: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "settings": self.settings.model_dump(mode="json"),
                "unit": self.unit,
                "from": self.date_from.isoformat(),
                "to": self.date_to.isoformat(),
                "now": self.now,
                "format": self.fmt,
                "lang": self.lang,
                "store_url": self.store_url,
            },
            ensure_ascii=False,
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ReportRequest:
        raw = json.loads(data)
        return cls(
            settings=Settings.model_validate(raw["settings"]),
            unit=raw["unit"],
            date_from=dt.date.fromisoformat(raw["from"]),
            date_to=dt.date.fromisoformat(raw["to"]),
            now=float(raw["now"]),
            fmt=raw["format"],
            lang=raw.get("lang", "sv"),
            store_url=raw.get("store_url"),
        )


def _bare(url: URL) -> URL:
    return url._replace(password=None)  # (``set`` takes None as "unchanged")


def store_url_for(settings: Settings, engine: AsyncEngine) -> str | None:
    """What ``ReportRequest.store_url`` is for a console reading through
    ``engine``: None when the settings name that database (always so in
    ``pbxwatch run``), else its URL without the password."""
    bare = _bare(engine.url)
    if _bare(make_url(settings.storage.resolved_url())) == bare:
        return None
    return bare.render_as_string(hide_password=False)


def command() -> list[str]:
    """The child's command line: the interpreter and the module, no arguments."""
    return [sys.executable, "-m", "pbxwatch.reports.worker"]


async def in_child(request: ReportRequest, timeout: float) -> bytes:
    """The report's bytes, made by a child process; ``ReportTimeout`` after
    ``timeout`` seconds (the child killed), ``ReportFailed`` if it exits
    without one.  Cancelled (the client went away, shutdown), the child is
    killed too."""
    proc = await asyncio.create_subprocess_exec(
        *command(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    began = time.monotonic()
    try:
        out, err = await asyncio.wait_for(proc.communicate(request.to_json()), timeout)
    except TimeoutError as exc:
        raise ReportTimeout(f"the report took more than {timeout:g} s and was stopped") from exc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            with contextlib.suppress(Exception):
                await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        words = err.decode(errors="replace").strip()
        if proc.returncode == REFUSED and words:
            raise ReportFailed(words.splitlines()[-1])
        log.error("report worker (pid %d) exited with %s: %s", proc.pid, proc.returncode, words)
        raise ReportFailed(f"the report worker failed (exit status {proc.returncode}); "
                           "the server's log has why")  # fmt: skip
    log.info("report made by pid %d: %s %s..%s, %s, %d bytes in %.1f s", proc.pid,
             request.unit, request.date_from, request.date_to, request.fmt, len(out),
             time.monotonic() - began, extra={"child_pid": proc.pid})  # fmt: skip
    return out


# ------------------------------------------------------------------ the child's side


async def _serve(request: ReportRequest) -> bytes:
    from pbxwatch.store.db import check_schema, make_engine

    settings = request.settings
    url = settings.storage.resolved_url()
    if request.store_url is not None:
        url = request.store_url
    engine = make_engine(url)
    try:
        await check_schema(engine)
        return await make(engine, settings, request.unit, request.date_from, request.date_to,
                          request.now, request.fmt, request.lang)  # fmt: skip
    finally:
        await engine.dispose()


def main() -> int:
    """The child: one request on stdin, the report's bytes on stdout."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    try:
        request = ReportRequest.from_json(sys.stdin.buffer.read())
        data = asyncio.run(_serve(request))
    except ConfigError as exc:
        print(f"pbxwatch report: {exc}", file=sys.stderr)
        return REFUSED
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
