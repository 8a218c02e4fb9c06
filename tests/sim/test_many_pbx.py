"""One ``pbxwatch run`` following three simulated PBXs (each its own AMI
server on a loopback port, its own seed): every call of each simulator's
own record is reported once, with that PBX's id, and stored with it;
nothing of one PBX is counted for another."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from collections import Counter
from pathlib import Path

import yaml

from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.browser.console import metrics_text
from tests.live import logged_in, reported, run_config, start_run
from tests.services import free_port
from tests.sim.expect import DAY
from tests.sim.test_live import _reported, _totals

PBXS = {"main": 5, "north": 6, "south": 7}  # id: the simulator's seed


def _config(tmp: Path, ports: dict[str, int], metrics: int) -> Path:
    path = run_config(tmp, ports["main"], metrics={"listen": f"127.0.0.1:{metrics}"})
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    ami, inbound = config.pop("ami"), config.pop("inbound")
    config["pbxs"] = [{"id": pbx, "ami": {**ami, "port": port}, "inbound": inbound}
                      for pbx, port in ports.items()]  # fmt: skip
    path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    return path


def test_three_pbxs_in_one_run(lab_settings: Settings, tmp_path: Path) -> None:
    ports = {pbx: free_port() for pbx in PBXS}
    metrics = free_port()
    config = _config(tmp_path, ports, metrics)
    out, err = tmp_path / "run.jsonl", tmp_path / "run.log"
    speed = 3600.0

    scraped: list[str] = []

    async def main() -> dict[str, SimulatedPbx]:
        sims = {}
        for pbx, seed in PBXS.items():
            plan = SimPlan(DAY, days=1, calls_per_hour=40, speed=speed, seed=seed, open_hour=9,
                           close_hour=10)  # fmt: skip
            sims[pbx] = SimulatedPbx(lab_settings, plan, "u", "s")
            await sims[pbx].start("127.0.0.1", ports[pbx])
        with out.open("wb") as so, err.open("wb") as se:
            proc = start_run(config, so, se, json=True, pbx_speed=speed)
            try:
                for sim in sims.values():
                    await logged_in(sim, proc, err)
                await asyncio.sleep(1.0)  # the state reads after login
                await asyncio.gather(*(sim.run() for sim in sims.values()))
                expected = sum(len(day.calls) for sim in sims.values() for day in sim.days)
                for _ in range(150):
                    if reported(out) >= expected:
                        break
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.5)  # the metrics' state refresh, once a second
                scraped.append(metrics_text(f"http://127.0.0.1:{metrics}/metrics"))
            finally:
                proc.send_signal(2)
                await asyncio.to_thread(proc.wait, 30)
                for sim in sims.values():
                    await sim.close()
        assert proc.returncode == 0, err.read_text()
        return sims

    sims = asyncio.run(main())
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["pbx"] for r in records} == set(PBXS)
    calls = [r for r in records if r["type"] == "call"]
    assert len({c["call_id"] for c in calls}) == len(calls)  # each once, ids unique
    for pbx, sim in sims.items():
        [day] = sim.days
        mine = [r for r in records if r["pbx"] == pbx]
        assert len(day.calls) >= 20, pbx
        assert _reported(mine) == _totals(day.calls), pbx
        prefixed = {c["call_id"].startswith(f"{pbx}:") for c in mine if c["type"] == "call"}
        assert prefixed == {pbx != "main"}, pbx
    with sqlite3.connect(tmp_path / "data" / "pbxwatch.db") as conn:
        stored = dict(conn.execute("SELECT pbx, count(*) FROM calls GROUP BY pbx").fetchall())
        rows = Counter(pbx for (pbx,) in conn.execute("SELECT pbx FROM rings"))
        sources = dict(conn.execute("SELECT source, pbx FROM stream_positions").fetchall())
        checkpoints = dict(conn.execute("SELECT source, pbx FROM checkpoints").fetchall())
        crossed = conn.execute(
            "SELECT count(*) FROM rings r JOIN calls c ON c.call_id = r.call_id "
            "WHERE c.pbx != r.pbx"
        ).fetchone()[0]
    assert stored == {pbx: len(sim.days[0].calls) for pbx, sim in sims.items()}
    assert set(rows) == set(PBXS)
    assert crossed == 0
    expected_sources = {f"ami:127.0.0.1:{ports['main']}": "main", "pbx:north": "north",
                        "pbx:south": "south"}  # fmt: skip
    assert sources == expected_sources
    assert checkpoints == expected_sources
    # the metrics: each PBX's calls in its own series, its AMI session up
    [text] = scraped
    for pbx, sim in sims.items():
        calls = sum(v for name, labels, v in _samples(text, "pbxwatch_calls_total")
                    if labels.get("pbx") == pbx)  # fmt: skip
        assert calls == len(sim.days[0].calls), pbx
        assert [v for _, labels, v in _samples(text, "pbxwatch_ami_up")
                if labels.get("pbx") == pbx] == [1.0], pbx  # fmt: skip
    labelled = {labels.get("pbx") for _, labels, _ in _samples(text, "pbxwatch_")}
    assert labelled == {*PBXS, None}  # None: what they share (store, MQTT, mail)
    _restart_restores_each(config, tmp_path)


def _samples(text: str, prefix: str) -> list[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of the exposition's samples whose name starts so."""
    out = []
    for line in text.splitlines():
        if line.startswith(prefix):
            head, _, value = line.rpartition(" ")
            name, _, rest = head.partition("{")
            labels = dict(part.split("=", 1) for part in rest.rstrip("}").split(",") if part)
            out.append((name, {k: v.strip('"') for k, v in labels.items()}, float(value)))
    return out


def _restart_restores_each(config: Path, tmp: Path) -> None:
    """Started again (the PBXs away): each PBX's own checkpoint comes back."""
    log = tmp / "again.log"

    async def main() -> int:
        with log.open("wb") as se:
            proc = start_run(config, subprocess.DEVNULL, se)
            for _ in range(200):
                if log.read_text().count("checkpoint restored") >= len(PBXS) or proc.poll():
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            proc.send_signal(2)
            return await asyncio.to_thread(proc.wait, 30)

    assert asyncio.run(main()) == 0, log.read_text()
    assert log.read_text().count("checkpoint restored") == len(PBXS), log.read_text()


def test_a_refused_login_of_one_pbx_stops_the_run_naming_it(
    lab_settings: Settings, tmp_path: Path
) -> None:
    """Exit 2 (a configuration error) with the PBX's key, the other PBX's
    session ended too."""
    ports = {"main": free_port(), "north": free_port()}
    config = _config(tmp_path, ports, free_port())
    cfg = yaml.safe_load(config.read_text(encoding="utf-8"))
    cfg["pbxs"][1]["ami"]["secret_env"] = "WRONG_SECRET"
    config.write_text(yaml.safe_dump(cfg, allow_unicode=True), "utf-8")
    err = tmp_path / "run.log"

    async def main() -> int:
        sims = [SimulatedPbx(lab_settings, SimPlan(DAY, days=1), "u", "s") for _ in ports]
        for sim, port in zip(sims, ports.values(), strict=True):
            await sim.start("127.0.0.1", port)
        try:
            with err.open("wb") as se:
                proc = start_run(config, subprocess.DEVNULL, se, env={"WRONG_SECRET": "x"})
                return await asyncio.to_thread(proc.wait, 60)
        finally:
            for sim in sims:
                await sim.close()

    assert asyncio.run(main()) == 2, err.read_text()
    assert "pbxs.1.ami" in err.read_text()
