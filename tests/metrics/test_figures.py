"""The figures issue 19 added to the metrics, on a simulated working day fed
through the real pipeline: answered within N rings (N per unit), the queue
service level over offered calls, direct resolution per queue, phone hours;
and what the registry no longer serves (``_created``)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import ValidationError

from pbxwatch.core.engine import Record
from pbxwatch.core.records import CallRecord
from pbxwatch.metrics import Health, Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import Settings
from pbxwatch.sim.day import simulate_day
from tests.metrics.samples import total

DAY = dt.date(2026, 11, 24)  # a Tuesday


@pytest.fixture(scope="module")
def fed(lab_settings: Settings) -> tuple[Metrics, list[CallRecord], Pipeline]:
    day = simulate_day(lab_settings, DAY, calls_per_hour=60, seed=3)
    metrics = Metrics(lab_settings, CollectorRegistry())
    calls: list[CallRecord] = []

    def keep(rec: Record) -> None:
        if isinstance(rec, CallRecord):
            calls.append(rec)

    pipeline = Pipeline(build_engine(lab_settings), [metrics, keep])
    for _, fields in day.frames:
        pipeline.feed_fields(fields)
    pipeline.finish()
    metrics.refresh(pipeline.engine, day.end, Health())
    return metrics, calls, pipeline


def test_answered_within_the_units_rings(
    lab_settings: Settings, fed: tuple[Metrics, list[CallRecord], Pipeline]
) -> None:
    metrics, calls, _ = fed
    reg = metrics.registry
    limits = {k: u.answer_within_rings for k, u in lab_settings.directory.units.items()}
    assert limits["kontaktcenter"] == 4
    assert limits["bygglov"] == 3
    within: Counter[str] = Counter()
    for c in calls:
        if c.direction == "inbound" and c.outcome == "answered" and c.rings_before_answer:
            within[c.target_unit or "none"] += c.rings_before_answer <= limits[c.target_unit or ""]
    for unit, n in limits.items():
        assert reg.get_sample_value("pbxwatch_answer_within_rings_limit", {"unit": unit}) == n
        got = total(reg, "pbxwatch_answered_within_rings_total", unit=unit)
        answered = total(reg, "pbxwatch_calls_total", unit=unit, direction="inbound",
                         outcome="answered")  # fmt: skip
        assert got == within[unit], unit
        assert got <= answered
    assert (
        0
        < total(reg, "pbxwatch_answered_within_rings_total")
        < total(reg, "pbxwatch_calls_total", direction="inbound", outcome="answered")
    )


def test_direct_resolution_per_queue(fed: tuple[Metrics, list[CallRecord], Pipeline]) -> None:
    metrics, calls, _ = fed
    answered: Counter[str] = Counter()
    direct: Counter[str] = Counter()
    for c in calls:
        if c.direction == "inbound" and c.outcome == "answered" and c.queues:
            answered[c.queues[0]] += 1
            direct[c.queues[0]] += c.transferred_to is None
    reg = metrics.registry
    labels = {"pbx": "main", "queue": "kontaktcenter", "unit": "kontaktcenter"}
    got = reg.get_sample_value("pbxwatch_queue_answered_finished_total", labels)
    got_direct = reg.get_sample_value("pbxwatch_queue_answered_without_transfer_total", labels)
    assert (got, got_direct) == (answered["kontaktcenter"], direct["kontaktcenter"])
    assert 0 < direct["kontaktcenter"] < answered["kontaktcenter"]  # the day has transfers


def test_service_level_counters_are_over_offered(
    fed: tuple[Metrics, list[CallRecord], Pipeline],
) -> None:
    metrics, _, pipeline = fed
    reg = metrics.registry
    for name, q in pipeline.engine.queues.queues.items():
        labels = {"pbx": "main", "queue": name,
                  "unit": pipeline.engine.directory.queues[name].unit}  # fmt: skip
        offered = reg.get_sample_value("pbxwatch_queue_offered_total", labels)
        assert offered == q.offered
        assert reg.get_sample_value("pbxwatch_queue_short_abandoned_total", labels) == (
            q.short_abandoned
        )
        within = reg.get_sample_value("pbxwatch_queue_answered_within_sl_total", labels)
        assert within is not None
        assert offered is not None
        assert within <= offered - q.short_abandoned
    cc = pipeline.engine.queues.queues["kontaktcenter"]
    # the day's abandons count against the service level: over answered calls it would be higher
    over_offered = cc.answered_within_sl / (cc.offered - cc.short_abandoned)
    assert cc.abandoned > cc.short_abandoned
    assert over_offered < cc.answered_within_sl / cc.answered


def test_phone_hours_follow_the_calendar(lab_settings: Settings) -> None:
    tz = ZoneInfo(lab_settings.timezone)
    engine = build_engine(lab_settings)

    def served(when: dt.datetime) -> dict[str, float | None]:
        metrics = Metrics(lab_settings, CollectorRegistry())
        metrics.refresh(engine, when.timestamp(), Health())
        value = metrics.registry.get_sample_value
        return {u: value("pbxwatch_phone_hours", {"pbx": "main", "unit": u})
                for u in lab_settings.directory.units}  # fmt: skip

    units = lab_settings.directory.units
    assert served(dt.datetime(2026, 11, 24, 10, 0, tzinfo=tz)) == dict.fromkeys(units, 1)
    assert served(dt.datetime(2026, 11, 24, 17, 30, tzinfo=tz)) == dict.fromkeys(units, 0)
    assert served(dt.datetime(2026, 11, 28, 10, 0, tzinfo=tz)) == dict.fromkeys(units, 0)  # Sat
    assert served(dt.datetime(2026, 12, 24, 10, 0, tzinfo=tz)) == dict.fromkeys(
        units, 0
    )  # julafton


def test_no_created_series_and_process_metrics(
    fed: tuple[Metrics, list[CallRecord], Pipeline],
) -> None:
    text = generate_latest(fed[0].registry).decode()
    assert "_created" not in text
    assert "\nprocess_resident_memory_bytes " in text
    assert "\nprocess_start_time_seconds " in text


@pytest.mark.parametrize("rings", [0, 21, "three"])
def test_answer_within_rings_is_validated(lab_settings: Settings, rings: object) -> None:
    raw = lab_settings.model_dump(mode="json")
    raw["directory"]["units"]["bygglov"]["answer_within_rings"] = rings
    with pytest.raises(ValidationError, match="answer_within_rings"):
        Settings.model_validate(raw)


@pytest.mark.parametrize(("target", "value"), [("abandoned_share", 1.5),
                                               ("answer_seconds_p90", 0)])  # fmt: skip
def test_targets_are_validated(lab_settings: Settings, target: str, value: float) -> None:
    raw = lab_settings.model_dump(mode="json")
    raw["targets"][target] = value
    with pytest.raises(ValidationError, match=target):
        Settings.model_validate(raw)
