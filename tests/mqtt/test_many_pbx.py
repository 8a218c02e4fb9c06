"""The MQTT tree of one run following two PBXs, on a real Mosquitto.

``main`` keeps the topics of a single PBX (``status/pbx``,
``queues/<queue>/state``); ``north``'s are ``status/pbx/north`` and
``queues/north:<queue>/state``, as its ids are ``north:...``.  Each PBX's
availability is its own: ``north`` going away leaves ``main`` online.
Every message fits its schema, and Home Assistant's discovery has each
PBX's queue sensors, available with their PBX.
"""

from __future__ import annotations

import asyncio
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from pbxwatch.mqtt.discovery import discovery_configs
from pbxwatch.settings import Settings, load_settings
from pbxwatch.sim.live import SimPlan, SimulatedPbx
from tests.live import as_many_pbxs, logged_in, run_config, start_run
from tests.mqtt.test_mqtt_tree import TOPICS, Recorder, Seen, _check_schemas, _until, retained
from tests.services import Mosquitto, free_port
from tests.sim.expect import DAY

pytestmark = pytest.mark.chaos

SPEED = 600
PBXS = {"main": 5, "north": 6}  # id: the simulator's seed


def _config(tmp: Path, ports: dict[str, int], mqtt: dict[str, object]) -> Path:
    return as_many_pbxs(run_config(tmp, ports["main"], mqtt=mqtt), ports)


def _states(rec: Recorder, topic: str) -> list[str]:
    return [m.json()["state"] for m in rec.on(topic)]


def test_each_pbx_has_its_own_topics_and_availability(
    lab_settings: Settings, tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path)
    broker.start()
    ports = {pbx: free_port() for pbx in PBXS}
    mqtt = {"enabled": True, "port": broker.port, "reconnect_initial_seconds": 0.2,
            "reconnect_max_seconds": 1.0, "queue_state_seconds": 0.3,
            "discovery": {"enabled": True}}  # fmt: skip
    config = _config(tmp_path, ports, mqtt)
    settings = load_settings(config)
    log = tmp_path / "run.log"
    north = TOPICS.pbx_status("north")

    async def main() -> tuple[Recorder, dict[str, Seen]]:
        rec = Recorder(broker.port)
        recording = asyncio.create_task(rec.run())
        await asyncio.wait_for(rec.ready.wait(), 10)
        sims = {}
        for pbx, seed in PBXS.items():
            plan = SimPlan(DAY, days=1, calls_per_hour=120, speed=SPEED, seed=seed,
                           open_hour=9, close_hour=9.5)  # fmt: skip
            sims[pbx] = SimulatedPbx(lab_settings, plan, "u", "s")
            await sims[pbx].start("127.0.0.1", ports[pbx])
        with log.open("wb") as out:
            proc = start_run(config, out, pbx_speed=SPEED)
            try:
                for sim in sims.values():
                    await logged_in(sim, proc, log)
                await _until(lambda: "online" in _states(rec, TOPICS.pbx)
                             and "online" in _states(rec, north), "both online", rec)  # fmt: skip
                playing = [asyncio.create_task(s.run()) for s in sims.values()]
                await asyncio.sleep(2.0)
                # north's AMI goes away: north offline, main still online
                sims["north"].pause()
                await sims["north"].server.close()
                await _until(lambda: _states(rec, north)[-1] == "offline", "north offline", rec)
                await asyncio.sleep(1.0)
                assert _states(rec, TOPICS.pbx)[-1] == "online"
                await sims["north"].server.start("127.0.0.1", ports["north"])
                await _until(lambda: _states(rec, north)[-1] == "online", "north back", rec)
                sims["north"].resume()
                for sim in sims.values():
                    sim.plan = replace(sim.plan, speed=1e9)
                await asyncio.gather(*playing)
                await asyncio.sleep(1.5)  # the last state published
            finally:
                proc.send_signal(signal.SIGINT)
                await asyncio.to_thread(proc.wait, 30)
                for sim in sims.values():
                    await sim.close()
        assert proc.returncode == 0, log.read_text()
        await asyncio.sleep(0.5)
        recording.cancel()
        return rec, await retained(broker.port)

    try:
        rec, tree = asyncio.run(main())
    finally:
        broker.stop()

    _check_schemas(settings, rec.seen)
    _check_schemas(settings, list(tree.values()))
    # main's availability never went down with north's
    main_states = _states(rec, TOPICS.pbx)
    first = main_states.index("online")
    assert main_states[first:] == ["online", "offline"], main_states  # offline: pbxwatch stopped
    north_states = _states(rec, north)
    assert north_states.count("online") >= 2, north_states
    # each PBX's queues on their own topics
    for q in settings.directory.queues:
        assert tree[TOPICS.queue(q)].json()["queue"] == q
        assert tree[TOPICS.queue(q, "north")].json()["queue"] == q
    assert TOPICS.queue("kontaktcenter", "north").endswith("/queues/north:kontaktcenter/state")
    # discovery: each PBX's queue sensors, available with their own PBX
    configs = discovery_configs(settings)
    assert set(configs) <= set(tree)
    for topic, cfg in configs.items():
        assert tree[topic].json() == cfg
        assert cfg["state_topic"] in tree, cfg["state_topic"]
        if "/queues/north:" in cfg["state_topic"]:
            assert [a["topic"] for a in cfg["availability"]][-1] == north
    assert any("/queues/north:" in c["state_topic"] for c in configs.values())
