"""The console's report is made in a child process, not on the loop that
reads the AMI stream.

A real console (uvicorn on its own loop, as ``tests/web/served.py`` runs
it) over a sampled year (``tests/reports/year.py``).  In this process the
report's work is made impossible: ``document``, ``render.html`` and
``render.pdf`` raise.  The route still answers, with the very bytes
``pbxwatch.reports.worker.make`` gives in-process (HTML with its styles
linked, and a PDF), and its log names the child's pid, which is not ours.
The console loop's lag during the year report (a 1 ms timer's lateness) is
printed (``pytest -s``), not asserted: this test says where the work runs,
not how fast a shared machine ran it.  Also: a second report waits for the
first (one at a time), a report that takes too long is stopped with a 504,
a busy worker gives a 503, and a failing child a 500 that says so.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pbxwatch.reports import document as document_module
from pbxwatch.reports import render, worker
from pbxwatch.settings import Settings, StorageSettings
from pbxwatch.store.db import make_engine
from pbxwatch.web import units
from pbxwatch.web.units import linked_styles
from tests import pg
from tests.reports.year import YEAR, fill_store, sample_days
from tests.web.served import Served, as_group, serve
from tests.web.test_units import WEB

PERIOD = {"from": f"{YEAR}-01-01", "to": f"{YEAR}-12-31"}


@pytest.fixture(scope="module")
def year(lab_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    tmp = tmp_path_factory.mktemp("worker")
    days = sample_days(YEAR - 1, 1) + sample_days(YEAR, 1)
    return asyncio.run(fill_store(lab_settings, tmp, days, calls_per_hour=10))


@pytest.fixture(scope="module")
def console(year: Settings) -> Iterator[Served]:
    with serve(year, year.storage.data_dir / "year.db", web=WEB) as s:
        yield s


def get(s: Served, path: str, group: str = "chief-soc", **params: str) -> httpx.Response:
    return httpx.get(s.base + path, headers=as_group(group), params=params, timeout=300)


def console_now(s: Served) -> float:
    data = get(s, "/api/v1/units/socialtjanst", "ops").json()
    return dt.datetime.fromisoformat(data["now"]).timestamp()


def expected(settings: Settings, fmt: str, now: float) -> bytes:
    """What ``pbxwatch report`` makes of the same request, in this process."""

    async def made() -> bytes:
        engine = make_engine(settings.storage.resolved_url())
        try:
            first, last = (dt.date.fromisoformat(PERIOD[k]) for k in ("from", "to"))
            return await worker.make(engine, settings, "socialtjanst", first, last, now, fmt)
        finally:
            await engine.dispose()

    return asyncio.run(made())


def _not_here(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError(f"report work in the console's process (pid {os.getpid()})")


def lagging(s: Served) -> tuple[list[float], threading.Event]:
    """A 1 ms timer on the console's loop, its lateness appended until set."""
    loop = s.console._task.get_loop()
    lags: list[float] = []
    stop = threading.Event()

    async def monitor() -> None:
        while not stop.is_set():
            t0 = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - t0 - 0.001)

    asyncio.run_coroutine_threadsafe(monitor(), loop)
    return lags, stop


