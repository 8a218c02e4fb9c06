"""The console's year report against the event loop that reads the AMI stream.

``/units/{unit}/report`` used to build the report on the console's loop
(the loop ``pbxwatch run`` reads the AMI stream on): ``document`` read every
call of the period and aggregated them in Python, ``render.html`` made the
page, and WeasyPrint's PDF ran in ``asyncio.to_thread`` (which still takes
the GIL from the loop).  Now the route hands the whole build to a child
process (``pbxwatch.reports.worker``) and only waits for its bytes.

This script fills a SQLite store with a simulated year and the year before
(``tests/reports/year.py``: ``--per-month`` working days a month, each a day
of the simulator's call mix at ``--calls-per-hour``, replayed through the
real pipeline), then serves the console in this process (uvicorn on this
loop, header login, as ``tests/web/served.py`` does) with the old route
mounted beside the new one (``old_report`` below: the function as it was,
at f047261).  A client in another thread asks for the year report of
``--unit``, HTML and PDF, old and new, in interleaved rounds (old html, new
html, old pdf, new pdf, old html, ...; ``--rounds`` R, default 3) while a
1 ms timer on the loop records its lateness (the loop's lag: how long a
socket read of the AMI stream could have waited) and the loop thread's CPU
time across each tick (a late tick with no CPU of its own was the machine,
not work on the loop).  Per variant, medians over the rounds, and the
new/old ratios from the same rounds; the load average before every round.

Usage: .venv/bin/python bench/report_loop.py [--rounds 3] [--per-month 4]
           [--calls-per-hour 40] [--unit socialtjanst] [--store DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import httpx
import yaml
from common import ROOT, machine, p99, table
from fastapi import Query, Request
from fastapi.responses import HTMLResponse, Response

from pbxwatch.metrics.health import Health
from pbxwatch.pipeline import build_engine
from pbxwatch.reports import render as report_render
from pbxwatch.reports.document import document
from pbxwatch.settings import Settings, WebSettings, load_settings
from pbxwatch.store.db import make_engine
from pbxwatch.web import LiveView, WebConsole
from pbxwatch.web.deps import console_of
from pbxwatch.web.units import linked_styles
from tests.reports.year import YEAR, fill_store, sample_days
from tests.services import free_port

LAB = ROOT / "config" / "lab.yaml"
WEB = {"auth": {"mode": "header",
                "header": {"trusted_proxies": ["127.0.0.1"],
                           "role_map": {"ops": ["operations"]}}}}  # fmt: skip
HEADERS = {"X-Forwarded-User": "bench", "X-Forwarded-Groups": "ops"}
FIRST, LAST = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)


# ------------------------------------------------------------------ the old path


def _old_pdf(html: str) -> bytes:
    from weasyprint import HTML  # type: ignore[import-untyped]

    data: bytes = HTML(string=html).write_pdf()
    return data


_OLD_LOCK = asyncio.Lock()


async def old_report(
    request: Request,
    unit: str,
    fmt: Annotated[str, Query(alias="format")] = "html",
) -> Response:
    """``unit_report``'s build as it was at f047261 (access checks and dates
    left out: the same for both): on the loop, the PDF in a thread."""
    console = console_of(request)
    assert console.store is not None
    async with _OLD_LOCK:
        now = console.view.now()
        doc = await document(console.store, console.settings, unit, FIRST, LAST, now)
        html = report_render.html(doc, "sv")
        if fmt == "pdf":
            pdf = await asyncio.to_thread(_old_pdf, html)
    if fmt == "pdf":
        return Response(pdf, media_type="application/pdf")
    return HTMLResponse(linked_styles(html))


# ------------------------------------------------------------------ measuring


@dataclass
class Ticks:
    """The 1 ms timer's lateness (wall) and the loop thread's CPU per tick."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    running: bool = False


