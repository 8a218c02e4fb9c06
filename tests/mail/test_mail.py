"""E-mail to unit chiefs against a real SMTP server (aiosmtpd) over a real
store: a simulated day replayed into SQLite by ``pbxwatch replay``, its
alerts written again through the store writer with their mail rows, and
the mail sender run at the PBX times that matter (the day, the next
morning's opening and digest time).

What must hold: the immediate mails are the day's alerts that ask for
action raised in phone hours, one per recipient; the others come in one
morning summary per recipient; one daily digest per unit and recipient,
its figures the store's; a 4xx is retried and a 5xx recorded and counted;
a 60 s outage of the server (stopped, then started on the same port) loses
no mail and duplicates none; no mail holds another unit's caller number.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.alerts import Alert
from pbxwatch.core.numbers import mask
from pbxwatch.mail import MAILED_KINDS, MailRows, MailSender, recipients
from pbxwatch.mail.digest import bounds
from pbxwatch.mail.outbox import Recipient
from pbxwatch.settings import MailSettings, Settings
from pbxwatch.sim.day import recording_bytes, simulate_day
from pbxwatch.sim.live import sim_calendar
from pbxwatch.store.db import make_engine
from pbxwatch.store.report import unit_period
from pbxwatch.store.writer import StoreWriter
from tests.live import run_config
from tests.mail.smtp import Recorder, start
from tests.services import free_port, pbxwatch
from tests.sim.expect import DAY

TZ = ZoneInfo("Europe/Stockholm")
EXTRA = "reader@exempelkommun.se"  # an English-reading extra recipient of Socialtjänst
#: an extra recipient of IT-support whose mailbox is gone: every mail to it is refused (550)
REFUSED = "closed.mailbox@exempelkommun.se"


def _at(day: dt.date, hh: int, mm: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hh, mm), TZ).timestamp()


@pytest.fixture(scope="module")
def day_db(tmp_path_factory: pytest.TempPathFactory, lab_settings: Settings) -> Path:
    tmp = tmp_path_factory.mktemp("mailday")
    day = simulate_day(lab_settings, DAY, calls_per_hour=60, seed=21)
    recording = tmp / "day.ami"
    recording.write_bytes(recording_bytes(day.frames))
    config = run_config(tmp, 5038)
    subprocess.run(pbxwatch("replay", "--config", str(config), str(recording)), check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    return tmp / "data" / "pbxwatch.db"


def _settings(lab: Settings, port: int, *, refused: bool = False, **more: Any) -> Settings:
    units: dict[str, Any] = {"socialtjanst": {"recipients": [{"email": EXTRA, "lang": "en"}]}}
    if refused:
        units["it-support"] = {"recipients": [{"email": REFUSED}]}
    mail = MailSettings.model_validate({
        "enabled": True, "host": "127.0.0.1", "port": port, "security": "none",
        "from": "pbxwatch@exempelkommun.se", "console_url": "https://pbxwatch.example/",
        "retry_initial_seconds": 0.2, "retry_max_seconds": 1.0, "poll_seconds": 0.1,
        "units": units, **more,
    })  # fmt: skip
    return lab.model_copy(update={"mail": mail})


def _alerts(db: Path) -> list[Alert]:
    """The day's alerts that ask for action, as the core made them."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT created_at, payload FROM alerts ORDER BY created_at").fetchall()
    out = []
    for created_at, payload in rows:
        p = json.loads(payload)
        if p["kind"] in MAILED_KINDS:
            out.append(Alert(alert_id=p["alert_id"], kind=p["kind"], state=p["state"],
                             unit=p["unit"], severity=p["severity"], created_at=created_at,
                             text_sv=p["text"]["sv"], text_en=p["text"]["en"], data=p["data"],
                             unit_name=p["unit_name"], created_iso=p["created_at"]))  # fmt: skip
    return out


async def _write_alerts(engine: AsyncEngine, settings: Settings, alerts: list[Alert]) -> None:
    """Through the store writer, as ``run`` does: the alert row and its mail rows."""
    writer = StoreWriter(engine)
    writer.mail_rows = MailRows(settings)
    writer.start()
    for alert in alerts:
        writer.submit(alert)
    await writer.close(timeout=30)


async def _drain(sender: MailSender, now: float, rounds: int = 50) -> None:
    for _ in range(rounds):
        await sender.schedule(now)
        if not await sender.send_due() and not sender.backlog_due():
            return
        await asyncio.sleep(0.05)


