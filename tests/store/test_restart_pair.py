"""Issue #18: the restart recording replayed as the README says, with the
real client over TCP, on SQLite and on PostgreSQL.

1. ``pbxwatch replay restart_gap.part1.ami --cut`` into the store: the
   calls of part 1, and a checkpoint of the seven still up at the cut;
2. ``pbxwatch serve-recording restart_gap.part2.ami --transcript ...``;
3. ``pbxwatch run`` with the same store: it restores the checkpoint, logs
   in, reads the state from the transcript and follows part 2;
4. the calls of both, and every callback in the store, against the truth
   of the whole session (tests/restart.py says what that asks)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.store import models
from pbxwatch.store.rows import callback_of_row
from tests.conftest import FIXTURES
from tests.live import RUN_ENV, run_config, start_run, until_reported
from tests.restart import check_restart
from tests.services import free_port, pbxwatch

TZ = ZoneInfo("Europe/Stockholm")
PART1, PART2 = FIXTURES / "restart_gap.part1.ami", FIXTURES / "restart_gap.part2.ami"
TRANSCRIPT = FIXTURES / "restart_gap.part2.transcript.json"
CUT = json.loads((FIXTURES / "restart_gap.cut.json").read_text("utf-8"))
TRUTH = json.loads((FIXTURES / "restart_gap.truth.json").read_text("utf-8"))


def _config(tmp: Path, port: int, url: str) -> Path:
    """The lab, its phone hours until 23:00 (the session ran 17:07-17:11)."""
    path = run_config(tmp, port, storage={"url": url, "data_dir": str(tmp / "data")})
    config = yaml.safe_load(path.read_text("utf-8"))
    for unit in config["directory"]["units"].values():
        if "phone_hours" in unit:
            unit["phone_hours"]["close"] = "23:00"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


async def _callbacks(store: AsyncEngine) -> list[dict[str, Any]]:
    async with store.connect() as conn:
        rows = (await conn.execute(select(models.Callback))).all()
    return [callback_of_row(r).to_json(TZ, TRUTH["recording_stopped_t"]) for r in rows]


async def test_the_restart_recording_through_the_real_client(
    store: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    port = free_port()
    config = _config(tmp_path, port, db_url)
    env = {**os.environ, **RUN_ENV}
    replay = pbxwatch("replay", str(PART1), "--config", str(config), "--cut", "--json")
    part1 = subprocess.run(replay, capture_output=True, env=env, timeout=120, check=False)
    assert part1.returncode == 0, part1.stderr.decode()
    (tmp_path / "part1.jsonl").write_bytes(part1.stdout)

    serve = pbxwatch("serve-recording", str(PART2), "--transcript", str(TRANSCRIPT), "--port",
                     str(port), "--username", "u", "--secret-env", "SIM_SECRET")  # fmt: skip
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    out, log = tmp_path / "part2.jsonl", tmp_path / "run.log"
    try:
        await asyncio.sleep(1.0)
        with out.open("wb") as so, log.open("wb") as se:
            run = start_run(config, so, se, json=True)
            try:
                part1_calls = sum(1 for r in _lines(tmp_path / "part1.jsonl")
                                  if r["type"] == "call")  # fmt: skip
                want = len(TRUTH["calls"]) - len(TRUTH["restart"]["calls_entirely_in_downtime"])
                await until_reported(out, want - part1_calls, timeout=60)
            finally:
                run.send_signal(signal.SIGTERM)
                await asyncio.to_thread(run.wait, 30)
        assert run.returncode == 0, log.read_text()
    finally:
        server.terminate()
        server.wait(10)

    text = log.read_text()
    assert "checkpoint restored: 7 calls in progress" in text, text
    records = [r for r in _lines(tmp_path / "part1.jsonl") + _lines(out)
               if r["type"] != "callback"]  # fmt: skip
    records += await _callbacks(store)
    assert check_restart(TRUTH, records) == []

    [gap] = [r for r in _lines(out) if r["type"] == "ami_gap"]
    start, end = (dt_of(gap["started_at"]), dt_of(gap["ended_at"]))
    assert CUT["part1_closed_at"] - 2 < start <= CUT["part1_closed_at"], gap
    assert CUT["part2_connected_at"] <= end < CUT["part2_connected_at"] + 1, gap
    assert gap["reconciled"]["calls_still_up"] == 2
    assert gap["reconciled"]["calls_begun_unseen"] == 4
    async with store.connect() as conn:
        rows = (await conn.execute(select(models.AmiGap))).all()
    assert len(rows) == 1

    # the report of that day says pbxwatch was blind for 20 s of it
    report = ["report", "--config", str(config), "--unit", "socialtjanst", "--from",
              "2026-12-01", "--to", "2026-12-01"]  # fmt: skip
    done = subprocess.run(pbxwatch(*report, "--format", "json"), capture_output=True,
                          text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    [blind] = json.loads(done.stdout)["gaps"]
    assert blind["reason"] == "pbxwatch was not running (restart)"
    assert 19 < blind["seconds"] < 23
    table = subprocess.run(pbxwatch(*report), capture_output=True, text=True, env=env,
                           timeout=60, check=False).stdout  # fmt: skip
    assert "pbxwatch was blind in this period" in table


def dt_of(iso: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(iso).timestamp()
