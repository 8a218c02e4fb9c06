"""Generate pbxwatch's Grafana dashboards (JSON) from the panel lists below.

    python3 config/grafana/generate.py      # rewrites config/grafana/dashboards/*.json

The JSON is committed so Grafana can provision it as it is; the test suite
checks it is what this script makes, and that every query returns data
from a real Prometheus scraping pbxwatch.  Edit the lists here, not the JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}

U = 'unit=~"$unit"'
IN = f'direction="inbound",{U}'


def _ratio(part: str, whole: str) -> str:
    return f"({part}) / clamp_min({whole}, 1)"


def _inc(selector: str, by: str = "", window: str = "$__range") -> str:
    group = f" by ({by})" if by else ""
    return f"sum{group} (increase({selector}[{window}]))"


def _quantile(q: float, metric: str, selector: str, by: str = "") -> str:
    extra = f", {by}" if by else ""
    return (
        f"histogram_quantile({q}, sum by (le{extra}) "
        f"(rate({metric}_bucket{{{selector}}}[$__rate_interval])))"
    )


# (title, kind, unit, [(legend, expr)], width)
Panel = tuple[str, str, str, list[tuple[str, str]], int]

SERVICE: list[Panel] = [
    ("Offered calls", "stat", "short",
     [("", _inc(f"pbxwatch_calls_total{{{IN}}}"))], 4),
    ("Availability (answered / offered)", "stat", "percentunit",
     [("", _ratio(_inc(f'pbxwatch_calls_total{{{IN},outcome="answered"}}'),
                  _inc(f"pbxwatch_calls_total{{{IN}}}")))], 4),
    ("Abandoned share (short abandons apart)", "stat", "percentunit",
     [("", _ratio(_inc(f'pbxwatch_calls_total{{{IN},outcome="abandoned"}}') + " - "
                  + _inc(f"pbxwatch_short_abandons_total{{{U}}}"),
                  _inc(f"pbxwatch_calls_total{{{IN}}}")))], 4),
    ("Missing forward share", "stat", "percentunit",
     [("", _ratio(_inc(f"pbxwatch_missing_forwards_total{{{U}}}"),
                  _inc(f"pbxwatch_person_calls_not_reached_total{{{U}}}")))], 4),
    ("Callbacks overdue now", "stat", "short",
     [("", f"sum(pbxwatch_callbacks_overdue{{{U}}})")], 4),
    ("Callbacks on time", "stat", "percentunit",
     [("", _ratio(_inc(f'pbxwatch_callbacks_resolved_total{{{U},result="on_time"}}'),
                  _inc(f"pbxwatch_callbacks_resolved_total{{{U}}}") + " + "
                  + f"sum(pbxwatch_callbacks_overdue{{{U}}})"))], 4),
    ("Inbound calls by outcome", "timeseries", "short",
     [("{{outcome}}", _inc(f"pbxwatch_calls_total{{{IN}}}", "outcome", "$__rate_interval"))], 12),
    ("Answer time (median, 90th percentile)", "timeseries", "s",
     [("median", _quantile(0.5, "pbxwatch_answer_seconds", U)),
      ("p90", _quantile(0.9, "pbxwatch_answer_seconds", U))], 12),
    ("Rings before answer (median, 90th percentile)", "timeseries", "short",
     [("median", _quantile(0.5, "pbxwatch_rings_before_answer", U)),
      ("p90", _quantile(0.9, "pbxwatch_rings_before_answer", U))], 12),
    ("Unanswered rings and missing forwards by unit", "timeseries", "short",
     [("unanswered {{unit}}",
       _inc(f"pbxwatch_unanswered_rings_total{{{U}}}", "unit", "$__rate_interval")),
      ("missing forward {{unit}}",
       _inc(f"pbxwatch_missing_forwards_total{{{U}}}", "unit", "$__rate_interval")),
      ("diverted {{unit}}",
       _inc(f"pbxwatch_calls_diverted_total{{{U}}}", "unit", "$__rate_interval"))], 12),
    ("Callbacks pending and overdue by unit", "timeseries", "short",
     [("pending {{unit}}", f"sum by (unit) (pbxwatch_callbacks_pending{{{U}}})"),
      ("overdue {{unit}}", f"sum by (unit) (pbxwatch_callbacks_overdue{{{U}}})")], 12),
    ("Voicemail: time to call back and to listen (median)", "timeseries", "s",
     [("call back", _quantile(0.5, "pbxwatch_callback_seconds", U)),
      ("listen", _quantile(0.5, "pbxwatch_listen_seconds", U))], 12),
    ("Voicemail messages and callbacks", "timeseries", "short",
     [("messages", _inc(f"pbxwatch_voicemail_messages_total{{{U}}}", "", "$__rate_interval")),
      ("{{result}}",
       _inc(f"pbxwatch_callbacks_resolved_total{{{U}}}", "result", "$__rate_interval"))], 12),
    ("Unforwarded-absence warnings", "timeseries", "short",
     [("{{unit}}", _inc(f"pbxwatch_unforwarded_absences_total{{{U}}}", "unit",
                        "$__rate_interval"))], 12),
]  # fmt: skip

Q = 'queue=~"$queue"'
QUEUES: list[Panel] = [
    ("Callers waiting", "stat", "short",
     [("{{queue}}", f"sum by (queue) (pbxwatch_queue_callers_waiting{{{Q}}})")], 6),
    ("Longest wait", "stat", "s",
     [("{{queue}}", f"max by (queue) (pbxwatch_queue_longest_wait_seconds{{{Q}}})")], 6),
    ("Unstaffed now (nobody available in phone hours)", "stat", "bool_yes_no",
     [("{{queue}}", f"max by (queue) (pbxwatch_queue_unstaffed{{{Q}}})")], 6),
    ("Answered within service level (1 h)", "stat", "percentunit",
     [("{{queue}}", _ratio(_inc(f"pbxwatch_queue_answered_within_sl_total{{{Q}}}", "queue", "1h"),
                           _inc(f"pbxwatch_queue_answered_total{{{Q}}}", "queue", "1h")))], 6),
    ("Members by state", "timeseries", "short",
     [("{{queue}} {{state}}", f"sum by (queue, state) (pbxwatch_queue_members{{{Q}}})")], 12),
    ("Callers waiting and longest wait", "timeseries", "short",
     [("waiting {{queue}}", f"sum by (queue) (pbxwatch_queue_callers_waiting{{{Q}}})"),
      ("longest wait s {{queue}}",
       f"max by (queue) (pbxwatch_queue_longest_wait_seconds{{{Q}}})")], 12),
    ("Offered, answered, abandoned", "timeseries", "short",
     [(f"{name} {{{{queue}}}}",
       _inc(f"pbxwatch_queue_{name}_total{{{Q}}}", "queue", "$__rate_interval"))
      for name in ("offered", "answered", "abandoned")], 12),
    ("Unstaffed minutes in phone hours", "timeseries", "m",
     [("{{queue}}", f"sum by (queue) (increase(pbxwatch_queue_unstaffed_seconds_total{{{Q}}}"
                    "[$__rate_interval])) / 60")], 12),
]  # fmt: skip

HEALTH: list[Panel] = [
    ("AMI connected", "stat", "bool_yes_no", [("", "max(pbxwatch_ami_up)")], 4),
    ("Seconds since the last AMI event", "stat", "s",
     [("", "time() - max(pbxwatch_last_event_timestamp_seconds)")], 4),
    ("Event lag", "stat", "s", [("", "max(pbxwatch_event_lag_seconds)")], 4),
    ("Store backlog", "stat", "short", [("", "sum(pbxwatch_store_backlog_rows)")], 4),
    ("Alert outbox backlog", "stat", "short", [("", "sum(pbxwatch_alert_outbox_backlog)")], 4),
    ("Calls in progress", "stat", "short", [("", "sum(pbxwatch_calls_in_progress)")], 4),
    ("AMI events per second (top 10)", "timeseries", "ops",
     [("{{event}}", "topk(10, sum by (event) (rate(pbxwatch_ami_events_total"
                    "[$__rate_interval])))")], 12),
    ("Reconnects, event errors, write errors", "timeseries", "short",
     [("AMI reconnects", "sum(increase(pbxwatch_ami_reconnects_total[$__rate_interval]))"),
      ("event errors", "sum(increase(pbxwatch_event_errors_total[$__rate_interval]))"),
      ("sink errors", "sum(increase(pbxwatch_sink_errors_total[$__rate_interval]))"),
      ("store write errors",
       "sum(increase(pbxwatch_store_write_errors_total[$__rate_interval]))")], 12),
    ("Database: rows written per second, last batch duration", "timeseries", "short",
     [("rows/s", "sum(rate(pbxwatch_store_rows_written_total[$__rate_interval]))"),
      ("batch s", "max(pbxwatch_store_batch_seconds)"),
      ("spilled rows", "sum(increase(pbxwatch_store_spilled_rows_total[$__rate_interval]))")], 12),
    ("Alerts published to MQTT", "timeseries", "short",
     [("published", "sum(increase(pbxwatch_alerts_published_total[$__rate_interval]))"),
      ("outbox", "sum(pbxwatch_alert_outbox_backlog)")], 12),
    ("Blind: AMI gaps (lost connections, restarts) in the range", "stat", "short",
     [("gaps", "sum(increase(pbxwatch_ami_gaps_total[$__range]))"),
      ("PBX seconds unseen", "sum(increase(pbxwatch_ami_gap_seconds_total[$__range]))")], 12),
    ("Checkpoints of the live state", "timeseries", "short",
     [("checkpoints", "sum(increase(pbxwatch_checkpoints_total[$__rate_interval]))"),
      ("copy+encode s", "max(pbxwatch_checkpoint_seconds)"),
      ("KiB", "max(pbxwatch_checkpoint_bytes) / 1024")], 12),
]  # fmt: skip


def _variable(name: str, label: str, metric: str) -> dict[str, Any]:
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": f"label_values({metric}, {name})", "refId": name},
        "definition": f"label_values({metric}, {name})",
        "includeAll": True, "multi": True, "allValue": ".*",
        "current": {"text": "All", "value": "$__all"}, "refresh": 2, "sort": 1,
    }  # fmt: skip


def _panel(n: int, panel: Panel, x: int, y: int) -> dict[str, Any]:
    title, kind, unit, targets, width = panel
    height = 4 if kind == "stat" else 8
    return {
        "id": n, "title": title, "type": kind, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": width, "h": height},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}} if kind == "stat" else {},
        "targets": [
            {"refId": chr(65 + i), "expr": expr, "legendFormat": legend, "datasource": DS}
            for i, (legend, expr) in enumerate(targets)
        ],
    }  # fmt: skip


def dashboard(uid: str, title: str, panels: list[Panel], variables: list[dict[str, Any]],
              time_from: str) -> dict[str, Any]:  # fmt: skip
    laid: list[dict[str, Any]] = []
    x = y = row_h = 0
    for n, p in enumerate(panels, 1):
        if x + p[4] > 24:
            x, y, row_h = 0, y + row_h, 0
        laid.append(_panel(n, p, x, y))
        x += p[4]
        row_h = max(row_h, laid[-1]["gridPos"]["h"])
    ds_var = {"name": "datasource", "label": "Data source", "type": "datasource",
              "query": "prometheus", "current": {}}  # fmt: skip
    return {
        "uid": uid, "title": title, "tags": ["pbxwatch"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": time_from, "to": "now"},
        "templating": {"list": [ds_var, *variables]},
        "panels": laid,
    }  # fmt: skip


def dashboards() -> dict[str, dict[str, Any]]:
    unit = _variable("unit", "Unit", "pbxwatch_calls_total")
    queue = _variable("queue", "Queue", "pbxwatch_queue_unstaffed")
    return {
        "telephony-service.json": dashboard("pbxwatch-service", "Telephony service", SERVICE,
                                            [unit], "now-7d"),
        "live-queues.json": dashboard("pbxwatch-queues", "Live queues", QUEUES, [queue],
                                      "now-3h"),
        "pbxwatch-health.json": dashboard("pbxwatch-health", "pbxwatch health", HEALTH, [],
                                          "now-6h"),
    }  # fmt: skip


def render(board: dict[str, Any]) -> str:
    return json.dumps(board, indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, board in dashboards().items():
        (OUT / name).write_text(render(board), encoding="utf-8")
        print(f"wrote {OUT / name}")
