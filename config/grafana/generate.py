"""Generate pbxwatch's Grafana dashboards (JSON) from the panel lists below.

    .venv/bin/python config/grafana/generate.py                 # the lab config's targets
    .venv/bin/python config/grafana/generate.py --config my.yaml --out /tmp/boards

The JSON is committed so Grafana can provision it as it is; the test suite
checks it is what this script makes (from ``config/lab.yaml``), that it
type-checks against Grafana 11's schema (``@grafana/schema`` with ``tsc
--strict``), and that every query runs on a real Prometheus scraping a
simulated day.  Edit the lists here, not the JSON.

Thresholds come from the configuration's ``targets`` (the municipality's
goals), so a site with other goals regenerates the boards with its own
config.  Every panel has one unit on its axis and a description.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # run as a script from a checkout

from pbxwatch.settings import Settings, TargetSettings, load_settings  # noqa: E402

OUT = Path(__file__).with_name("dashboards")
LAB = ROOT / "config" / "lab.yaml"
DS = {"type": "prometheus", "uid": "${datasource}"}

P = 'pbx=~"$pbx"'  # the PBXs shown (all by default); a unit may span several
U = f'unit=~"$unit",{P}'
IN = f'direction="inbound",{U}'
Q = f'queue=~"$queue",{P}'
RANGE = "$__range"
RATE = "$__rate_interval"

#: a threshold: the figure should be at least (``min``) or at most (``max``) the value
Goal = tuple[Literal["min", "max"], float]


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    kind: Literal["stat", "timeseries", "table"]
    unit: str  # Grafana unit id of the values (and of the one axis)
    targets: list[tuple[str, str]]  # (legend or table column, PromQL)
    width: int = 12
    goal: Goal | None = None
    columns: dict[str, tuple[str, Goal | None]] = field(default_factory=dict)  # table: unit, goal


def _ratio(part: str, whole: str) -> str:
    return f"({part}) / clamp_min({whole}, 1)"


def _inc(selector: str, by: str = "", window: str = RANGE) -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group} (increase({selector}[{window}]))"


def _quantile(q: float, metric: str, selector: str, by: str = "", window: str = RATE) -> str:
    extra = f", {by}" if by else ""
    return (
        f"histogram_quantile({q}, sum by (le{extra}) "
        f"(increase({metric}_bucket{{{selector}}}[{window}])))"
    )


# ------------------------------------------------------------- the figures


def availability(by: str, window: str) -> str:
    return _ratio(_inc(f'pbxwatch_calls_total{{{IN},outcome="answered"}}', by, window),
                  _inc(f"pbxwatch_calls_total{{{IN}}}", by, window))  # fmt: skip


def abandoned_share(by: str, window: str) -> str:
    abandoned = (_inc(f'pbxwatch_calls_total{{{IN},outcome="abandoned"}}', by, window) + " - "
                 + _inc(f"pbxwatch_short_abandons_total{{{U}}}", by, window))  # fmt: skip
    return _ratio(abandoned, _inc(f"pbxwatch_calls_total{{{IN}}}", by, window))


def within_rings_share(by: str, window: str) -> str:
    return _ratio(_inc(f"pbxwatch_answered_within_rings_total{{{U}}}", by, window),
                  _inc(f'pbxwatch_calls_total{{{IN},outcome="answered"}}', by, window))  # fmt: skip


def missing_forward_share(by: str, window: str) -> str:
    return _ratio(_inc(f"pbxwatch_missing_forwards_total{{{U}}}", by, window),
                  _inc(f"pbxwatch_person_calls_not_reached_total{{{U}}}", by, window))  # fmt: skip


def callbacks_on_time(by: str, window: str) -> str:
    """Of the callbacks made in the period, the share on time (a period count
    over a period count: the callbacks still open are the gauge beside it)."""
    return _ratio(_inc(f'pbxwatch_callbacks_resolved_total{{{U},result="on_time"}}', by, window),
                  _inc(f"pbxwatch_callbacks_resolved_total{{{U}}}", by, window))  # fmt: skip


def service_level(selector: str, by: str, window: str) -> str:
    """Queue callers answered within the service level / offered, short
    abandons left out of the offered (the usual contact-centre convention)."""
    short = _inc(f"pbxwatch_queue_short_abandoned_total{{{selector}}}", by, window)
    offered = _inc(f"pbxwatch_queue_offered_total{{{selector}}}", by, window) + " - " + short
    return _ratio(_inc(f"pbxwatch_queue_answered_within_sl_total{{{selector}}}", by, window),
                  f"({offered})")  # fmt: skip


def direct_resolution(selector: str, by: str, window: str) -> str:
    return _ratio(
        _inc(f"pbxwatch_queue_answered_without_transfer_total{{{selector}}}", by, window),
        _inc(f"pbxwatch_queue_answered_finished_total{{{selector}}}", by, window),
    )


# ------------------------------------------------------------- the boards


def service(t: TargetSettings) -> list[Panel]:
    per_unit: dict[str, tuple[str, Goal | None]] = {
        "Offered": ("short", None),
        "Availability": ("percentunit", ("min", t.availability)),
        "Answer time p90": ("s", ("max", t.answer_seconds_p90)),
        "Within N rings": ("percentunit", ("min", t.answered_within_rings_share)),
        "Abandoned": ("percentunit", ("max", t.abandoned_share)),
        "Missing forward": ("percentunit", ("max", t.missing_forward_share)),
        "Callbacks on time": ("percentunit", ("min", t.callbacks_on_time_share)),
        "Callbacks overdue now": ("short", ("max", 0.5)),
        "Direct resolution (queues)": ("percentunit", ("min", t.direct_resolution)),
        "Unstaffed minutes": ("m", ("max", 0.5)),
    }
    exprs = [
        _inc(f"pbxwatch_calls_total{{{IN}}}", "unit"),
        availability("unit", RANGE),
        _quantile(0.9, "pbxwatch_answer_seconds", U, "unit", RANGE),
        within_rings_share("unit", RANGE),
        abandoned_share("unit", RANGE),
        missing_forward_share("unit", RANGE),
        callbacks_on_time("unit", RANGE),
        f"sum by (unit) (pbxwatch_callbacks_overdue{{{U}}})",
        direct_resolution(U, "unit", RANGE),
        _inc(f"pbxwatch_queue_unstaffed_seconds_total{{{U}}}", "unit") + " / 60",
    ]
    return [
        Panel("Guideline figures per unit", "One row per unit over the dashboard's time range "
              "(shares of inbound calls to the unit's numbers; short abandons apart). 'Within N "
              "rings' uses each unit's answer_within_rings; 'Callbacks on time' is of the "
              "callbacks made in the range, 'overdue now' the callbacks still open past their "
              "deadline. Colours: the targets in the configuration.", "table", "short",
              list(zip(per_unit, exprs, strict=True)), 24, columns=per_unit),
        Panel("Availability by unit", "Answered / offered inbound calls over the last hour, "
              "per unit; the line is the target.", "timeseries", "percentunit",
              [("{{unit}}", availability("unit", "1h"))], goal=("min", t.availability)),
        Panel("Abandoned share by unit", "Callers who hung up before anyone answered (short "
              "abandons apart) / offered, over the last hour; the line is the target.",
              "timeseries", "percentunit", [("{{unit}}", abandoned_share("unit", "1h"))],
              goal=("max", t.abandoned_share)),
        Panel("Answered within N rings by unit", "Answered within the unit's "
              "answer_within_rings rings / answered, over the last hour.", "timeseries",
              "percentunit", [("{{unit}}", within_rings_share("unit", "1h"))],
              goal=("min", t.answered_within_rings_share)),
        Panel("Missing forward share by unit", "Calls that rang a person unanswered and went "
              "to voicemail or the contact centre with no diversion set / calls to a person "
              "that ended there, over the last hour.", "timeseries", "percentunit",
              [("{{unit}}", missing_forward_share("unit", "1h"))],
              goal=("max", t.missing_forward_share)),
        Panel("Answer time (median, 90th percentile)", "From the call entering the PBX to a "
              "person answering, selected units together; the line is the p90 target.",
              "timeseries", "s",
              [("median", _quantile(0.5, "pbxwatch_answer_seconds", U)),
               ("p90", _quantile(0.9, "pbxwatch_answer_seconds", U))],
              goal=("max", t.answer_seconds_p90)),
        Panel("Rings before answer (median, 90th percentile)", "floor(answer time / ring "
              "period) + 1, selected units together.", "timeseries", "short",
              [("median", _quantile(0.5, "pbxwatch_rings_before_answer", U)),
               ("p90", _quantile(0.9, "pbxwatch_rings_before_answer", U))]),
        Panel("Inbound calls by outcome", "Finished inbound calls per interval, selected units "
              "together.", "timeseries", "short",
              [("{{outcome}}", _inc(f"pbxwatch_calls_total{{{IN}}}", "outcome", RATE))]),
        Panel("Unanswered rings, missing forwards, diverted calls", "Per interval and unit: "
              "rings nobody answered, missing forwards, calls to a person with a diversion "
              "set (compliant).", "timeseries", "short",
              [("unanswered {{unit}}", _inc(f"pbxwatch_unanswered_rings_total{{{U}}}", "unit",
                                            RATE)),
               ("missing forward {{unit}}", _inc(f"pbxwatch_missing_forwards_total{{{U}}}",
                                                 "unit", RATE)),
               ("diverted {{unit}}", _inc(f"pbxwatch_calls_diverted_total{{{U}}}", "unit",
                                          RATE))]),
        Panel("Callbacks open now", "Callbacks not yet made, by unit: pending (before the "
              "deadline) and overdue (after it). Instant counts, not a period's.",
              "timeseries", "short",
              [("pending {{unit}}", f"sum by (unit) (pbxwatch_callbacks_pending{{{U}}})"),
               ("overdue {{unit}}", f"sum by (unit) (pbxwatch_callbacks_overdue{{{U}}})")]),
        Panel("Voicemail messages and callbacks made", "Per interval: messages left (each a "
              "callback obligation) and callbacks made, on time or late.", "timeseries",
              "short",
              [("messages", _inc(f"pbxwatch_voicemail_messages_total{{{U}}}", "", RATE)),
               ("{{result}}", _inc(f"pbxwatch_callbacks_resolved_total{{{U}}}", "result",
                                   RATE))]),
        Panel("Voicemail: time to call back and to listen (median)", "From the message to "
              "the callback call, and to the moment it was heard, over the last day.",
              "timeseries", "s",
              [("call back", _quantile(0.5, "pbxwatch_callback_seconds", U, window="1d")),
               ("listen", _quantile(0.5, "pbxwatch_listen_seconds", U, window="1d"))]),
        Panel("Unforwarded-absence warnings", "Warnings opened per interval: a phone "
              "unreachable in phone hours with no diversion set.", "timeseries", "short",
              [("{{unit}}", _inc(f"pbxwatch_unforwarded_absences_total{{{U}}}", "unit",
                                 RATE))]),
    ]  # fmt: skip


def queues(t: TargetSettings) -> list[Panel]:
    return [
        Panel("Callers waiting", "Callers in the queue now.", "stat", "short",
              [("{{queue}}", f"sum by (queue) (pbxwatch_queue_callers_waiting{{{Q}}})")], 4),
        Panel("Longest wait", "How long the longest-waiting caller has waited, now.", "stat",
              "s", [("{{queue}}",
                     f"max by (queue) (pbxwatch_queue_longest_wait_seconds{{{Q}}})")], 4),
        Panel("Unstaffed now", "Yes while nobody is available during the unit's phone hours.",
              "stat", "bool_yes_no",
              [("{{queue}}", f"max by (queue) (pbxwatch_queue_unstaffed{{{Q}}})")], 4,
              goal=("max", 0.5)),
        Panel("Service level", "Callers answered within the queue's service_level_seconds / "
              "callers offered (abandoned included, short abandons apart), over the time "
              "range.", "stat", "percentunit",
              [("{{queue}}", service_level(Q, "queue", RANGE))], 6,
              goal=("min", t.service_level)),
        Panel("Direct resolution", "Of the calls the queue answered, the share finished "
              "without a transfer, over the time range.", "stat", "percentunit",
              [("{{queue}}", direct_resolution(Q, "queue", RANGE))], 6,
              goal=("min", t.direct_resolution)),
        Panel("Service level, rolling hour", "As the stat, over the hour before each point.",
              "timeseries", "percentunit", [("{{queue}}", service_level(Q, "queue", "1h"))],
              goal=("min", t.service_level)),
        Panel("Members by state", "Queue members now: available, in a call, paused, "
              "unavailable.", "timeseries", "short",
              [("{{queue}} {{state}}",
                f"sum by (queue, state) (pbxwatch_queue_members{{{Q}}})")]),
        Panel("Callers waiting over time", "Callers in the queue.", "timeseries", "short",
              [("{{queue}}", f"sum by (queue) (pbxwatch_queue_callers_waiting{{{Q}}})")]),
        Panel("Longest wait over time", "The longest wait of the callers in the queue.",
              "timeseries", "s",
              [("{{queue}}", f"max by (queue) (pbxwatch_queue_longest_wait_seconds{{{Q}}})")]),
        Panel("Offered, answered, abandoned", "Queue callers per interval.", "timeseries",
              "short",
              [(f"{name} {{{{queue}}}}",
                _inc(f"pbxwatch_queue_{name}_total{{{Q}}}", "queue", RATE))
               for name in ("offered", "answered", "abandoned")]),
        Panel("Unstaffed minutes in phone hours", "Minutes per interval with nobody "
              "available during the unit's phone hours.", "timeseries", "m",
              [("{{queue}}", f"sum by (queue) (increase(pbxwatch_queue_unstaffed_seconds_total"
                             f"{{{Q}}}[{RATE}])) / 60")]),
    ]  # fmt: skip


def health() -> list[Panel]:
    err = "sum(increase(pbxwatch_{}_total[$__rate_interval]))"
    return [
        Panel("AMI connected", "Logged in to the Asterisk AMI now (of every PBX: one down "
              "shows no).", "stat", "bool_yes_no",
              [("", "min(pbxwatch_ami_up)")], 4, goal=("min", 0.5)),
        Panel("Seconds since the last AMI event", "Host time minus the PBX time of the last "
              "event, of the PBX longest quiet (a quiet PBX at night is normal).", "stat", "s",
              [("", "time() - min(pbxwatch_last_event_timestamp_seconds)")], 4),
        Panel("Event lag", "Host clock minus the PBX timestamp of the last event when it was "
              "processed (negative: the PBX clock is ahead).", "stat", "s",
              [("", "max(pbxwatch_event_lag_seconds)")], 4),
        Panel("Store backlog", "Rows waiting for the database.", "stat", "short",
              [("", "sum(pbxwatch_store_backlog_rows)")], 4),
        Panel("Alert outbox backlog", "Alerts not yet acknowledged by the MQTT broker.",
              "stat", "short", [("", "sum(pbxwatch_alert_outbox_backlog)")], 4),
        Panel("Calls in progress", "Calls being followed now.", "stat", "short",
              [("", "sum(pbxwatch_calls_in_progress)")], 4),
        Panel("AMI gaps in the range", "Times the event stream broke (connection lost, "
              "pbxwatch restarted): the state was read back after each.", "stat", "short",
              [("", "sum(increase(pbxwatch_ami_gaps_total[$__range]))")], 6, goal=("max", 0.5)),
        Panel("PBX time unseen in gaps", "PBX seconds without events in those gaps: calls "
              "then are known only from the state read.", "stat", "s",
              [("", "sum(increase(pbxwatch_ami_gap_seconds_total[$__range]))")], 6),
        Panel("PBX clock steps in the range", "Steps of the PBX clock adopted (NTP "
              "corrections, a PBX restarted with a wrong clock).", "stat", "short",
              [("", "sum(increase(pbxwatch_clock_steps_total[$__range]))")], 6,
              goal=("max", 0.5)),
        Panel("Bad AMI input in the range", "Frames and events skipped or distrusted (each "
              "kind is logged once when first seen).", "stat", "short",
              [("", "sum(increase(pbxwatch_bad_input_total[$__range]))")], 6,
              goal=("max", 0.5)),
        Panel("PBXs without an owner", "Hot standby (cluster): PBXs whose lease no instance "
              "holds now. Nobody writes their rows while it lasts; a standby takes a lapsed "
              "lease within about 1.3 leases. Without a cluster always 0.", "stat", "short",
              [("", "count(count by (pbx) (pbxwatch_pbx_owned)) "
                    "- sum(max by (pbx) (pbxwatch_pbx_owned))")], 12, goal=("max", 0.5)),
        Panel("Takeovers in the range", "Hot standby: leases taken over, failovers from a "
              "dead owner and moves when an instance joined or left (see the owners graph).",
              "stat", "short",
              [("", "sum(increase(pbxwatch_cluster_takeovers_total[$__range]))")], 12),
        Panel("PBXs owned per instance", "Hot standby: how many PBXs each pbxwatch instance "
              "owns (writes their rows, publishes their alerts); the others follow them as "
              "standbys. Without a cluster the one instance owns every PBX.", "timeseries",
              "short", [("{{instance}}", "sum by (instance) (pbxwatch_pbx_owned)")]),
        Panel("AMI events per second (top 10)", "Events processed, by name.", "timeseries",
              "ops", [("{{event}}", "topk(10, sum by (event) (rate(pbxwatch_ami_events_total"
                                    "[$__rate_interval])))")]),
        Panel("Bad AMI input by kind", "Per interval, by kind.", "timeseries", "short",
              [("{{kind}}", "sum by (kind) (increase(pbxwatch_bad_input_total"
                            "[$__rate_interval]))")]),
        Panel("Reconnects and errors", "Per interval: AMI reconnections, events a handler "
              "failed on, records a sink failed on, failed database batches.", "timeseries",
              "short",
              [("AMI reconnects", err.format("ami_reconnects")),
               ("event errors", err.format("event_errors")),
               ("sink errors", err.format("sink_errors")),
               ("store write errors", err.format("store_write_errors"))]),
        Panel("PBX clock: offset and event lag", "PBX minus host clock as estimated, and the "
              "lag of the last event.", "timeseries", "s",
              [("offset", "max(pbxwatch_clock_offset_seconds)"),
               ("lag", "max(pbxwatch_event_lag_seconds)")]),
        Panel("Database rows written per second", "Rows the writer committed.", "timeseries",
              "ops", [("rows/s", "sum(rate(pbxwatch_store_rows_written_total"
                                 "[$__rate_interval]))")]),
        Panel("Database batch duration", "Duration of the last batch written.", "timeseries",
              "s", [("batch", "max(pbxwatch_store_batch_seconds)")]),
        Panel("Rows waiting and spilled", "Rows waiting for the database, and rows spilled to "
              "disk past capacity per interval.", "timeseries", "short",
              [("backlog", "sum(pbxwatch_store_backlog_rows)"),
               ("spilled", err.format("store_spilled_rows"))]),
        Panel("Alerts to MQTT", "Alerts the broker acknowledged per interval, and the outbox "
              "waiting.", "timeseries", "short",
              [("published", err.format("alerts_published")),
               ("outbox", "sum(pbxwatch_alert_outbox_backlog)")]),
        Panel("Checkpoints per interval", "Checkpoints of the live state queued for the "
              "store.", "timeseries", "short", [("checkpoints", err.format("checkpoints"))]),
        Panel("Checkpoint time", "Event-loop time spent copying and encoding the last "
              "checkpoint (in slices).", "timeseries", "s",
              [("copy+encode", "max(pbxwatch_checkpoint_seconds)")]),
        Panel("Checkpoint size", "Size of the last checkpoint, compressed.", "timeseries",
              "bytes", [("size", "max(pbxwatch_checkpoint_bytes)")]),
        Panel("Memory of the process", "Resident memory of pbxwatch.", "timeseries", "bytes",
              [("resident", 'max(process_resident_memory_bytes{job="pbxwatch"})')]),
        Panel("CPU of the process", "CPU seconds per second used by pbxwatch (1 = one core).",
              "timeseries", "percentunit",
              [("cpu", 'sum(rate(process_cpu_seconds_total{job="pbxwatch"}[$__rate_interval]))')]),
    ]  # fmt: skip


# ------------------------------------------------------------- JSON


def _thresholds(goal: Goal | None) -> dict[str, Any]:
    """Red below an ``at least`` goal / above an ``at most`` one, else green."""
    steps: list[dict[str, Any]]
    if goal is None:
        steps = [{"color": "green", "value": None}]
    elif goal[0] == "min":
        steps = [{"color": "red", "value": None}, {"color": "green", "value": goal[1]}]
    else:
        steps = [{"color": "green", "value": None}, {"color": "red", "value": goal[1]}]
    return {"mode": "absolute", "steps": steps}


def _field_config(p: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": p.unit, "thresholds": _thresholds(p.goal)}
    if p.kind == "timeseries":
        style = "line" if p.goal else "off"
        defaults["custom"] = {"axisLabel": p.unit, "thresholdsStyle": {"mode": style}}
        if p.unit == "percentunit":
            defaults |= {"min": 0, "max": 1}
    overrides = [
        {"matcher": {"id": "byName", "options": name},
         "properties": [{"id": "unit", "value": unit}, {"id": "thresholds",
                                                         "value": _thresholds(goal)},
                        {"id": "custom.cellOptions",
                         "value": {"type": "color-text" if goal else "auto"}}]}
        for name, (unit, goal) in p.columns.items()
    ]  # fmt: skip
    return {"defaults": defaults, "overrides": overrides}


def _options(p: Panel) -> dict[str, Any]:
    if p.kind == "stat":
        return {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "value"}
    if p.kind == "table":
        return {"showHeader": True, "sortBy": [{"displayName": "unit", "desc": False}]}
    return {"legend": {"displayMode": "list", "placement": "bottom"}}


def _target(p: Panel, i: int, legend: str, expr: str) -> dict[str, Any]:
    target = {"refId": chr(65 + i), "expr": expr, "datasource": DS}
    if p.kind == "table":
        return target | {"instant": True, "format": "table", "legendFormat": legend}
    return target | {"legendFormat": legend}


def _transformations(p: Panel) -> list[dict[str, Any]]:
    """A table: the instant queries merged on ``unit``, one column each."""
    if p.kind != "table":
        return []
    names = {f"Value #{chr(65 + i)}": legend for i, (legend, _) in enumerate(p.targets)}
    return [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True},
                                       "renameByName": names,
                                       "indexByName": {"unit": 0}}},
    ]  # fmt: skip


def _panel(n: int, p: Panel, x: int, y: int) -> dict[str, Any]:
    height = {"stat": 4, "timeseries": 8, "table": 7}[p.kind]
    return {
        "id": n, "title": p.title, "description": p.description, "type": p.kind,
        "datasource": DS, "gridPos": {"x": x, "y": y, "w": p.width, "h": height},
        "fieldConfig": _field_config(p), "options": _options(p),
        "targets": [_target(p, i, legend, expr) for i, (legend, expr) in enumerate(p.targets)],
        "transformations": _transformations(p),
    }  # fmt: skip


def _variable(name: str, label: str, metric: str) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": f"label_values({metric}, {name})", "refId": name},
        "includeAll": True, "multi": True, "allValue": ".*",
        "current": {"text": "All", "value": "$__all"}, "refresh": 2, "sort": 1,
    }  # fmt: skip


def dashboard(uid: str, title: str, description: str, panels: list[Panel],
              variables: list[dict[str, Any]], time_from: str) -> dict[str, Any]:  # fmt: skip
    laid: list[dict[str, Any]] = []
    x = y = row_h = 0
    for n, p in enumerate(panels, 1):
        if x + p.width > 24:
            x, y, row_h = 0, y + row_h, 0
        laid.append(_panel(n, p, x, y))
        x += p.width
        row_h = max(row_h, laid[-1]["gridPos"]["h"])
    # no "current": Grafana picks the default Prometheus data source
    ds_var = {"name": "datasource", "label": "Data source", "type": "datasource",
              "query": "prometheus"}  # fmt: skip
    return {
        "uid": uid, "title": title, "description": description, "tags": ["pbxwatch"],
        "timezone": "browser", "schemaVersion": 39, "version": 1, "editable": True,
        "refresh": "30s", "time": {"from": time_from, "to": "now"},
        "templating": {"list": [ds_var, *variables]},
        "panels": laid,
    }  # fmt: skip


def dashboards(settings: Settings | None = None) -> dict[str, dict[str, Any]]:
    """Every board, with the thresholds of ``settings`` (default: the lab config)."""
    targets = (settings or load_settings(LAB)).targets
    unit = _variable("unit", "Unit", "pbxwatch_calls_total")
    queue = _variable("queue", "Queue", "pbxwatch_queue_unstaffed")
    pbx = _variable("pbx", "PBX", "pbxwatch_ami_up")
    return {
        "telephony-service.json": dashboard(
            "pbxwatch-service", "Telephony service",
            "The guideline figures per unit (pbxwatch report's definitions).",
            service(targets), [pbx, unit], "now-7d"),
        "live-queues.json": dashboard(
            "pbxwatch-queues", "Live queues",
            "Group numbers and the contact centre now: the on-call view.",
            queues(targets), [pbx, queue], "now-3h"),
        "pbxwatch-health.json": dashboard(
            "pbxwatch-health", "pbxwatch health",
            "pbxwatch itself: the AMI connection, gaps, clock, bad input, store, MQTT.",
            health(), [], "now-6h"),
    }  # fmt: skip


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="write pbxwatch's Grafana dashboards")
    parser.add_argument("--config", default=str(LAB), help="thresholds from this config's "
                        "targets (default: config/lab.yaml)")  # fmt: skip
    parser.add_argument("--out", default=str(OUT), help="directory to write the JSON to")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name, board in dashboards(load_settings(args.config)).items():
        (out / name).write_text(render(board), encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
