"""``pbxwatch report`` against a generated day: every figure of every unit
is counted by hand from the simulator's record of the day and the config
(``tests.sim.expect``), then compared with what the report computes from
the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.metrics import Health, Metrics
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.replay import replay_into_store
from pbxwatch.report import build
from pbxwatch.settings import Settings
from pbxwatch.sim.day import SimDay, recording_bytes, simulate_day
from pbxwatch.store.session import writer_for
from tests.conftest import LAB_CONFIG
from tests.metrics.samples import total
from tests.services import pbxwatch
from tests.sim.expect import (
    DAY,
    INBOUND_KINDS,
    NOT_REACHED_KINDS,
    callback_states,
    callbacks_made,
    listened_at,
    target_unit,
)
from tests.store.conftest import with_store

UNITS = ["socialtjanst", "bygglov", "it-support", "kontaktcenter"]
STATES = ("pending", "called_back", "overdue", "called_back_late", "deferred", "exempt",
          "no_number")  # fmt: skip


@pytest.fixture(scope="module")
def day(lab_settings: Settings) -> SimDay:
    return simulate_day(lab_settings, DAY, calls_per_hour=40, seed=11)


def _p90(values: list[float]) -> float | None:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1] if ordered else None


def _med(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _share(a: int, b: int) -> float | None:
    return a / b if b else None


def expected(settings: Settings, day: SimDay, unit: str, now: float) -> dict[str, Any]:
    """Every figure, by hand."""
    d = settings.directory
    inbound = [c for c in day.calls if c.kind in INBOUND_KINDS]
    mine = [c for c in inbound if target_unit(settings, c) == unit]
    answered = [c for c in mine if c.outcome == "answered"]
    waits = [c.answered_at - c.start for c in answered if c.answered_at is not None]
    ring_period = settings.calls.ring_period_seconds
    rings = [float(w // ring_period + 1) for w in waits]
    abandoned = [c for c in mine if c.outcome == "abandoned"]
    short = [c for c in abandoned if c.end - c.start < settings.calls.short_abandon_seconds]
    not_reached = [c for c in mine if c.kind in NOT_REACHED_KINDS]
    missing = sum(c.missing_forward for c in mine)
    rung = [e for c in day.calls for e in c.unanswered_rings]

    states = callback_states(settings, day, now)
    messages = [i for i in states if d.people[day.calls[i].target].unit == unit]
    by_state = dict.fromkeys(STATES, 0)
    for i in messages:
        by_state[states[i]] += 1
    made = callbacks_made(day)
    to_callback = [made[i] - day.calls[i].end for i in messages
                   if states[i] in ("called_back", "called_back_late")]  # fmt: skip
    heard = [t - day.calls[i].end for i in messages
             if (t := listened_at(day, day.calls[i])) is not None]  # fmt: skip

    cc_queues = {n for n, q in d.queues.items() if q.kind == "contact_centre" and q.unit == unit}
    agents = {m for n in cc_queues for m in d.queues[n].members}
    cc_answered = [c for c in inbound if c.answered_by in agents]
    cc_direct = [c for c in cc_answered if c.transferred_to is None]
    due = by_state["called_back"] + by_state["called_back_late"] + by_state["overdue"]
    return {
        "offered": len(mine),
        "answered": len(answered),
        "availability": _share(len(answered), len(mine)),
        "answer_seconds_median": _med(waits),
        "answer_seconds_p90": _p90(waits),
        "rings_before_answer_median": _med(rings),
        "rings_before_answer_p90": _p90(rings),
        "abandoned": len(abandoned) - len(short),
        "short_abandoned": len(short),
        "abandoned_share": _share(len(abandoned) - len(short), len(mine)),
        "voicemail_calls": sum(c.outcome == "voicemail" for c in mine),
        "unanswered_rings": sum(d.people[e].unit == unit for e in rung),
        "calls_to_person_not_reached": len(not_reached),
        "diverted": sum(c.diverted for c in mine),
        "missing_forwards": missing,
        "missing_forward_share": _share(missing, len(not_reached)),
        "voicemail_messages": len(messages),
        "callbacks": by_state,
        "callbacks_on_time_share": _share(by_state["called_back"], due),
        "callback_seconds_median": _med(to_callback),
        "listened": len(heard),
        "listen_seconds_median": _med(heard),
        "unstaffed_seconds": sum(e - s for q, s, e in day.unstaffed if d.queues[q].unit == unit),
        "contact_centre_answered": len(cc_answered),
        "contact_centre_direct": len(cc_direct),
        "direct_resolution": round(len(cc_direct) / len(cc_answered), 4) if cc_answered else None,
    }


@dataclass
class Loaded:
    settings: Settings
    metrics: Metrics  # fed by the same replay


@pytest.fixture
async def loaded(
    store: AsyncEngine, db_url: str, lab_settings: Settings, day: SimDay, tmp_path: Path
) -> Loaded:
    settings = with_store(lab_settings, db_url, tmp_path)
    recording = tmp_path / "day.ami"
    recording.write_bytes(recording_bytes(day.frames))
    metrics = Metrics(settings, CollectorRegistry())
    pipeline = Pipeline(build_engine(settings), [metrics])
    writer = writer_for(settings, store, "replay:day.ami")
    pipeline.sinks.append(writer.submit)
    await replay_into_store(recording, pipeline, writer)
    metrics.refresh(pipeline.engine, day.end, Health())
    return Loaded(settings, metrics)


async def test_every_figure_of_every_unit(loaded: Loaded, store: AsyncEngine, day: SimDay) -> None:
    now, settings = day.end, loaded.settings
    for unit in UNITS:
        report = await build(store, settings, unit, DAY, DAY, now)
        got = report.figures.to_json()
        want = expected(settings, day, unit, now)
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, abs=0.01), (unit, key)
            else:
                assert got[key] == value, (unit, key)
    # the day exercises what the report is for
    total = await build(store, settings, "socialtjanst", DAY, DAY, now)
    assert total.figures.missing_forwards > 0
    assert total.figures.diverted > 0
    bygglov = await build(store, settings, "bygglov", DAY, DAY, now)
    assert bygglov.figures.unstaffed_seconds == 900
    cc = await build(store, settings, "kontaktcenter", DAY, DAY, now)
    assert cc.figures.contact_centre_answered > 10


async def test_metrics_agree_with_the_report(
    loaded: Loaded, store: AsyncEngine, day: SimDay
) -> None:
    """The report from the database and the counters of the same replay."""
    reg = loaded.metrics.registry

    for unit in UNITS:
        f = (await build(store, loaded.settings, unit, DAY, DAY, day.end)).figures
        u = {"unit": unit}
        inbound = {**u, "direction": "inbound"}
        assert total(reg, "pbxwatch_calls_total", **inbound) == f.offered, unit
        assert total(reg, "pbxwatch_calls_total", **inbound, outcome="answered") == f.answered
        abandoned = total(reg, "pbxwatch_calls_total", **inbound, outcome="abandoned")
        assert abandoned - total(reg, "pbxwatch_short_abandons_total", **u) == f.abandoned
        assert total(reg, "pbxwatch_answer_seconds_count", **u) == f.answered
        assert total(reg, "pbxwatch_unanswered_rings_total", **u) == f.unanswered_rings
        assert total(reg, "pbxwatch_missing_forwards_total", **u) == f.missing_forwards
        assert total(reg, "pbxwatch_calls_diverted_total", **u) == f.diverted
        assert total(reg, "pbxwatch_person_calls_not_reached_total", **u) == (
            f.calls_to_person_not_reached
        )
        assert total(reg, "pbxwatch_voicemail_messages_total", **u) == f.voicemail_messages
        assert (
            total(reg, "pbxwatch_callbacks_resolved_total", **u, result="on_time")
            == (f.callbacks["called_back"])
        )
        assert (
            total(reg, "pbxwatch_callbacks_resolved_total", **u, result="late")
            == (f.callbacks["called_back_late"])
        )
        assert total(reg, "pbxwatch_callbacks_overdue", **u) == f.callbacks["overdue"]
        assert total(reg, "pbxwatch_callbacks_pending", **u) == f.callbacks["pending"]
        assert total(reg, "pbxwatch_listen_seconds_count", **u) == f.listened
        assert total(reg, "pbxwatch_queue_unstaffed_seconds_total", **u) == pytest.approx(
            f.unstaffed_seconds, abs=1.0
        )


async def test_a_period_without_the_day_is_empty(loaded: Loaded, store: AsyncEngine) -> None:
    report = await build(store, loaded.settings, "socialtjanst", DAY + dt.timedelta(days=1),
                         DAY + dt.timedelta(days=30), 2e9)  # fmt: skip
    f = report.figures
    assert (f.offered, f.voicemail_messages, f.unstaffed_seconds) == (0, 0, 0.0)
    assert f.availability is None


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pbxwatch("report", "--config", str(config), *args),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


async def test_cli_formats_agree(loaded: Loaded, day: SimDay, tmp_path: Path) -> None:
    raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    raw["storage"] = {"url": loaded.settings.storage.url, "data_dir": str(tmp_path)}
    config = tmp_path / "pbxwatch.yaml"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    args = ["--unit", "socialtjanst", "--from", DAY.isoformat(), "--to", DAY.isoformat(),
            "--now", dt.datetime.fromtimestamp(day.end, day.tz).isoformat()]  # fmt: skip
    js = _cli(config, *args, "--format", "json")
    assert js.returncode == 0, js.stderr
    figures = json.loads(js.stdout)["figures"]
    rows = {r["figure"]: r["value"] for r in csv.DictReader(io.StringIO(
        _cli(config, *args, "--format", "csv").stdout))}  # fmt: skip
    assert int(rows["offered"]) == figures["offered"]
    assert int(rows["callbacks_overdue"]) == figures["callbacks"]["overdue"]
    assert float(rows["availability"]) == pytest.approx(figures["availability"])
    table = _cli(config, *args).stdout
    assert "Availability (tillgänglighet)" in table
    assert "Missing forward share" in table
    bad = _cli(config, "--unit", "nope", "--from", "2026-01-01", "--to", "2026-12-31")
    assert bad.returncode == 2
    assert "unknown unit 'nope'" in bad.stderr
