"""The store writer never commits an alert without its mail rows, nor mail
rows without their alert: they travel in one batch (one transaction) when
the batch fills between them, and when the spill file is read back in
chunks whose end falls between them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pbxwatch.core.alerts import Alert
from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.mail import MailRows
from pbxwatch.settings import MailSettings, Settings
from pbxwatch.store.db import make_engine, upgrade
from pbxwatch.store.writer import StoreWriter

EXTRA = "reader@exempelkommun.se"


def _settings(lab: Settings) -> Settings:
    mail = MailSettings.model_validate({
        "enabled": True, "security": "none", "from": "pbxwatch@exempelkommun.se",
        "units": {"socialtjanst": {"recipients": [{"email": EXTRA, "lang": "en"}]}},
    })  # fmt: skip
    return lab.model_copy(update={"mail": mail})


def _interval(i: int) -> DiversionInterval:
    return DiversionInterval("1001", "socialtjanst", "presence", "away", "", "Lunch",
                             1000.0 + i, 1001.0 + i)  # fmt: skip


def _alert(i: int) -> Alert:
    return Alert(alert_id=f"callback_overdue:batch:{i}", kind="callback_overdue",
                 state="firing", unit="socialtjanst", severity="warning",
                 created_at=2000.0 + i, text_sv=f"Meddelande {i}", text_en=f"Message {i}",
                 unit_name="Socialtjänst", created_iso="2026-11-24T10:00:00+01:00")  # fmt: skip


def _whole(db: Path) -> tuple[int, int]:
    """(alerts, mail rows) committed; fails if an alert lacks one of its two
    mail rows or a mail row its alert."""
    with sqlite3.connect(db) as conn:
        alerts = {r[0] for r in conn.execute("SELECT alert_id FROM alerts")}
        mails = [r[0] for r in conn.execute("SELECT alert_id FROM mail_outbox")]
    for a in alerts:
        assert mails.count(a) == 2, (a, "committed without its mail rows")
    assert set(mails) <= alerts, (set(mails) - alerts, "mail rows committed without the alert")
    return len(alerts), len(mails)


def _submit_pattern(writer: StoreWriter, rounds: int) -> int:
    """Intervals and alerts mixed so that batches of 4 rows and alert groups
    of 3 (the alert row, its chief's and EXTRA's mail rows) cut across."""
    alerts = 0
    for r in range(rounds):
        for k, is_alert in enumerate((False, False, True, False, True, True, False)):
            i = 100 + r * 10 + k
            if is_alert:
                writer.submit(_alert(i))
                alerts += 1
            else:
                writer.submit(_interval(i))
    return alerts


async def test_a_full_batch_takes_the_mail_rows_of_its_last_alert(
    lab_settings: Settings, tmp_path: Path
) -> None:
    db = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")
    await upgrade(engine)
    writer = StoreWriter(engine, max_batch=3)
    writer.mail_rows = MailRows(_settings(lab_settings))
    writer.submit(_interval(0))
    writer.submit(_interval(1))
    writer.submit(_alert(2))  # row 3 of a batch of 3: its two mail rows are rows 4 and 5
    writer.submit(_interval(3))
    await writer._write_once()
    assert _whole(db) == (1, 2)
    assert writer.backlog == 1  # the interval after them waits for the next batch
    assert writer.stats.rows_written == 5
    alerts = _submit_pattern(writer, 6)
    while writer.backlog:
        await writer._write_once()
        _whole(db)  # after every batch
    await engine.dispose()
    assert _whole(db) == (1 + alerts, 2 * (1 + alerts))


async def test_the_spill_file_is_read_back_without_cutting_an_alert_from_its_mail(
    lab_settings: Settings, tmp_path: Path
) -> None:
    db = tmp_path / "db.sqlite"
    engine = make_engine(f"sqlite+aiosqlite:///{db}")  # refuses at first: no tables yet
    spill = tmp_path / "spill.jsonl"
    writer = StoreWriter(engine, capacity=5, max_batch=4, spill_path=spill)
    writer.mail_rows = MailRows(_settings(lab_settings))
    alerts = _submit_pattern(writer, 8)
    await writer._write_once()  # refused: the overflow goes to the spill file
    assert writer.stats.write_errors == 1
    assert spill.exists()
    await upgrade(engine)
    batches = 0
    while writer.backlog:
        await writer._write_once()
        batches += 1
        _whole(db)  # after every batch, memory and spill file alike
    await engine.dispose()
    assert not spill.exists()
    assert batches > 10
    assert _whole(db) == (alerts, 2 * alerts)
