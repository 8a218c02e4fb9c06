"""Caller numbers are personal data: with the defaults, none reaches the
log (even at debug level), the metrics or an alert; with
``privacy.pseudonymise_numbers`` none is stored in clear either, and
callbacks are still matched."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import urllib.request
from pathlib import Path
from zoneinfo import ZoneInfo

from pbxwatch.ami.codec import parse_frame
from pbxwatch.ami.server import AmiServer, load_recording
from pbxwatch.core.alerts import Alert
from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.callbacks import Callback, CallbackBook
from pbxwatch.core.numbers import normalise
from pbxwatch.core.records import CallRecord
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.privacy import mask_numbers_in, pseudonymiser
from pbxwatch.settings import Settings
from tests.conftest import FIXTURES
from tests.live import run_config, start_run, stored_calls
from tests.services import free_port

RECORDING = FIXTURES / "mixed_load.ami"
KEY = "a test key, not a secret, 32 ch"


def _numbers() -> set[str]:
    """Every citizen's number of the recording, in every form it may take."""
    truth = json.loads(RECORDING.with_suffix(".truth.json").read_text(encoding="utf-8"))
    raw = {c["caller_number"] for c in truth["calls"] if c["origin"] == "pstn"}
    raw |= {c["dialled_number"] for c in truth["calls"] if c["origin"] != "pstn"
            and c["expected"].get("direction") == "outbound"}  # fmt: skip
    forms = set()
    for n in filter(None, raw):
        e164 = normalise(n, "46") or n
        forms |= {n, e164, e164.lstrip("+")}
    return {f for f in forms if len(f) >= 8}


def _run(tmp: Path, privacy: dict[str, object]) -> tuple[str, str, Path]:
    """A real ``pbxwatch -v run`` on the recording; its log, metrics, store."""
    port, metrics_port = free_port(), free_port()
    path = run_config(tmp, port, metrics={"listen": f"127.0.0.1:{metrics_port}"},
                      privacy=privacy)  # fmt: skip
    db = tmp / "data" / "pbxwatch.db"
    log = tmp / "run.log"

    async def main() -> str:
        server = AmiServer(load_recording(RECORDING), "u", "s", close_when_done=False)
        await server.start(port=port)
        with log.open("wb") as out:
            proc = start_run(path, out, verbose=True, env={"PBXWATCH_PSEUDONYM_KEY": KEY})
            try:
                deadline = time.monotonic() + 60
                while stored_calls(db) < 200 and time.monotonic() < deadline:
                    assert proc.poll() is None, log.read_text()
                    await asyncio.sleep(0.2)
                await asyncio.sleep(4.0)  # the last calls' grace, then a metrics refresh
                url = f"http://127.0.0.1:{metrics_port}/metrics"
                body = await asyncio.to_thread(_get, url)
                return body.decode()
            finally:
                proc.send_signal(signal.SIGTERM)
                await asyncio.to_thread(proc.wait, 30)
                await server.close()

    metrics = asyncio.run(main())
    return log.read_text(encoding="utf-8"), metrics, db


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return bytes(resp.read())


def _found(numbers: set[str], text: str) -> list[str]:
    return sorted(n for n in numbers if n in text)


def test_no_caller_number_in_logs_metrics_or_alerts(tmp_path: Path) -> None:
    numbers = _numbers()
    assert len(numbers) > 50
    log, metrics, db = _run(tmp_path, {})
    with sqlite3.connect(db) as conn:
        payloads = "\n".join(r[0] for r in conn.execute("SELECT payload FROM alerts"))
        stored = "\n".join(str(r) for r in conn.execute("SELECT caller, caller_e164 FROM calls"))
    assert "ALERT" in log  # alerts go to the log here (no broker): they are checked too
    assert "*****" in log  # calls are logged, with their numbers masked
    assert _found(numbers, log) == []
    assert _found(numbers, metrics) == []
    assert _found(numbers, payloads) == []
    assert _found(numbers, stored)  # the store keeps them (until retention) by default


def test_callback_reminders_carry_no_number(lab_settings: Settings) -> None:
    """Reminders come days after a recording ends: the core is ticked on to
    every deadline, and each alert's payload (what MQTT carries, what the log
    shows without a broker) is checked."""
    pipeline = Pipeline(build_engine(lab_settings))
    alerts: list[Alert] = []
    pipeline.sinks.append(lambda r: alerts.append(r) if isinstance(r, Alert) else None)
    for stem in ("mixed_load", "voicemail_callback", "forwarded_to_voicemail"):
        for raw in load_recording(FIXTURES / f"{stem}.ami"):
            pipeline.feed_fields(parse_frame(raw.raw))
    for day in range(1, 8):
        pipeline.tick(pipeline.engine.now + 86_400.0 * day / 7)
    reminders = [a for a in alerts if a.kind.startswith("callback")]
    assert len(reminders) > 10
    text = "\n".join(json.dumps(a.payload(), ensure_ascii=False) for a in alerts)
    assert "*****" in text  # masked numbers for the unit chief to recognise
    assert _found(_numbers(), text) == []


def test_pseudonymised_store_has_no_number_in_clear(tmp_path: Path) -> None:
    numbers = _numbers()
    log, _, db = _run(tmp_path, {"pseudonymise_numbers": True})
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
        resolved = conn.execute("SELECT count(*) FROM callbacks WHERE resolved_at IS NOT NULL")
        resolved_n = resolved.fetchone()[0]
        pseudonyms = conn.execute("SELECT count(*) FROM calls WHERE caller_e164 LIKE 'h:%'")
        pseudonyms_n = pseudonyms.fetchone()[0]
    assert _found(numbers, dump) == [], log[-2000:]
    assert _found(numbers, log) == []
    assert pseudonyms_n > 100
    assert resolved_n > 0  # callbacks matched as before


def test_mask_in_text_spares_ids_and_times() -> None:
    line = ("call 1795414101.123 inbound 0701234567->extension/1001 at 09:00:05; "
            "+46701234567, 0046 70 123 45 67, 200000 rows, 0.25 s")  # fmt: skip
    masked = mask_numbers_in(line)
    assert "0701234567" not in masked
    assert "+46701234567" not in masked
    assert "0046 70 123 45 67" not in masked
    for kept in ("1795414101.123", "1001", "09:00:05", "200000 rows", "0.25 s"):
        assert kept in masked


def test_restored_pseudonymised_callback_is_matched(lab_settings: Settings) -> None:
    pseudonym = pseudonymiser(KEY.encode())
    directory = lab_settings.directory_model()
    book = CallbackBook(directory, WorkCalendar(ZoneInfo("Europe/Stockholm")), pseudonym=pseudonym)
    stored = Callback("callback:c1:1001@default", "c1", "1001@default", "1001", "socialtjanst",
                      pseudonym("0701234567"), pseudonym("+46701234567"), 1000.0,
                      90_000.0)  # fmt: skip
    book.restore(stored)
    call = CallRecord(call_id="c2", started_at=2000.0, ended_at=2060.0, direction="outbound",
                      caller="1001", caller_e164=None, dialled="00701234567",
                      target_kind="external", target="+46701234567", target_unit=None,
                      outcome="answered")  # fmt: skip
    book.on_call(call)
    assert book.callbacks[stored.callback_id].resolved_by_call == "c2"
