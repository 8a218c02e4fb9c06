"""Metrics after replaying the shared recordings (a fresh registry each
time): every family with its type and labels, values against the truth
files, no personal data in labels, and agreement with the report."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from pbxwatch.core.engine import IGNORED_EVENTS, KNOWN_EVENTS
from pbxwatch.metrics import Health, Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_file
from pbxwatch.settings import Settings
from tests.conftest import EVERY_RECORDING, RECORDINGS, recording_id, settings_for
from tests.metrics.samples import total
from tests.truth import expected, load_truth

IDS = [recording_id(r) for r in EVERY_RECORDING]
UK = ("pbx", "unit", "target_kind")
PU = ("pbx", "unit")
PQU = ("pbx", "queue", "unit")
MAIN = {"pbx": "main"}
#: every family: (type, label names)
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "pbxwatch_calls": ("counter", (*UK, "direction", "outcome")),
    "pbxwatch_short_abandons": ("counter", UK),
    "pbxwatch_answer_seconds": ("histogram", UK),
    "pbxwatch_rings_before_answer": ("histogram", UK),
    "pbxwatch_person_calls_not_reached": ("counter", PU),
    "pbxwatch_calls_diverted": ("counter", PU),
    "pbxwatch_missing_forwards": ("counter", PU),
    "pbxwatch_unanswered_rings": ("counter", PU),
    "pbxwatch_unforwarded_absences": ("counter", PU),
    "pbxwatch_voicemail_messages": ("counter", PU),
    "pbxwatch_callbacks_resolved": ("counter", (*PU, "result")),
    "pbxwatch_callback_seconds": ("histogram", PU),
    "pbxwatch_listen_seconds": ("histogram", PU),
    "pbxwatch_callback_reminders": ("counter", (*PU, "kind")),
    "pbxwatch_callbacks_pending": ("gauge", PU),
    "pbxwatch_callbacks_overdue": ("gauge", PU),
    "pbxwatch_queue_callers_waiting": ("gauge", PQU),
    "pbxwatch_queue_longest_wait_seconds": ("gauge", PQU),
    "pbxwatch_queue_members": ("gauge", (*PQU, "state")),
    "pbxwatch_queue_unstaffed": ("gauge", PQU),
    "pbxwatch_queue_offered": ("counter", PQU),
    "pbxwatch_queue_answered": ("counter", PQU),
    "pbxwatch_queue_answered_within_sl": ("counter", PQU),
    "pbxwatch_queue_abandoned": ("counter", PQU),
    "pbxwatch_queue_short_abandoned": ("counter", PQU),
    "pbxwatch_queue_answered_finished": ("counter", PQU),
    "pbxwatch_queue_answered_without_transfer": ("counter", PQU),
    "pbxwatch_queue_unstaffed_seconds": ("counter", PQU),
    "pbxwatch_answered_within_rings": ("counter", UK),
    "pbxwatch_answer_within_rings_limit": ("gauge", ("unit",)),
    "pbxwatch_phone_hours": ("gauge", PU),
    "pbxwatch_ami_up": ("gauge", ("pbx",)),
    "pbxwatch_ami_reconnects": ("counter", ("pbx",)),
    "pbxwatch_ami_gaps": ("counter", ("pbx",)),
    "pbxwatch_ami_gap_seconds": ("counter", ("pbx",)),
    "pbxwatch_ami_events": ("counter", ("pbx", "event")),
    "pbxwatch_bad_input": ("counter", ("pbx", "kind")),
    "pbxwatch_event_errors": ("counter", ("pbx",)),
    "pbxwatch_sink_errors": ("counter", ("pbx",)),
    "pbxwatch_last_event_timestamp_seconds": ("gauge", ("pbx",)),
    "pbxwatch_event_lag_seconds": ("gauge", ("pbx",)),
    "pbxwatch_clock_offset_seconds": ("gauge", ("pbx",)),
    "pbxwatch_clock_steps": ("counter", ("pbx",)),
    "pbxwatch_checkpoints": ("counter", ("pbx",)),
    "pbxwatch_checkpoint_bytes": ("gauge", ("pbx",)),
    "pbxwatch_checkpoint_seconds": ("gauge", ("pbx",)),
    "pbxwatch_config_devices_unmatched": ("gauge", ("pbx",)),
    "pbxwatch_config_trunks_unmatched": ("gauge", ("pbx",)),
    "pbxwatch_devices_by_resource": ("counter", ("pbx",)),
    "pbxwatch_mail_backlog": ("gauge", ()),
    "pbxwatch_mail_failed": ("counter", ()),
    "pbxwatch_mail_sent": ("counter", ()),
    "pbxwatch_mail_smtp_up": ("gauge", ()),
    "pbxwatch_pbx_owned": ("gauge", ("pbx",)),
    "pbxwatch_cluster_takeovers": ("counter", ("pbx",)),
    "pbxwatch_cluster_instances": ("gauge", ()),
    "pbxwatch_cluster_failover_seconds": ("gauge", ()),
    "pbxwatch_calls_in_progress": ("gauge", ("pbx",)),
    "pbxwatch_store_up": ("gauge", ()),
    "pbxwatch_store_connect_failures": ("counter", ()),
    "pbxwatch_mqtt_up": ("gauge", ()),
    "pbxwatch_mqtt_connect_failures": ("counter", ()),
    "pbxwatch_store_backlog_rows": ("gauge", ()),
    "pbxwatch_store_rows_written": ("counter", ()),
    "pbxwatch_store_write_errors": ("counter", ()),
    "pbxwatch_store_spilled_rows": ("counter", ()),
    "pbxwatch_store_batch_seconds": ("gauge", ()),
    "pbxwatch_alert_outbox_backlog": ("gauge", ()),
    "pbxwatch_alerts_published": ("counter", ()),
    # prometheus-client's process and platform collectors
    "process_virtual_memory_bytes": ("gauge", ()),
    "process_resident_memory_bytes": ("gauge", ()),
    "process_start_time_seconds": ("gauge", ()),
    "process_cpu_seconds": ("counter", ()),
    "process_open_fds": ("gauge", ()),
    "process_max_fds": ("gauge", ()),
    "python_info": ("gauge", ("version", "implementation", "major", "minor", "patchlevel")),
}


def replayed(settings: Settings, recording: Path) -> tuple[Metrics, Pipeline]:
    metrics = Metrics(settings, CollectorRegistry())
    pipeline = Pipeline(build_engine(settings), [metrics])
    replay_file(recording, pipeline)
    metrics.refresh(pipeline.engine, pipeline.engine.now, Health(ami_up=True))
    return metrics, pipeline


def test_every_family_with_its_type_and_labels(lab_settings: Settings) -> None:
    metrics, _ = replayed(lab_settings, RECORDINGS[0])
    found: dict[str, tuple[str, tuple[str, ...]]] = {}
    for family in metrics.registry.collect():
        names = {tuple(k for k in s.labels if k != "le") for s in family.samples}
        assert len(names) == 1, family.name
        found[family.name] = (family.type, names.pop())
    assert found == FAMILIES


def test_series_exist_before_anything_happens(lab_settings: Settings) -> None:
    """Panels show 0, not "no data", on a quiet day."""
    metrics = Metrics(lab_settings, CollectorRegistry())
    metrics.refresh(build_engine(lab_settings), 0.0, Health())
    reg = metrics.registry
    for unit in lab_settings.directory.units:
        labels = {"pbx": "main", "unit": unit, "target_kind": "extension", "direction": "inbound",
                  "outcome": "answered"}  # fmt: skip
        assert reg.get_sample_value("pbxwatch_calls_total", labels) == 0
        assert (
            reg.get_sample_value("pbxwatch_callbacks_overdue", {"pbx": "main", "unit": unit}) == 0
        )
        assert (
            reg.get_sample_value("pbxwatch_missing_forwards_total", {"pbx": "main", "unit": unit})
            == 0
        )
    for queue, q in lab_settings.directory.queues.items():
        labels = {"pbx": "main", "queue": queue, "unit": q.unit}
        assert reg.get_sample_value("pbxwatch_queue_unstaffed", labels) == 0
    assert reg.get_sample_value("pbxwatch_ami_events_total", {"pbx": "main", "event": "other"}) == 0


@pytest.mark.parametrize("recording", EVERY_RECORDING, ids=IDS)
def test_values_against_the_truth(recording: Path) -> None:
    lab_settings = settings_for(recording)  # the PJSIP lab's for its recordings
    truth = load_truth(recording)
    metrics, _ = replayed(lab_settings, recording)
    inbound = [t for t in truth["calls"] if expected(t)["direction"] == "inbound"]
    by_kind_outcome = Counter((expected(t)["target_kind"], expected(t)["outcome"]) for t in inbound)
    for (kind, outcome), n in by_kind_outcome.items():
        got = total(metrics.registry, "pbxwatch_calls_total", direction="inbound", target_kind=kind,
                    outcome=outcome)  # fmt: skip
        assert got == n, (kind, outcome)
    assert total(metrics.registry, "pbxwatch_calls_total", direction="inbound") == len(inbound)
    resolved = [t.get("resolved") or {} for t in truth["calls"]]
    assert total(metrics.registry, "pbxwatch_unanswered_rings_total") == sum(
        len(r.get("unanswered_rings", [])) for r in resolved
    )
    assert total(metrics.registry, "pbxwatch_missing_forwards_total") == sum(
        bool(t["expected"].get("missed_without_absence_diversion")) for t in truth["calls"]
    )
    assert total(metrics.registry, "pbxwatch_calls_diverted_total") == sum(
        expected(t).get("diverted", False) for t in inbound
    )
    assert total(metrics.registry, "pbxwatch_voicemail_messages_total") == sum(
        bool(r.get("voicemail_message")) for r in resolved
    )
    answered = [t for t in inbound if "answer_seconds" in expected(t)]
    assert total(metrics.registry, "pbxwatch_answer_seconds_count") == len(answered)
    assert total(metrics.registry, "pbxwatch_answer_seconds_sum") == pytest.approx(
        sum(expected(t)["answer_seconds"] for t in answered), abs=len(answered) * 1.0
    )
    assert total(metrics.registry, "pbxwatch_rings_before_answer_count") == len(answered)


@pytest.mark.parametrize("recording", EVERY_RECORDING, ids=IDS)
def test_no_personal_data_in_labels(recording: Path) -> None:
    lab_settings = settings_for(recording)  # the PJSIP lab's for its recordings
    metrics, _ = replayed(lab_settings, recording)
    names = {p.name.lower() for p in lab_settings.directory.people.values()}
    allowed: dict[str, set[str]] = {
        "unit": {*lab_settings.directory.units, "none"},
        "queue": set(lab_settings.directory.queues),
        "event": {*KNOWN_EVENTS, *IGNORED_EVENTS, "other"},
    }
    for family in metrics.registry.collect():
        for s in family.samples:
            for key, value in s.labels.items():
                assert not re.search(r"\d{4,}", value) or key == "le", (s.name, key, value)
                assert value.lower() not in names
                if key in allowed:
                    assert value in allowed[key], (s.name, key, value)


def test_events_by_name_and_health(lab_settings: Settings) -> None:
    recording = next(r for r in RECORDINGS if r.stem == "mixed_load")
    metrics, pipeline = replayed(lab_settings, recording)
    text = recording.read_bytes()
    newchannels = len(re.findall(rb"^Event: Newchannel\r?$", text, re.MULTILINE))
    reg = metrics.registry
    assert (
        reg.get_sample_value("pbxwatch_ami_events_total", {"pbx": "main", "event": "Newchannel"})
        == newchannels
    )
    assert reg.get_sample_value("pbxwatch_ami_up", MAIN) == 1
    assert reg.get_sample_value("pbxwatch_last_event_timestamp_seconds", MAIN) == 0  # not live
    assert reg.get_sample_value("pbxwatch_calls_in_progress", MAIN) == pipeline.engine.tracked_calls


def test_queue_state_matches_the_engine_snapshot(lab_settings: Settings) -> None:
    recording = next(r for r in RECORDINGS if r.stem == "status_actions")
    metrics, pipeline = replayed(lab_settings, recording)
    engine = pipeline.engine
    reg = metrics.registry
    for snap in engine.snapshot(engine.calendar.tz, engine.now):
        if snap["type"] != "queue" or snap["queue"] not in lab_settings.directory.queues:
            continue
        labels = {"pbx": "main", "queue": snap["queue"], "unit": snap["unit"]}
        assert reg.get_sample_value("pbxwatch_queue_callers_waiting", labels) == snap["waiting"]
        for state in ("available", "paused", "in_call"):
            got = reg.get_sample_value("pbxwatch_queue_members", {**labels, "state": state})
            assert got == snap["members"][state], state
        assert reg.get_sample_value("pbxwatch_queue_unstaffed", labels) == int(snap["unstaffed"])
        assert reg.get_sample_value("pbxwatch_queue_offered_total", labels) == snap["offered"]
        assert reg.get_sample_value("pbxwatch_queue_abandoned_total", labels) == snap["abandoned"]