def _body(msg: EmailMessage) -> str:
    plain = msg.get_body(("plain",))
    page = msg.get_body(("html",))
    assert plain is not None
    assert page is not None
    return str(plain.get_content()) + str(page.get_content())


def _copy(db: Path, tmp: Path) -> str:
    shutil.copy(db, tmp / "pbxwatch.db")
    return f"sqlite+aiosqlite:///{tmp / 'pbxwatch.db'}"


def _rows(url: str, where: str = "1=1") -> list[sqlite3.Row]:
    with sqlite3.connect(url.split(":///", 1)[1]) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(f"SELECT * FROM mail_outbox WHERE {where}").fetchall()


def test_a_simulated_day_and_the_next_morning(lab_settings: Settings, day_db: Path,
                                              tmp_path: Path) -> None:  # fmt: skip
    port = free_port()
    recorder = Recorder()
    recorder.always[REFUSED] = "550 5.2.1 mailbox disabled"
    controller = start(port, recorder)
    settings = _settings(lab_settings, port, refused=True)
    url = _copy(day_db, tmp_path)
    calendar = sim_calendar(settings)
    directory = settings.directory_model()
    alerts = _alerts(day_db)
    assert alerts, "the simulated day raised no alert that asks for action"

    def in_hours(a: Alert) -> bool:
        return calendar.in_phone_hours(a.created_at, directory.units[a.unit or ""].phone_hours)

    async def main() -> None:
        engine = make_engine(url)
        await _write_alerts(engine, settings, alerts)
        sender = MailSender(settings, engine, lambda: None)
        await _drain(sender, _at(DAY, 23, 59))
        evening = list(recorder.messages)
        await _drain(sender, _at(DAY + dt.timedelta(days=1), 7, 5))
        refused = await refused_mails(engine, sender, REFUSED)
        await engine.dispose()
        want_now = Counter((r.email, a.alert_id) for a in alerts if in_hours(a)
                           for r in delivered(settings, a.unit))  # fmt: skip
        got_now = Counter((str(m["To"]), _alert_id(m)) for m in evening)
        assert got_now == want_now
        held = [a for a in alerts if not in_hours(a)]
        morning = recorder.messages[len(evening) :]
        summaries = [m for m in morning if "Morgonsammanfattning" in str(m["Subject"])
                     or "Morning summary" in str(m["Subject"])]  # fmt: skip
        held_to = Counter(r.email for a in held for r in delivered(settings, a.unit))
        assert Counter(str(m["To"]) for m in summaries) == Counter(set(held_to))
        for m in summaries:
            text = _body(m)
            for a in held:
                if str(m["To"]) in {r.email for r in recipients(settings, a.unit)}:
                    assert (a.text_sv if "Morgon" in str(m["Subject"]) else a.text_en) in text
        digests = [m for m in morning if "Dagsrapport" in str(m["Subject"])
                   or "Daily digest" in str(m["Subject"])]  # fmt: skip
        want_digests = Counter(r.email for u in settings.directory.units
                               for r in delivered(settings, u))  # fmt: skip
        assert Counter(str(m["To"]) for m in digests) == want_digests
        engine = make_engine(url)
        start_, end = bounds(DAY, DAY, TZ)
        for m in digests:
            unit = next(u for u in settings.directory.units
                        if str(m["To"]) in {r.email for r in recipients(settings, u)})  # fmt: skip
            figures = await unit_period(engine, settings, unit, start_, end, end + 3600 * 7)
            text = _body(m)
            assert f"Missade hänvisningar: {figures.missing_forwards}" in text or (
                f"Missing forwards: {figures.missing_forwards}" in text
            )
            assert f"{figures.offered}" in text
            assert f"https://pbxwatch.example/units/{unit}" in text  # the unit's own page
            assert m.get_content_type() == "multipart/alternative"
        await engine.dispose()
        assert all(r["status"] in ("sent", "summarized") for r in _rows(url)
                   if r["recipient"] != REFUSED)  # fmt: skip
        assert {r["status"] for r in _rows(url, f"recipient = '{REFUSED}'")} <= {
            "failed", "summarized"}  # fmt: skip
        assert len(refused) == len(_rows(url, f"recipient = '{REFUSED}' AND status = 'failed'"))
        assert any("Daily digest" in str(m["Subject"]) or "Dagsrapport" in str(m["Subject"])
                   for m in refused)  # fmt: skip
        print(f"{len(alerts)} alerts, {len(evening)} immediate mails, {len(summaries)} "
              f"summaries, {len(digests)} digests, {len(refused)} refused")  # fmt: skip
        _no_foreign_numbers(url, [*recorder.messages, *refused], settings)

    try:
        asyncio.run(main())
    finally:
        controller.stop()


