"""PJSIP as a first-class citizen: its own events understood, device names
recognised whatever the technology, and a configuration that does not fit
the PBX said out loud rather than giving silently wrong answers."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from prometheus_client import CollectorRegistry

from pbxwatch.core.events import AmiEvent
from pbxwatch.core.incidents import Incident
from pbxwatch.metrics import Health, Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings, load_settings
from tests.conftest import LAB_CONFIG, LAB_PJSIP_CONFIG, PJSIP_RECORDINGS, recording_id
from tests.services import pbxwatch
from tests.sim.expect import ts

TZ = ZoneInfo("Europe/Stockholm")
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()  # phone hours


@pytest.mark.parametrize("recording", PJSIP_RECORDINGS, ids=recording_id)
def test_pjsip_events_are_no_bad_input(recording: Path) -> None:
    pipeline = Pipeline(build_engine(load_settings(LAB_PJSIP_CONFIG)))
    replay_file(recording, pipeline)
    eng = pipeline.engine
    assert eng.bad_input["unknown_event"] == 0
    assert eng.events_by_name["RTCPSent"] + eng.events_by_name["RTCPReceived"] > 0


def _contact(status: str, at: float, endpoint: str = "1001") -> AmiEvent:
    ev = AmiEvent.from_fields({"Event": "ContactStatus", "Privilege": "system,all",
                               "Timestamp": f"{at:.6f}", "URI": f"sip:{endpoint}@10.0.0.7:5060",
                               "ContactStatus": status, "AOR": endpoint,
                               "EndpointName": endpoint, "RoundtripUsec": "0"})  # fmt: skip
    assert ev is not None
    return ev


def _absences(records: list[object]) -> list[Incident]:
    return [r for r in records if isinstance(r, Incident) and r.kind == "unforwarded_absence"]


def test_an_unreachable_contact_opens_an_unforwarded_absence_and_reachable_resolves_it() -> None:
    settings = load_settings(LAB_PJSIP_CONFIG)
    engine = build_engine(settings)
    limit = settings.detection.unforwarded_absence_minutes * 60
    assert _absences(engine.process(_contact("Unreachable", MONDAY_10))) == []
    assert _absences(engine.tick(MONDAY_10 + limit - 5)) == []
    opened = _absences(engine.tick(MONDAY_10 + limit + 5))
    assert [(i.extension, i.state) for i in opened] == [("1001", "open")]
    # a replay's clock holds an event after a quiet stretch until it is
    # confirmed; settle() judges it now
    back = _absences(
        engine.process(_contact("Reachable", MONDAY_10 + limit + 60)) + engine.settle()
    )
    assert [(i.extension, i.state) for i in back] == [("1001", "resolved")]
    assert back[0].incident_id == opened[0].incident_id


@pytest.mark.parametrize("recording", PJSIP_RECORDINGS, ids=recording_id)
def test_devices_are_recognised_whatever_the_technology(recording: Path) -> None:
    """The IAX2 lab's configuration on the PJSIP recordings: the phones are
    found by their extension, and that the names never matched is counted."""
    settings = load_settings(LAB_CONFIG)
    pipeline = Pipeline(build_engine(settings))
    replay_file(recording, pipeline)
    directory = pipeline.engine.directory
    devices, _ = directory.unmatched()
    assert directory.usage.by_resource > 0
    assert len(devices) == len(directory.devices)  # IAX2/... never named by a PJSIP PBX


def _wrong_trunk(tmp_path: Path) -> Path:
    raw = yaml.safe_load(LAB_PJSIP_CONFIG.read_text(encoding="utf-8"))
    raw["inbound"]["trunk_channels"] = ["SIP/carrier-*"]
    path = tmp_path / "wrong.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def test_a_trunk_pattern_that_matches_nothing_is_said_by_replay(tmp_path: Path) -> None:
    recording = next(r for r in PJSIP_RECORDINGS if r.stem == "voicemail_callback")
    config = _wrong_trunk(tmp_path)
    proc = subprocess.run(pbxwatch("replay", str(recording), "--config", str(config), "--no-store"),
                          capture_output=True, text=True, check=True)  # fmt: skip
    line = next(x for x in proc.stderr.splitlines() if "configuration:" in x)
    assert "the trunk pattern(s) SIP/carrier-*" in line


def test_a_trunk_pattern_that_matches_nothing_is_a_metric(tmp_path: Path) -> None:
    recording = next(r for r in PJSIP_RECORDINGS if r.stem == "voicemail_callback")
    for config, unmatched in ((_wrong_trunk(tmp_path), 1.0), (LAB_PJSIP_CONFIG, 0.0)):
        settings: Settings = load_settings(config)
        metrics = Metrics(settings, CollectorRegistry())
        pipeline = Pipeline(build_engine(settings), [metrics])
        replay_file(recording, pipeline)
        metrics.refresh(pipeline.engine, pipeline.engine.now, Health(ami_up=True))
        value = metrics.registry.get_sample_value(
            "pbxwatch_config_trunks_unmatched", {"pbx": "main"}
        )
        assert value == unmatched, config


DayRecords = tuple[list[str], list[dict[str, object]], list[tuple[str, float, float]]]


def _day_records(settings: Settings, tech: str | None) -> DayRecords:
    import io
    import json

    from pbxwatch.pipeline import JsonLinesSink
    from pbxwatch.sim.day import simulate_day
    from pbxwatch.sim.live import with_tech
    from tests.sim.expect import DAY

    sim_settings = with_tech(settings, tech) if tech else settings
    day = simulate_day(sim_settings, DAY, calls_per_hour=40, seed=11)
    out = io.StringIO()
    pipeline = Pipeline(build_engine(sim_settings), [JsonLinesSink(out, TZ)])
    for _, fields in day.frames:
        pipeline.feed_fields(fields)
    pipeline.finish()
    channels = sorted({f["Channel"] for _, f in day.frames if "Channel" in f})
    pjsip_only = ("RTCP", "ContactStatus", "PeerStatus")
    channels += sorted({f["Event"] for _, f in day.frames if f["Event"].startswith(pjsip_only)})
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    return channels, records, day.unforwarded_absences


def test_a_simulated_pjsip_day_gives_the_figures_of_the_iax2_day() -> None:
    settings = load_settings(LAB_CONFIG)
    iax2_channels, iax2, iax2_absences = _day_records(settings, None)
    pjsip_channels, pjsip, pjsip_absences = _day_records(settings, "pjsip")
    assert any(c.startswith("IAX2/") for c in iax2_channels)
    assert not any(c.startswith("IAX2/") for c in pjsip_channels)
    assert any(c.startswith("PJSIP/pstn-") for c in pjsip_channels)
    assert {"RTCPSent", "RTCPReceived"} <= set(pjsip_channels)  # PJSIP's media reports
    assert not any(c.startswith("RTCP") for c in iax2_channels)
    assert {"ContactStatus", "PeerStatus"} <= set(pjsip_channels)  # and its qualify results
    assert not {"ContactStatus", "PeerStatus"} & set(iax2_channels)
    assert len(iax2) > 100
    assert pjsip == iax2  # every call, ring, incident and callback the same
    # the phones unreachable without a diversion too: planned alike, found alike
    assert pjsip_absences == iax2_absences != []
    for records in (iax2, pjsip):
        found = [(r["extension"], ts(r["started_at"]), ts(r["ended_at"])) for r in records
                 if r["type"] == "incident" and r["kind"] == "unforwarded_absence"
                 and r["state"] == "resolved"]  # fmt: skip
        assert found == iax2_absences
