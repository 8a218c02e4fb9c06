"""Issue #22: a hot standby that loses nothing.

Two ``pbxwatch run`` instances (``a`` and ``b``) share ten simulated PBXs
(the project's simulator, ten AMI servers on loopback) through a real
PostgreSQL, publish to a real Mosquitto and mail through a real SMTP
server (aiosmtpd).  ``b`` reaches the database through a proxy the test
can cut.  During the simulated day the owner of half the PBXs is killed
with SIGKILL three times (``b``, ``a``, ``b``), each restarted as a new
process after its PBXs have moved, once ``b``'s database connection is
cut for three leases, and ``a`` is stopped (SIGINT: it leaves, giving its
leases back) and started again, as for an upgrade.  After each, the test waits until the PBXs are
shared five and five again (the restarted instance is given its share
once it is ready).

Compared with the simulators' own record of every call:

* every simulated call is stored once, with the outcome, answerer,
  diversion and transfer the simulator says, complete and not across a
  gap (the standby saw it all), and no call is stored that was not made;
* no AMI gap is recorded: somebody was watching every PBX all the time;
* no alert is published twice (alert id and state), none is stored
  unpublished, and every missing forward alerted is one the simulator
  made;
* no mail is delivered twice (Message-ID), and every mail marked sent was
  delivered.

The failover times (from the SIGKILL, the cut or the stop until every PBX
of that owner is the other's) are printed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pbxwatch.settings import Settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests import pg
from tests.live import as_many_pbxs, run_config, start_run
from tests.mail.smtp import Recorder as MailRecorder
from tests.mail.smtp import start as start_smtp
from tests.mqtt.test_mqtt_tree import Recorder
from tests.proxy import CuttableProxy
from tests.services import Mosquitto, free_port, pbxwatch
from tests.sim.expect import DAY

pytestmark = pytest.mark.chaos

SPEED = 60.0
LEASE = 2.0
PBXS = [f"p{i}" for i in range(10)]
#: the simulated day: 45 PBX minutes, 45 s here
OPEN, CLOSE = 9.0, 9.75
#: wall seconds into the day of each fault (later if the last is not mended yet)
FAULTS = ((4.0, "b", "kill"), (12.0, "a", "kill"), (20.0, "b", "kill"), (28.0, "b", "cut"),
          (36.0, "a", "stop"))  # fmt: skip


def _plan(i: int) -> SimPlan:
    return SimPlan(DAY, days=1, calls_per_hour=50, speed=SPEED, seed=220 + i,
                   open_hour=OPEN, close_hour=CLOSE, lead_in_seconds=30.0)  # fmt: skip


def _config(tmp: Path, name: str, url: str, ports: dict[str, int], mqtt: dict[str, Any],
            mail: dict[str, Any]) -> Path:  # fmt: skip
    where = tmp / name
    cluster = {"enabled": True, "instance": name, "lease_seconds": LEASE}
    path = run_config(where, 0, mqtt=mqtt, mail=mail, cluster=cluster,
                      storage={"url": url, "data_dir": str(where / "data")})  # fmt: skip
    return as_many_pbxs(path, ports)


async def _owners(db: AsyncEngine) -> dict[str, str]:
    """PBX -> the instance whose lease on it runs now."""
    async with db.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT pbx, holder FROM pbx_leases WHERE expires_at >= :now AND pbx NOT LIKE '@%'"),
            {"now": time.time()})).all()  # fmt: skip
    return {r.pbx: r.holder.split("/", 1)[0] for r in rows}


async def _until(what: str, check: Callable[[], Any], timeout: float,
                 procs: dict[str, subprocess.Popen[bytes]],
                 logs: dict[str, Path]) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    while not await check():
        for name, proc in procs.items():
            assert proc.poll() is None, (what, name, logs[name].read_text()[-4000:])
        assert time.monotonic() < deadline, (what, {n: p.read_text()[-3000:]
                                                    for n, p in logs.items()})  # fmt: skip
        await asyncio.sleep(0.05)


def test_two_instances_ten_pbxs_kills_a_cut_and_a_stop(lab_settings: Settings, tmp_path: Path
                                                       ) -> None:  # fmt: skip
    server = pg.PostgresServer()
    broker = Mosquitto(tmp_path)
    broker.start()
    mails = MailRecorder()
    smtp_port = free_port()
    smtp = start_smtp(smtp_port, mails)
    ports = {pbx: free_port() for pbx in PBXS}
    mqtt = {"enabled": True, "port": broker.port, "reconnect_initial_seconds": 0.2,
            "reconnect_max_seconds": 1.0}  # fmt: skip
    mail = {"enabled": True, "host": "127.0.0.1", "port": smtp_port, "security": "none",
            "from": "pbxwatch@exempelkommun.se", "retry_initial_seconds": 0.3,
            "retry_max_seconds": 1.5, "poll_seconds": 0.2}  # fmt: skip
    proxy = CuttableProxy(server.port)
    via_proxy = server.url.replace(f":{server.port}/", f":{proxy.port}/")
    configs = {"a": _config(tmp_path, "a", server.url, ports, mqtt, mail),
               "b": _config(tmp_path, "b", via_proxy, ports, mqtt, mail)}  # fmt: skip
    subprocess.run(pbxwatch("db", "upgrade", "--config", str(configs["a"])), check=True,
                   capture_output=True)  # fmt: skip
    failovers: list[tuple[str, float]] = []

    async def main() -> list[SimulatedPbx]:
        db = create_async_engine(server.url)
        await proxy.start()
        rec = Recorder(broker.port)
        recording = asyncio.create_task(rec.run())
        await asyncio.wait_for(rec.ready.wait(), 10)
        sims = [SimulatedPbx(lab_settings, _plan(i), "u", "s") for i in range(len(PBXS))]
        for sim, pbx in zip(sims, PBXS, strict=True):
            await sim.start("127.0.0.1", ports[pbx])
        procs: dict[str, subprocess.Popen[bytes]] = {}
        logs: dict[str, Path] = {}
        starts = Counter[str]()
        playing: list[asyncio.Task[None]] = []

        def launch(name: str) -> None:
            starts[name] += 1
            logs[name] = tmp_path / f"{name}{starts[name]}.log"
            procs[name] = start_run(configs[name], logs[name].open("wb"), pbx_speed=SPEED)

        async def logged_in(count: int) -> bool:
            return all(sim.server.listeners >= count for sim in sims)

        async def shared(split: dict[str, int]) -> bool:
            return Counter((await _owners(db)).values()) == Counter(split)

        async def fault(name: str, how: str) -> None:
            other = "a" if name == "b" else "b"
            began = time.monotonic()
            if how in ("kill", "stop"):
                procs[name].send_signal(signal.SIGKILL if how == "kill" else signal.SIGINT)
                assert await asyncio.to_thread(procs[name].wait, 20) in (0, -signal.SIGKILL)
                alive = {other: procs[other]}
            else:
                proxy.cut()
                alive = dict(procs)
            await _until(f"{other} owns all after {how} of {name}",
                         lambda: shared({other: len(PBXS)}), 20, alive, logs)  # fmt: skip
            failovers.append((f"{how} {name}", time.monotonic() - began))
            if how != "cut":
                launch(name)
            else:
                await asyncio.sleep(max(0.0, 3 * LEASE - (time.monotonic() - began)))
                proxy.restore()
            await _until(f"shared again after {how} of {name}",
                         lambda: shared({"a": 5, "b": 5}), 60, procs, logs)  # fmt: skip

        try:
            launch("a")
            await _until("a logged in", lambda: logged_in(1), 20, procs, logs)
            await _until("a owns all", lambda: shared({"a": len(PBXS)}), 20, procs, logs)
            launch("b")
            await _until("b logged in", lambda: logged_in(2), 20, procs, logs)
            await _until("shared", lambda: shared({"a": 5, "b": 5}), 30, procs, logs)
            playing += [asyncio.create_task(sim.run()) for sim in sims]
            marks["day began"] = time.monotonic()
            day = time.monotonic() + 30.0 / SPEED  # the lead-in before opening
            for at, name, how in FAULTS:
                await asyncio.sleep(max(0.0, day + at - time.monotonic()))
                await fault(name, how)
            # the callbacks of the day go on for hours: it ends for the test
            # five PBX minutes after closing, and the calls ended by then count
            end = min(c.start for c in sims[0].days[0].calls) + (CLOSE - OPEN + 5 / 60) * 3600
            # by the wall clock: after closing, a simulator's clock moves only
            # with its next frame, which may be a callback hours later
            await asyncio.sleep(marks["day began"] + (end - sims[0].days[0].start) / SPEED
                                - time.monotonic())  # fmt: skip
            ended.append(end)
            total = sum(1 for sim in sims for c in sim.days[0].calls if c.end < end - 60)

            async def stored() -> bool:
                async with db.connect() as conn:
                    n = await conn.scalar(text("SELECT count(*) FROM calls WHERE ended_at < :t"),
                                          {"t": end - 60})  # fmt: skip
                    return int(n) >= total

            marks["day ended"] = time.monotonic()
            await _until("every call stored", stored, 30, procs, logs)
            marks["stored"] = time.monotonic()
            await asyncio.sleep(2.0)  # the last alerts and mails go out
            for proc in procs.values():
                proc.send_signal(signal.SIGINT)
            for name, proc in procs.items():
                assert await asyncio.to_thread(proc.wait, 30) == 0, logs[name].read_text()[-3000:]
            marks["stopped"] = time.monotonic()
            messages.extend(rec.seen)
            rows.update(await _rows(db))
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    proc.kill()
            recording.cancel()
            for task in playing:
                task.cancel()
            for sim in sims:
                await sim.close()
            await proxy.close()
            await db.dispose()
        return sims

    messages: list[Any] = []
    ended: list[float] = []  # PBX time the test's day ended
    marks: dict[str, float] = {"start": time.monotonic()}
    rows: dict[str, list[dict[str, Any]]] = {}
    try:
        sims = asyncio.run(main())
    finally:
        smtp.stop()
        broker.stop()
        server.stop()
    _check(sims, ended[0], rows, messages, mails)
    print("; ".join(f"{k} at {v - marks['start']:.1f} s" for k, v in marks.items()))
    print("failovers: " + ", ".join(f"{what} {s:.2f} s" for what, s in failovers))
    assert all(s < 10.0 for _, s in failovers), failovers


async def _rows(db: AsyncEngine) -> dict[str, list[dict[str, Any]]]:
    queries = {"calls": "SELECT * FROM calls", "gaps": "SELECT * FROM ami_gaps",
               "alerts": "SELECT * FROM alerts", "mail": "SELECT * FROM mail_outbox"}  # fmt: skip
    async with db.connect() as conn:
        return {k: [dict(r._mapping) for r in (await conn.execute(text(q))).all()]
                for k, q in queries.items()}  # fmt: skip


def _check(sims: list[SimulatedPbx], end: float, rows: dict[str, list[dict[str, Any]]],
           messages: list[Any], mails: MailRecorder) -> None:  # fmt: skip
    calls = rows["calls"]
    by_pbx: dict[str, list[dict[str, Any]]] = {}
    for c in calls:
        by_pbx.setdefault(c["pbx"], []).append(c)
    made = 0
    missing_forward: set[str] = set()
    for pbx, sim in zip(PBXS, sims, strict=True):
        stored = by_pbx.get(pbx, [])
        simulated = [c for c in sim.days[0].calls if c.start < end]
        made += len(simulated)
        for call in simulated:
            if call.end >= end - 60:  # may still be up, or its last events on the way
                continue
            found = [c for c in stored if c["caller"] == call.caller
                     and abs(c["started_at"] - call.start) < 1.0]  # fmt: skip
            assert len(found) == 1, (pbx, call, found)
            got = found[0]
            assert got["complete"], (pbx, call, got)
            assert not got["across_gap"], (pbx, call, got)
            assert (got["outcome"], bool(got["diverted"]), got["transferred_to"]) == (
                call.outcome, call.diverted, call.transferred_to), (pbx, call, got)  # fmt: skip
            if call.kind != "outbound":
                assert got["answered_by"] == call.answered_by, (pbx, call, got)
            if call.missing_forward:
                missing_forward.add(got["call_id"])
        made_up = [c for c in stored if c["started_at"] < end - 60
                   and not any(c["caller"] == s.caller and abs(c["started_at"] - s.start) < 1.0
                               for s in simulated)]  # fmt: skip
        assert made_up == [], (pbx, made_up)
    assert rows["gaps"] == []

    published = [json.loads(m.payload) for m in messages if m.topic.endswith("/alerts")]
    twice = [k for k, n in Counter((a["alert_id"], a["state"]) for a in published).items()
             if n > 1]  # fmt: skip
    assert twice == [], twice
    unsent = [a["alert_id"] for a in rows["alerts"] if a["sent_at"] is None and not a["withheld"]]
    assert unsent == [], unsent
    assert {a["alert_id"] for a in published} == {a["alert_id"] for a in rows["alerts"]
                                                  if not a["withheld"]}  # fmt: skip
    for alert in published:
        assert "unsure" not in json.dumps(alert), alert
        if alert["kind"] == "missing_forward":
            for miss in alert["data"]["misses"]:
                assert miss["call_id"] in missing_forward, alert

    ids = Counter(str(m["Message-ID"]) for m in mails.messages)
    assert [k for k, n in ids.items() if n > 1] == []
    sent = [m for m in rows["mail"] if m["status"] == "sent"]
    assert len(sent) == len(mails.messages), ([m["mail_id"] for m in sent], list(ids))
    print(
        f"{made} calls simulated on {len(PBXS)} PBXs, {len(calls)} stored; "
        f"{len(published)} alerts published, {len(mails.messages)} mails delivered"
    )