def delivered(settings: Settings, unit: str | None) -> list[Recipient]:
    """The unit's recipients whose mailbox takes mail (``REFUSED`` does not)."""
    return [r for r in recipients(settings, unit) if r.email != REFUSED]


async def refused_mails(engine: AsyncEngine, sender: MailSender, to: str) -> list[EmailMessage]:
    """The mails refused to ``to``, as they were offered: rendered from their
    outbox rows (a digest's or summary's stored body, an alert's payload)."""
    from sqlalchemy import select

    from pbxwatch.store import models

    t = models.MailRow
    async with engine.connect() as conn:
        rows = (await conn.execute(select(t).where(t.recipient == to, t.status == "failed"))).all()
        payloads = await sender._payloads(conn, {r.alert_id for r in rows if r.alert_id})
    out = [sender.message_for(r, payloads.get(r.alert_id or "")) for r in rows]
    assert all(m is not None for m in out)
    return [m for m in out if m is not None]


def _alert_id(m: EmailMessage) -> str:
    text = _body(m)
    for line in text.splitlines():
        if line.startswith(("Larm-id: ", "Alert id: ")):
            return line.partition(": ")[2]
    raise AssertionError(text)


def _no_foreign_numbers(url: str, messages: list[EmailMessage], settings: Settings) -> None:
    """No mail holds a caller number (in clear or masked) of another unit."""
    with sqlite3.connect(url.split(":///", 1)[1]) as conn:
        numbers = conn.execute("SELECT unit, caller_e164 FROM calls WHERE caller_e164 IS NOT NULL"
                               " AND unit IS NOT NULL").fetchall()  # fmt: skip
        numbers += conn.execute("SELECT unit, number FROM callbacks WHERE number IS NOT NULL"
                                ).fetchall()  # fmt: skip
    owner = {r.email: u for u in settings.directory.units for r in recipients(settings, u)}
    by_unit: dict[str, set[str]] = {}
    for unit, number in numbers:
        by_unit.setdefault(unit, set()).update({number, mask(number)})
    checked = 0
    for m in messages:
        mine = owner[str(m["To"])]
        text = _body(m)
        for unit, nums in by_unit.items():
            if unit == mine:
                continue
            own = by_unit.get(mine, set())
            for n in nums - own:
                assert n not in text, (m["Subject"], unit, "number of another unit")
                checked += 1
    assert checked