def test_the_report_is_made_in_a_child_process(
    console: Served,
    year: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = console_now(console)
    want = {fmt: expected(year, fmt, now) for fmt in ("html", "pdf")}
    monkeypatch.setattr(document_module, "document", _not_here)
    monkeypatch.setattr(render, "html", _not_here)
    monkeypatch.setattr(render, "pdf", _not_here)
    caplog.set_level(logging.INFO, logger=worker.__name__)
    lags, stop = lagging(console)
    try:
        html = get(console, "/units/socialtjanst/report", **PERIOD)
        pdf = get(console, "/units/socialtjanst/report", format="pdf", **PERIOD)
    finally:
        stop.set()
    assert html.status_code == 200, html.text
    assert html.text == linked_styles(want["html"].decode())
    assert pdf.status_code == 200, pdf.text
    assert pdf.content.startswith(b"%PDF")
    assert len(pdf.content) > 0.5 * len(want["pdf"])  # WeasyPrint's bytes differ by date
    made = [r for r in caplog.records if r.getMessage().startswith("report made by pid")]
    assert len(made) == 2
    pids = {r.__dict__["child_pid"] for r in made}
    assert os.getpid() not in pids
    assert len(pids) == 2  # a fresh child each time
    lags.sort()
    print(f"\nconsole loop during two year reports: {len(lags)} ticks, "
          f"lag p50 {1000 * lags[len(lags) // 2]:.2f} ms, max {1000 * lags[-1]:.1f} ms, "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip


def test_one_report_at_a_time_and_a_timeout(
    console: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[float] = []
    ended: list[float] = []
    real = worker.in_child

    async def traced(job: worker.ReportRequest, timeout: float) -> bytes:
        started.append(time.monotonic())
        try:
            return await real(job, timeout)
        finally:
            ended.append(time.monotonic())

    monkeypatch.setattr(worker, "in_child", traced)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        both = list(pool.map(lambda _: get(console, "/units/socialtjanst/report", **PERIOD),
                             range(2)))  # fmt: skip
    assert [r.status_code for r in both] == [200, 200]
    assert both[0].text == both[1].text
    assert len(started) == 2
    assert max(started) >= min(ended)  # the second child began after the first ended

    monkeypatch.setattr(units, "REPORT_SECONDS", 0.05)
    slow = get(console, "/units/socialtjanst/report", **PERIOD)
    assert slow.status_code == 504
    assert "took more than 0.05 s and was stopped: choose a shorter period" in slow.text


def test_busy_and_failed(console: Served, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    state = console.console.app.state
    lock = state.report_lock = getattr(state, "report_lock", None) or asyncio.Lock()
    held = asyncio.run_coroutine_threadsafe(lock.acquire(), console.console._task.get_loop())
    held.result(10)
    monkeypatch.setattr(units, "REPORT_WAIT_SECONDS", 0.05)
    try:
        busy = get(console, "/units/socialtjanst/report", **PERIOD)
    finally:
        console.console._task.get_loop().call_soon_threadsafe(lock.release)
    assert busy.status_code == 503
    assert "another report is being made (one at a time)" in busy.text

    broken = tmp_path / "broken.py"
    broken.write_text("import sys\nsys.stderr.write('boom')\nsys.exit(3)\n", encoding="utf-8")
    monkeypatch.setattr(worker, "command", lambda: [sys.executable, str(broken)])
    failed = get(console, "/units/socialtjanst/report", **PERIOD)
    assert failed.status_code == 500
    assert "the report worker failed (exit status 3)" in failed.text
    assert "boom" not in failed.text  # the log has it, not the client


SECRET = "not-on-a-command-line-7f3a"


def test_postgresql_from_the_settings_and_no_secret_on_a_command_line(
    lab_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child opens the settings' PostgreSQL itself, the password from
    ``storage.password_env`` in the environment it inherits: the request on
    its stdin and its command line hold the variable's name, never the
    password (the throw-away server trusts loopback, so the password is
    carried, not checked)."""
    if not pg.available():
        pytest.fail("PostgreSQL binaries missing: run scripts/test.sh (it installs them)")
    monkeypatch.setenv("PBXWATCH_TEST_DB_PASSWORD", SECRET)
    with pg.postgres_server() as url:
        storage = StorageSettings(url=url, password_env="PBXWATCH_TEST_DB_PASSWORD",
                                  data_dir=tmp_path)  # fmt: skip
        assert SECRET in storage.resolved_url()
        days = [dt.date(YEAR - 1, 11, 4), dt.date(YEAR, 11, 4)]
        settings = asyncio.run(fill_store(lab_settings, tmp_path, days, 10, storage=storage))
        first, last = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31)
        now = dt.datetime(YEAR + 1, 1, 20, 12, 0).timestamp()

        async def both() -> tuple[bytes, bytes, str | None, bytes]:
            engine = make_engine(settings.storage.resolved_url())
            try:
                here = await worker.make(engine, settings, "all", first, last, now, "json")
                job = worker.ReportRequest(settings, "all", first, last, now, "json", "sv",
                                           worker.store_url_for(settings, engine))  # fmt: skip
                there = await worker.in_child(job, 120)
                return here, there, job.store_url, job.to_json()
            finally:
                await engine.dispose()

        here, there, store_url, sent = asyncio.run(both())
    assert there == here
    assert sum(u["figures"]["offered"] for u in json.loads(there)["units"]) > 0
    assert store_url is None  # the settings name the console's database
    assert SECRET.encode() not in sent
    assert b"PBXWATCH_TEST_DB_PASSWORD" in sent
    assert not any(SECRET in arg for arg in worker.command())


def test_another_database_than_the_settings_name(year: Settings, tmp_path: Path) -> None:
    """A console over another database than its settings name (as a test's
    may be) has the child open that one, its URL given without a password."""
    engine = make_engine("postgresql+asyncpg://u:pw@db.example/other")
    try:
        assert worker.store_url_for(year, engine) == "postgresql+asyncpg://u@db.example/other"
    finally:
        asyncio.run(engine.dispose())
    same = make_engine(year.storage.resolved_url())
    try:
        assert worker.store_url_for(year, same) is None
    finally:
        asyncio.run(same.dispose())
