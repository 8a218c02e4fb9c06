"""The weekly digest from a real ``pbxwatch run`` (SQLite store, mail on)
following ``pbxwatch simulate`` (a child process) from a Thursday over the
weekend to the Monday, ``mail.weekly_day: mon``, against a real SMTP server
(aiosmtpd, ``tests/mail/smtp.py``) started here.

On the Monday, at ``mail.digest_time`` (the stream begins at 07:30), each
unit's weekly digest of the seven days before (Monday to Sunday: the
Thursday and Friday played) goes to each of its recipients.  ``run`` is
then stopped and started again, still on the Monday, and runs on a while:
a digest that exists is never made or sent again.  What must hold, from
the store and the SMTP server:

* exactly one weekly digest per unit and recipient, made on the Monday,
  its key and subject the previous Monday..Sunday;
* its subject, text and HTML what ``digest_data`` reads from the store for
  that week (at the time the row was made) renders to, so its figures are
  the store's;
* Swedish by default (the chiefs), English for the recipient who asked;
* ``multipart/alternative`` with a text and an HTML part, and the
  ``Message-ID`` derived from the outbox row (the same for every send);
* no message received twice, weekly or not.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.mail.compose import digest_content
from pbxwatch.mail.digest import digest_data
from pbxwatch.mail.outbox import mail_id, message_id, recipients
from pbxwatch.settings import Settings, load_settings
from pbxwatch.store.db import make_engine
from tests.conftest import LAB_CONFIG
from tests.live import RUN_ENV, run_config, start_run
from tests.mail.smtp import Recorder, start
from tests.mail.test_mail import EXTRA
from tests.services import free_port, pbxwatch, process

pytestmark = pytest.mark.chaos

SPEED = 2400.0
THURSDAY = dt.date(2026, 11, 12)  # Thursday, Friday, (the weekend), Monday 16 November
MONDAY = dt.date(2026, 11, 16)
WEEK = (MONDAY - dt.timedelta(days=7), MONDAY - dt.timedelta(days=1))
CONSOLE = "https://pbxwatch.example/"


def _simulate(port: int) -> list[str]:
    return pbxwatch("simulate", "--config", str(LAB_CONFIG), "--port", str(port),
                    "--username", "u", "--secret-env", "SIM_SECRET", "--speed", str(SPEED),
                    "--calls-per-hour", "30", "--seed", "33", "--start", THURSDAY.isoformat(),
                    "--days", "3", "--wait-for-client")  # fmt: skip


def _query(db: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    if not db.exists():
        return []
    with sqlite3.connect(db, timeout=5) as conn:
        conn.row_factory = sqlite3.Row
        try:
            return conn.execute(sql, args).fetchall()
        except sqlite3.OperationalError:
            return []  # not migrated yet


def _until(what: str, check: Any, timeout: float, proc: subprocess.Popen[bytes],
           log: Path) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, (what, log.read_text()[-4000:])
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes], log: Path) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0, log.read_text()[-4000:]


def _in_order(part: list[str], whole: list[str]) -> bool:
    """Whether every line of ``part`` is in ``whole``, in the same order."""
    rest = iter(whole)
    return all(line in rest for line in part)


def test_the_weekly_digest_on_the_weekly_day(tmp_path: Path) -> None:
    begun = time.monotonic()
    ami, smtp = free_port(), free_port()
    mail = {"enabled": True, "host": "127.0.0.1", "port": smtp, "security": "none",
            "from": "pbxwatch@exempelkommun.se", "console_url": CONSOLE, "weekly_day": "mon",
            "retry_initial_seconds": 0.3, "retry_max_seconds": 1.5, "poll_seconds": 0.2,
            "units": {"socialtjanst": {"recipients": [{"email": EXTRA,
                                                       "lang": "en"}]}}}  # fmt: skip
    config = run_config(tmp_path, ami, mail=mail, web={"enabled": False},
                        storage={"data_dir": str(tmp_path / "data"),
                                 "checkpoint_seconds": 0.5})  # fmt: skip
    settings = load_settings(config)
    db = tmp_path / "data" / "pbxwatch.db"
    log, simlog = tmp_path / "run.log", tmp_path / "sim.log"
    want = {(u, r.email): r.lang for u in settings.directory.units
            for r in recipients(settings, u)}  # fmt: skip
    assert len({u for u, _ in want}) == len(settings.directory.units) >= 3
    assert want["socialtjanst", EXTRA] == "en"

    recorder = Recorder()
    controller = start(smtp, recorder)

    def weekly_sent() -> bool:
        rows = _query(db, "SELECT status FROM mail_outbox WHERE kind = 'weekly'")
        return len(rows) == len(want) and all(r["status"] == "sent" for r in rows)

    try:
        with process(_simulate(ami), simlog, RUN_ENV) as sim:
            with log.open("ab") as out:
                p1 = start_run(config, out, pbx_speed=SPEED)
            try:
                _until("the Monday's weekly digests to go out", weekly_sent, 90, p1, log)
                _stop(p1, log)
                seen = len(recorder.messages)
                with log.open("ab") as out:
                    p2 = start_run(config, out, pbx_speed=SPEED)
                # on for a while, on the Monday: the digests are due, and made already
                _until("the restarted run to log in again",
                       lambda: log.read_text().count("checkpoint restored") >= 1, 30,
                       p2, log)  # fmt: skip
                time.sleep(3.0)
                _stop(p2, log)
            finally:
                for p in (p1, *([p2] if "p2" in locals() else [])):
                    if p.poll() is None:
                        p.kill()
                        p.wait()
            sim.send_signal(signal.SIGTERM)
            sim.wait(10)
    finally:
        controller.stop()

    weekly = _check(settings, db, recorder.messages, want)
    assert not [m for m in recorder.messages[seen:] if m in weekly]  # none after the restart
    print(f"{len(weekly)} weekly digests, {len(recorder.messages)} mails in all "
          f"({len(recorder.messages) - seen} after the restart); "
          f"{time.monotonic() - begun:.1f} s")  # fmt: skip


def _check(settings: Settings, db: Path, messages: list[EmailMessage],
           want: dict[tuple[str, str], str]) -> list[EmailMessage]:  # fmt: skip
    tz = ZoneInfo(settings.timezone)
    received = Counter(str(m["Message-ID"]) for m in messages)
    assert not {k: n for k, n in received.items() if n > 1}, "a message received twice"
    for m in messages:
        assert m.get_content_type() == "multipart/alternative"
        assert m.get_body(("plain",)) is not None
        assert m.get_body(("html",)) is not None

    first, last = WEEK
    rows = _query(db, "SELECT * FROM mail_outbox WHERE kind = 'weekly'")
    assert Counter((r["unit"], r["recipient"]) for r in rows) == Counter(want.keys())  # one each
    by_id = {str(m["Message-ID"]): m for m in messages}
    weekly = [m for m in messages if "Veckorapport" in str(m["Subject"])
              or "Weekly digest" in str(m["Subject"])]  # fmt: skip
    assert len(weekly) == len(want)
    for row in rows:
        key = f"weekly:{row['unit']}:{first.isoformat()}"
        assert row["key"] == key
        assert row["mail_id"] == mail_id(key, row["recipient"])
        assert row["status"] == "sent"
        assert row["attempts"] == 1
        made = dt.datetime.fromtimestamp(row["created_at"], tz)
        assert made.date() == MONDAY  # on the weekly day
        assert made.time() >= settings.mail.digest_time
        mid = message_id(row["mail_id"], settings)
        msg = by_id[mid]  # the Message-ID derived from the row: stable across sends
        assert str(msg["To"]) == row["recipient"]
        lang = want[row["unit"], row["recipient"]]
        assert row["lang"] == lang
        data = asyncio.run(_digest(settings, db, row["unit"], row["created_at"]))
        assert data is not None
        assert data["first"] == first.isoformat()
        assert data["last"] == last.isoformat()
        content = digest_content(data, lang, CONSOLE)
        what = "Veckorapport" if lang == "sv" else "Weekly digest"
        assert str(msg["Subject"]) == content.subject
        assert f"] {what} {first.isoformat()} – {last.isoformat()}: " in content.subject
        plain, page = msg.get_body(("plain",)), msg.get_body(("html",))
        assert plain is not None
        assert page is not None
        # read again after the run, the store may hold callbacks that were
        # written (deferred, the owner away) after the digest was made: the
        # mail is the digest made now, less such lines; its figures the same
        sent_text, now_text = _lines(plain.get_content()), _lines(content.text)
        assert _in_order(sent_text, now_text), (sent_text, now_text)
        assert sent_text[:12] == now_text[:12]  # the title and the figures
        assert _in_order(_lines(page.get_content()), _lines(content.html))
        offered = data["figures"]["offered"]
        assert offered > 0  # the Thursday's and the Friday's calls
        label = "Inkommande samtal" if lang == "sv" else "Calls offered"
        assert label in content.text
        assert str(offered) in content.text
    return weekly


def _lines(text: str) -> list[str]:
    """The lines of a body, whatever line ends SMTP gave it."""
    return text.replace("\r\n", "\n").rstrip("\n").split("\n")


async def _digest(settings: Settings, db: Path, unit: str, now: float) -> dict[str, Any] | None:
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    try:
        return await digest_data(engine, settings, unit, "weekly", *WEEK, now)
    finally:
        await engine.dispose()