def test_4xx_retried_5xx_recorded(lab_settings: Settings, day_db: Path, tmp_path: Path,
                                  caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    port = free_port()
    recorder = Recorder()
    chief = lab_settings.directory.units["socialtjanst"].chief
    assert chief is not None
    assert chief.email
    recorder.replies[chief.email] = ["451 4.3.0 try again later", "452 4.2.2 mailbox full"]
    recorder.always[EXTRA] = "550 5.1.1 no such user"
    controller = start(port, recorder)
    settings = _settings(lab_settings, port, max_attempts=5)
    url = _copy(day_db, tmp_path)
    now = _at(DAY, 10)
    alert = Alert(alert_id="callback_overdue:test:1", kind="callback_overdue", state="firing",
                  unit="socialtjanst", severity="warning", created_at=now,
                  text_sv="Röstmeddelande till Erik Öberg 09:12 har inte ringts tillbaka",
                  text_en="Voicemail for Erik Öberg left at 09:12 was not called back",
                  data={}, unit_name="Socialtjänst",
                  created_iso="2026-11-24T10:00:00+01:00")  # fmt: skip

    async def main() -> MailSender:
        engine = make_engine(url)
        await _write_alerts(engine, settings, [alert])
        sender = MailSender(settings, engine, lambda: now)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            await sender.send_due()
            if not _rows(url, "status = 'pending'"):
                break
            await asyncio.sleep(0.1)
        await engine.dispose()
        return sender

    try:
        sender = asyncio.run(main())
    finally:
        controller.stop()
    rows = {r["recipient"]: r for r in _rows(url)}
    assert rows[chief.email]["status"] == "sent"
    assert rows[chief.email]["attempts"] == 3
    assert [str(m["To"]) for m in recorder.messages] == [chief.email]
    failed = rows[EXTRA]
    assert (failed["status"], failed["reply_code"], failed["attempts"]) == ("failed", 550, 1)
    assert "no such user" in failed["reply"]
    assert sender.failed == 1
    assert sender.sent == 1
    assert any(r.levelname == "ERROR" and "550" in r.getMessage() for r in caplog.records)


def test_smtp_down_for_a_minute_loses_and_duplicates_nothing(
    lab_settings: Settings, day_db: Path, tmp_path: Path
) -> None:
    port = free_port()
    recorder = Recorder()
    controller = start(port, recorder)
    settings = _settings(lab_settings, port, retry_max_seconds=2.0)
    url = _copy(day_db, tmp_path)
    alerts = [
        Alert(alert_id=f"callback_overdue:outage:{i}", kind="callback_overdue", state="firing",
              unit="bygglov", severity="warning", created_at=_at(DAY, 9) + i * 60,
              text_sv=f"Meddelande {i}", text_en=f"Message {i}", data={},
              unit_name="Bygglov", created_iso="2026-11-24T09:00:00+01:00")
        for i in range(12)
    ]  # fmt: skip

    async def main() -> None:
        nonlocal controller
        engine = make_engine(url)
        sender = MailSender(settings, engine, lambda: _at(DAY, 12))
        task = asyncio.create_task(sender.run())
        await _write_alerts(engine, settings, alerts[:4])
        sender.wake()
        while len(recorder.messages) < 4:
            await asyncio.sleep(0.1)
        controller.stop()  # the server goes away for 60 s
        down = time.monotonic()
        await _write_alerts(engine, settings, alerts[4:])
        sender.wake()
        await asyncio.sleep(60 - (time.monotonic() - down))
        assert len(recorder.messages) == 4
        assert not sender.smtp_up
        controller = start(port, recorder)
        deadline = time.monotonic() + 30
        while len(recorder.messages) < 12 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # nothing more may come
        sender.stop()
        await asyncio.wait_for(task, 10)
        await engine.dispose()

    try:
        asyncio.run(main())
    finally:
        controller.stop()
    ids = [str(m["Message-ID"]) for m in recorder.messages]
    assert len(ids) == 12 == len(set(ids))
    assert {_alert_id(m) for m in recorder.messages} == {a.alert_id for a in alerts}
    assert all(r["status"] == "sent" for r in _rows(url))


def test_the_daily_digest_lists_deferred_callbacks(lab_settings: Settings, day_db: Path,
                                                   tmp_path: Path) -> None:  # fmt: skip
    """A message left while its owner was away for a listed reason has no
    deadline until the return: the digest lists it as deferred (owner
    away), without the reason (personal) and without a deadline; one whose
    owner is back is judged on its deadline again."""
    from sqlalchemy import insert

    from pbxwatch.mail.compose import digest_content
    from pbxwatch.mail.digest import digest_data
    from pbxwatch.store import models

    settings = _settings(lab_settings, 25)
    url = _copy(day_db, tmp_path)
    now = _at(DAY + dt.timedelta(days=1), 7, 5)
    common = {"mailbox": "1002@default", "owner": "1002", "unit": "socialtjanst",
              "number": "+46701112233", "caller": "0701112233",
              "deferred_reason": "semester"}  # fmt: skip

    async def main() -> dict[str, Any]:
        engine = make_engine(url)
        async with engine.begin() as conn:
            await conn.execute(insert(models.Callback), [
                {**common, "callback_id": "cb:deferred:away", "call_id": "c1",
                 "left_at": _at(DAY, 10), "deadline": None, "returned_at": None,
                 "resolved_at": None},
                {**common, "callback_id": "cb:deferred:back", "call_id": "c2",
                 "left_at": _at(DAY, 10, 30), "returned_at": _at(DAY, 11),
                 "deadline": _at(DAY, 17), "resolved_at": _at(DAY, 14)},
            ])  # fmt: skip
        data = await digest_data(engine, settings, "socialtjanst", "daily", DAY, DAY, now)
        await engine.dispose()
        assert data is not None
        return data

    data = asyncio.run(main())
    mine = {c["callback_id"]: c for c in data["callbacks"] if c["callback_id"].startswith("cb:")}
    assert set(mine) == {"cb:deferred:away"}  # the one back and called back in time: not listed
    assert mine["cb:deferred:away"]["state"] == "deferred"
    assert mine["cb:deferred:away"]["deadline"] is None
    sv = digest_content(data, "sv", None)
    en = digest_content(data, "en", None)
    assert "Återuppringningar sena, försenade eller uppskjutna" in sv.text
    line = next(x for x in sv.text.splitlines() if "uppskjuten (mottagaren borta)" in x)
    assert "Erik Öberg" in line
    assert "2026-11-24 10:00" in line
    assert "uppskjuten (mottagaren borta)" in sv.html
    assert "deferred (owner away)" in en.text
    assert "deferred (owner away)" in en.html
    for content in (sv, en):
        assert "semester" not in (content.text + content.html).lower()


def test_an_out_of_hours_alert_is_never_sent_at_once(lab_settings: Settings, day_db: Path,
                                                     tmp_path: Path) -> None:  # fmt: skip
    """An alert's mail raised outside phone hours waits for the morning
    summary even when it reaches the outbox after the sender's hold of
    the round (``send_due`` alone), and a sender with no PBX time yet (a
    run that has not heard from the PBX) holds it all the same."""
    port = free_port()
    recorder = Recorder()
    controller = start(port, recorder)
    settings = _settings(lab_settings, port)
    url = _copy(day_db, tmp_path)
    late = Alert(alert_id="callback_overdue:evening:1", kind="callback_overdue", state="firing",
                 unit="bygglov", severity="warning", created_at=_at(DAY, 18),
                 text_sv="Meddelande", text_en="Message", data={}, unit_name="Bygglov",
                 created_iso="2026-11-24T18:00:00+01:00")  # fmt: skip
    where = "key = 'callback_overdue:evening:1'"

    async def main() -> None:
        engine = make_engine(url)
        await _write_alerts(engine, settings, [late])
        sender = MailSender(settings, engine, lambda: None)
        assert await sender.send_due() == 0
        assert [r["status"] for r in _rows(url, where)] == ["pending"]
        task = asyncio.create_task(sender.run())
        deadline = time.monotonic() + 10
        while _rows(url, f"{where} AND status = 'pending'") and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        sender.stop()
        await asyncio.wait_for(task, 10)
        await engine.dispose()

    try:
        asyncio.run(main())
    finally:
        controller.stop()
    assert [r["status"] for r in _rows(url, where)] == ["held"]
    assert recorder.messages == []


def test_a_mail_sent_again_after_a_lost_mark_has_the_same_message_id(
    lab_settings: Settings, day_db: Path, tmp_path: Path
) -> None:
    """The window of at-least-once: the server said 250, then the mark
    ``sent`` could not be written (here the database is locked by another
    writer past its busy timeout, as a crash there would lose it).  The
    mail goes again, with the same ``Message-ID``: a mail client shows it
    once."""
    port = free_port()
    recorder = Recorder()
    url = _copy(day_db, tmp_path)
    path = url.split(":///", 1)[1]
    locks: list[sqlite3.Connection] = []

    def lock_after_accepting(msg: EmailMessage) -> None:
        if not locks:  # the first copy only: hold the store's write lock
            conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
            conn.execute("BEGIN EXCLUSIVE")
            locks.append(conn)

    recorder.on_data = lock_after_accepting
    controller = start(port, recorder)
    settings = _settings(lab_settings, port)
    alert = Alert(alert_id="callback_overdue:mark:1", kind="callback_overdue", state="firing",
                  unit="bygglov", severity="warning", created_at=_at(DAY, 10),
                  text_sv="Meddelande", text_en="Message", data={}, unit_name="Bygglov",
                  created_iso="2026-11-24T10:00:00+01:00")  # fmt: skip

    async def main() -> None:
        engine = make_engine(url)
        await _write_alerts(engine, settings, [alert])
        sender = MailSender(settings, engine, lambda: _at(DAY, 10, 5))
        task = asyncio.create_task(sender.run())
        while not locks:
            await asyncio.sleep(0.05)
        await asyncio.sleep(6.0)  # past the busy timeout (5 s): the mark failed
        locks[0].rollback()
        locks[0].close()
        deadline = time.monotonic() + 10
        while len(recorder.messages) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        sender.stop()
        await asyncio.wait_for(task, 10)
        await engine.dispose()

    try:
        asyncio.run(main())
    finally:
        controller.stop()
    ids = [str(m["Message-ID"]) for m in recorder.messages]
    assert len(ids) == 2
    assert len(set(ids)) == 1
    rows = _rows(url, "key = 'callback_overdue:mark:1'")
    assert [r["status"] for r in rows] == ["sent"]
