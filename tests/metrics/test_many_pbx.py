"""Metrics of many PBXs in one process: every series of a PBX's calls,
queues, AMI session and stream carries its id in a ``pbx`` label (a bounded
set: the configured ids), a unit served by two PBXs has a series on each
that add up, and what all PBXs share (store, MQTT, mail) has no label."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from pbxwatch.metrics import Health, Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings, load_settings
from pbxwatch.stamp import PbxStamp
from tests.conftest import FIXTURES, LAB_CONFIG
from tests.metrics.samples import total

VOICEMAIL = FIXTURES / "voicemail_callback.ami"
MIXED = FIXTURES / "mixed_load.ami"


def _config(tmp: Path) -> Settings:
    """The lab as three PBXs: ``main`` and ``north`` serve everything,
    ``cc`` only the contact centre."""
    cfg = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    ami, inbound = cfg.pop("ami"), cfg.pop("inbound")
    cfg["pbxs"] = [{"id": "main", "ami": ami, "inbound": inbound},
                   {"id": "north", "ami": {**ami, "port": 5039}, "inbound": inbound},
                   {"id": "cc", "ami": {**ami, "port": 5040}, "inbound": inbound,
                    "units": ["kontaktcenter"]}]  # fmt: skip
    path = tmp / "c.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    return load_settings(path)


def _fed(settings: Settings) -> tuple[Metrics, dict[str, Pipeline]]:
    metrics = Metrics(settings, CollectorRegistry())
    pipelines: dict[str, Pipeline] = {}
    for view, recording in zip(settings.pbx_views(), (VOICEMAIL, MIXED, MIXED), strict=True):
        p = Pipeline(build_engine(view), [metrics.sink(view.pbx_id)], stamp=PbxStamp(view.pbx_id))
        replay_file(recording, p)
        pipelines[view.pbx_id] = p
    shared = Health(store_up=True, ami_up=True)
    metrics.refresh_all([(pbx, p.engine, p.engine.now, Health(ami_up=pbx != "north"))
                         for pbx, p in pipelines.items()], shared)  # fmt: skip
    return metrics, pipelines


def test_every_series_of_a_pbx_says_which(tmp_path: Path) -> None:
    settings = _config(tmp_path)
    metrics, pipelines = _fed(settings)
    reg = metrics.registry
    pbxs: set[str] = set()
    unlabelled: set[str] = set()
    for family in reg.collect():
        for s in family.samples:
            if "pbx" in s.labels:
                pbxs.add(s.labels["pbx"])
            elif s.name.startswith("pbxwatch_"):
                unlabelled.add(family.name)
    assert pbxs == {"main", "north", "cc"}
    # what all PBXs share, and the configuration's per-unit limit
    shared = ("pbxwatch_store", "pbxwatch_mqtt", "pbxwatch_mail", "pbxwatch_alert",
              "pbxwatch_answer_within", "pbxwatch_cluster_instances",
              "pbxwatch_cluster_failover")  # fmt: skip
    assert unlabelled == {n for n in unlabelled if n.startswith(shared)}
    assert "pbxwatch_store_up" in unlabelled

    # each PBX's calls in its own series; the same recording twice counts twice
    for pbx, p in pipelines.items():
        engine = p.engine
        events = total(reg, "pbxwatch_ami_events_total", pbx=pbx)
        assert events == sum(engine.events_by_name.values()) > 0, pbx
    assert total(reg, "pbxwatch_calls_total", pbx="north") == total(
        reg, "pbxwatch_calls_total", pbx="cc") > 0  # fmt: skip
    assert reg.get_sample_value("pbxwatch_ami_up", {"pbx": "north"}) == 0
    assert reg.get_sample_value("pbxwatch_ami_up", {"pbx": "main"}) == 1


def _labels(reg: CollectorRegistry, sample: str, label: str, pbx: str) -> set[str]:
    return {s.labels[label] for f in reg.collect() for s in f.samples
            if s.name == sample and s.labels["pbx"] == pbx}  # fmt: skip


def test_a_pbx_that_serves_part_of_the_directory_has_only_its_series(tmp_path: Path) -> None:
    """Made at start (panels show 0, not "no data"): a PBX's units and
    queues only, every unit for one that serves the whole directory."""
    settings = _config(tmp_path)
    reg = Metrics(settings, CollectorRegistry()).registry
    assert _labels(reg, "pbxwatch_missing_forwards_total", "unit", "cc") == {"kontaktcenter"}
    assert _labels(reg, "pbxwatch_queue_answered_finished_total", "queue", "cc") == {
        "kontaktcenter"}  # fmt: skip
    every = set(settings.directory.units)
    assert _labels(reg, "pbxwatch_missing_forwards_total", "unit", "main") == every
    # calls to a number of no unit it serves count as "none", as with one PBX
    fed, _ = _fed(settings)
    assert _labels(fed.registry, "pbxwatch_missing_forwards_total", "unit", "cc") <= {
        "kontaktcenter", "none"}  # fmt: skip


def test_an_unknown_pbx_has_no_sink(tmp_path: Path) -> None:
    metrics = Metrics(_config(tmp_path), CollectorRegistry())
    with pytest.raises(KeyError, match="south"):
        metrics.sink("south")