async def monitor(ticks: Ticks, stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0, c0 = time.perf_counter(), time.thread_time()
        await asyncio.sleep(0.001)
        if ticks.running:
            ticks.wall.append(time.perf_counter() - t0 - 0.001)
            ticks.cpu.append(time.thread_time() - c0)


@dataclass
class Sample:
    seconds: float
    loop_cpu: float  # CPU on the loop thread beyond the 1 ms timer's own ticks
    lag_p50: float
    lag_p99: float
    lag_max: float
    held_max: float  # the longest tick's CPU on the loop thread: work, not the machine
    size: int
    load: float


async def one(client: httpx.Client, ticks: Ticks, path: str, fmt: str) -> Sample:
    load = os.getloadavg()[0]
    ticks.wall.clear()
    ticks.cpu.clear()
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    ticks.running = True
    r = await loop.run_in_executor(None, lambda: client.get(path, params={"format": fmt}))
    ticks.running = False
    seconds = time.perf_counter() - t0
    r.raise_for_status()
    wall = sorted(ticks.wall) or [0.0]
    # the loop's work beyond the timer's own: each tick's CPU over a bare tick's
    bare = statistics.median(ticks.cpu) if ticks.cpu else 0.0
    work = sum(max(0.0, c - bare) for c in ticks.cpu)
    return Sample(seconds, work, statistics.median(wall), p99(wall), wall[-1],
                  max(ticks.cpu, default=0.0), len(r.content), load)  # fmt: skip


# ------------------------------------------------------------------ the store


def settings_for(store: Path) -> Settings:
    raw = yaml.safe_load(LAB.read_text(encoding="utf-8"))
    raw["metrics"] = {"enabled": False}
    raw["storage"] = {"data_dir": str(store)}
    return Settings(**raw)


async def year_store(store: Path, per_month: int, calls_per_hour: float) -> Settings:
    settings = settings_for(store)
    db = store / "year.db"
    if db.exists():
        print(f"reusing {db}", flush=True)
        return settings.model_copy(update={"storage": settings.storage.model_copy(
            update={"url": f"sqlite+aiosqlite:///{db}"})})  # fmt: skip
    days = sample_days(YEAR - 1, per_month) + sample_days(YEAR, per_month)
    print(f"filling {db}: {len(days)} days at {calls_per_hour:g} calls/h ...", flush=True)
    t0 = time.perf_counter()
    filled = await fill_store(settings, store, days, calls_per_hour)
    print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    return filled


def calls_in(db: Path, unit: str) -> tuple[int, int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        total = conn.execute("SELECT count(*) FROM calls").fetchone()[0]
        mine = total if unit == "all" else conn.execute(
            "SELECT count(*) FROM calls WHERE unit = ?", (unit,)).fetchone()[0]  # fmt: skip
    return int(total), int(mine)


# ------------------------------------------------------------------ main


async def bench(args: argparse.Namespace, store: Path) -> None:
    settings = await year_store(store, args.per_month, args.calls_per_hour)
    total, mine = calls_in(store / "year.db", args.unit)
    live = settings.model_copy(update={"web": WebSettings.model_validate(
        {**WEB, "listen": f"127.0.0.1:{free_port()}"})})  # fmt: skip
    view = LiveView(live, build_engine(live), Health(ami_up=True))
    engine = make_engine(live.storage.resolved_url())
    console = WebConsole(live, view, engine)
    console.app.add_api_route("/bench/old/{unit}/report", old_report, methods=["GET"])
    await console.start()
    stop = asyncio.Event()
    ticks = Ticks()
    watcher = asyncio.create_task(monitor(ticks, stop))
    base = f"http://127.0.0.1:{console.port}"
    paths = {"old": f"/bench/old/{args.unit}/report", "new": f"/units/{args.unit}/report"}
    variants = [(way, fmt) for fmt in ("html", "pdf") for way in ("old", "new")]
    samples: dict[tuple[str, str], list[Sample]] = {v: [] for v in variants}
    client = httpx.Client(base_url=base, headers=HEADERS, timeout=900,
                          params={"from": FIRST.isoformat(), "to": LAST.isoformat()})  # fmt: skip
    print(f"{machine()}\nstore: {total} calls in all, {mine} of {args.unit}'s in the two "
          f"years; report {FIRST}..{LAST} (and the year before)", flush=True)  # fmt: skip
    try:
        for way, fmt in variants:  # warm-up: imports, the template, fonts
            await one(client, ticks, paths[way], fmt)
        for rnd in range(args.rounds):
            for way, fmt in variants:
                s = await one(client, ticks, paths[way], fmt)
                samples[way, fmt].append(s)
                print(f"round {rnd + 1} {way} {fmt}: {s.seconds:.2f} s, loop CPU "
                      f"{s.loop_cpu:.3f} s, lag p99 {1000 * s.lag_p99:.1f} ms max "
                      f"{1000 * s.lag_max:.1f} ms, load {s.load:.2f}", flush=True)  # fmt: skip
    finally:
        client.close()
        stop.set()
        await watcher
        await console.stop()
        await engine.dispose()
    report(samples, args.rounds)


def report(samples: dict[tuple[str, str], list[Sample]], rounds: int) -> None:
    def med(xs: list[float]) -> float:
        return statistics.median(xs)

    rows = []
    for (way, fmt), ss in samples.items():
        rows.append([f"{way} {fmt}", f"{med([s.seconds for s in ss]):.2f}",
                     f"{med([s.loop_cpu for s in ss]):.3f}",
                     f"{1000 * med([s.lag_p50 for s in ss]):.2f}",
                     f"{1000 * med([s.lag_p99 for s in ss]):.1f}",
                     f"{1000 * med([s.lag_max for s in ss]):.1f}",
                     " / ".join(f"{1000 * s.lag_max:.0f}" for s in ss),
                     f"{1000 * med([s.held_max for s in ss]):.1f}",
                     f"{ss[0].size}"])  # fmt: skip
    print(
        f"\nmedians over {rounds} rounds (load average before each round: "
        + ", ".join(f"{s.load:.2f}" for s in samples["old", "html"])
        + ")"
    )
    print(table(["variant", "report s", "loop work s", "lag p50 ms", "lag p99 ms",
                 "lag max ms", "lag max per round", "longest tick CPU ms", "bytes"],
                rows))  # fmt: skip
    ratios = []
    for fmt in ("html", "pdf"):
        old, new = samples["old", fmt], samples["new", fmt]
        ratio = [n.lag_max / o.lag_max for o, n in zip(old, new, strict=True) if o.lag_max]
        cpu = [n.loop_cpu / o.loop_cpu for o, n in zip(old, new, strict=True) if o.loop_cpu]
        took = [n.seconds / o.seconds for o, n in zip(old, new, strict=True)]
        ratios.append([fmt, f"{med(ratio):.3f}", f"{med(cpu):.4f}", f"{med(took):.2f}"])
    print("\nnew / old, the same rounds (median of the per-round ratios)")
    print(table(["format", "lag max", "loop CPU", "report time"], ratios))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-month", type=int, default=4)
    ap.add_argument("--calls-per-hour", type=float, default=40.0)
    ap.add_argument("--unit", default="socialtjanst")
    ap.add_argument("--store", type=Path, help="a directory to keep (and reuse) the store in")
    args = ap.parse_args()
    load_settings(LAB)  # the lab's configuration is valid before filling anything
    if args.store:
        args.store.mkdir(parents=True, exist_ok=True)
        asyncio.run(bench(args, args.store))
        return 0
    with tempfile.TemporaryDirectory(prefix="report-loop-") as tmp:
        asyncio.run(bench(args, Path(tmp)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
