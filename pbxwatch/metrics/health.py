"""pbxwatch's own health: the AMI connection, the event stream and its bad
input, the clock, the store, checkpoints and the MQTT outbox.

``Health`` is what the adapters know (filled by ``run`` once a second):
each PBX has its own (its AMI session, stream and checkpoints), the first
one's also holds what all PBXs share (store, MQTT, mail).
``pbx_health_families`` and ``shared_health_families`` turn them and the
engines' counts into metric families for the state collector: a PBX's
series with a ``pbx`` label, the shared ones without.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from pbxwatch.core.engine import BAD_INPUT_KINDS, IGNORED_EVENTS, KNOWN_EVENTS, Engine
from pbxwatch.store.writer import WriterStats


@dataclass
class Health:
    """pbxwatch's own state, as the adapters know it."""

    ami_up: bool = False
    ami_reconnects: int = 0
    last_event_time: float | None = None
    event_lag_seconds: float = 0.0
    store_backlog: int = 0
    store: WriterStats = field(default_factory=WriterStats)
    outbox_backlog: int = 0
    outbox_published: int = 0
    #: frames the AMI source dropped before they were events, by kind
    frame_faults: dict[str, int] = field(default_factory=dict)
    sink_errors: int = 0
    store_up: bool = True
    store_connect_failures: int = 0
    mqtt_up: bool = False
    mqtt_connect_failures: int = 0
    #: PBX minus host clock (PBX − speed × host with a faster simulator)
    clock_offset_seconds: float = 0.0
    checkpoints_saved: int = 0
    checkpoint_bytes: int = 0
    checkpoint_seconds: float = 0.0  # copying and encoding the last one
    mail_sent: int = 0
    mail_failed: int = 0
    mail_backlog: int = 0
    mail_smtp_up: bool = False
    #: a hot standby (``pbxwatch.cluster``): whether this instance owns the
    #: PBX, and how often it took it over
    owner: bool = True
    takeovers: int = 0
    #: shared: the instances beating, and how long the last lease taken
    #: over had lapsed (0 without a cluster)
    cluster_instances: int = 0
    failover_seconds: float = 0.0


#: per-PBX series made from its core's counts and its adapters' health
PER_PBX = frozenset({
    "pbxwatch_config_devices_unmatched", "pbxwatch_config_trunks_unmatched",
    "pbxwatch_devices_by_resource", "pbxwatch_ami_up", "pbxwatch_ami_reconnects",
    "pbxwatch_event_errors", "pbxwatch_sink_errors", "pbxwatch_last_event_timestamp_seconds",
    "pbxwatch_event_lag_seconds", "pbxwatch_clock_offset_seconds", "pbxwatch_clock_steps",
    "pbxwatch_calls_in_progress", "pbxwatch_checkpoints", "pbxwatch_checkpoint_bytes",
    "pbxwatch_checkpoint_seconds", "pbxwatch_pbx_owned", "pbxwatch_cluster_takeovers",
})  # fmt: skip


#: the event names counted, in their series' order
EVENT_NAMES = tuple(sorted(KNOWN_EVENTS | IGNORED_EVENTS | {"other"}))


def pbx_health_families(each: Sequence[tuple[str, Engine, Health]]) -> list[Metric]:
    """Each PBX's AMI session, event stream and checkpoints (label ``pbx``)."""
    families: list[Metric] = [*_event_families(each)]
    by_name: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}
    for pbx, engine, h in each:
        for kind, name, help_, value in _plain(engine, h):
            if name not in PER_PBX:
                continue
            if name not in by_name:
                family = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
                by_name[name] = family(name, help_, labels=["pbx"])
            by_name[name].add_metric([pbx], float(value))
    families.extend(by_name.values())
    return families


def shared_health_families(engine: Engine, shared: Health) -> list[Metric]:
    """What all PBXs share: the store, MQTT and mail (no label)."""
    families: list[Metric] = []
    for kind, name, help_, value in _plain(engine, shared):
        if name not in PER_PBX:
            family = GaugeMetricFamily if kind == "gauge" else CounterMetricFamily
            families.append(family(name, help_, value=float(value)))
    return families


def _event_families(each: Sequence[tuple[str, Engine, Health]]) -> list[Metric]:
    events = CounterMetricFamily("pbxwatch_ami_events", "AMI events processed, by "
                                 "event name (known names, else 'other').",
                                 labels=["pbx", "event"])  # fmt: skip
    bad = CounterMetricFamily("pbxwatch_bad_input", "AMI input skipped or distrusted, by "
                              "kind (each kind is logged once when first seen).",
                              labels=["pbx", "kind"])  # fmt: skip
    for pbx, engine, h in each:
        seen = engine.events_by_name
        for name in EVENT_NAMES:
            events.add_metric([pbx, name], seen.get(name, 0))
        counts = {**engine.bad_input, **h.frame_faults}
        for kind in BAD_INPUT_KINDS:
            bad.add_metric([pbx, kind], counts.get(kind, 0))
    return [events, bad]


def _plain(engine: Engine, h: Health) -> list[tuple[str, str, str, float]]:
    """(gauge or counter, name, help, value) of the series without labels."""
    errors = sum(n for k, n in engine.stats.items() if k.startswith("handler_error:"))
    devices, trunks = engine.directory.unmatched()
    return [
        ("gauge", "pbxwatch_config_devices_unmatched", "Configured devices no event has named "
         "yet (all of them: the names do not fit this PBX, e.g. IAX2/ on PJSIP).", len(devices)),
        ("gauge", "pbxwatch_config_trunks_unmatched", "Configured trunk patterns no channel "
         "has matched yet (calls over that trunk are then taken for internal).", len(trunks)),
        ("counter", "pbxwatch_devices_by_resource", "Device names recognised by their "
         "resource alone (PJSIP/1001 for a person configured with IAX2/1001).",
         engine.directory.usage.by_resource),
        ("gauge", "pbxwatch_ami_up", "1 while logged in to the AMI.", h.ami_up),
        ("counter", "pbxwatch_ami_reconnects", "AMI reconnections.", h.ami_reconnects),
        ("counter", "pbxwatch_event_errors", "Events a handler failed on (skipped, logged).",
         errors),
        ("counter", "pbxwatch_sink_errors", "Records a sink (store, metrics, log) failed on "
         "(skipped, first ten logged).", h.sink_errors),
        ("gauge", "pbxwatch_last_event_timestamp_seconds", "PBX time of the last event.",
         h.last_event_time or 0),
        ("gauge", "pbxwatch_event_lag_seconds", "Host clock minus the PBX timestamp of the "
         "last event when it was processed.", h.event_lag_seconds),
        ("gauge", "pbxwatch_clock_offset_seconds", "PBX clock minus host clock, as estimated "
         "from the promptest recent events.", h.clock_offset_seconds),
        ("counter", "pbxwatch_clock_steps", "Steps of the PBX clock adopted after consecutive "
         "events confirmed them.", engine.clock.steps),
        ("gauge", "pbxwatch_calls_in_progress", "Calls being followed now.",
         engine.tracked_calls),
        ("gauge", "pbxwatch_store_up", "1 once the database is open.", h.store_up),
        ("counter", "pbxwatch_store_connect_failures", "Failed tries to open the database "
         "(down, unresolvable host, refused login).", h.store_connect_failures),
        ("gauge", "pbxwatch_mqtt_up", "1 while connected to the MQTT broker.", h.mqtt_up),
        ("counter", "pbxwatch_mqtt_connect_failures", "Failed tries to reach the broker "
         "(down, refused login), retried with backoff.", h.mqtt_connect_failures),
        ("gauge", "pbxwatch_store_backlog_rows", "Rows waiting to be written.", h.store_backlog),
        ("counter", "pbxwatch_store_rows_written", "Rows written to the database.",
         h.store.rows_written),
        ("counter", "pbxwatch_store_write_errors", "Failed database batches (retried).",
         h.store.write_errors),
        ("counter", "pbxwatch_store_spilled_rows", "Rows spilled to disk past capacity.",
         h.store.spilled_rows),
        ("gauge", "pbxwatch_store_batch_seconds", "Duration of the last database batch.",
         h.store.last_batch_seconds),
        ("counter", "pbxwatch_checkpoints", "Checkpoints of the live state queued for the "
         "store (a restart carries on from the last one committed).", h.checkpoints_saved),
        ("gauge", "pbxwatch_checkpoint_bytes", "Size of the last checkpoint, encoded.",
         h.checkpoint_bytes),
        ("gauge", "pbxwatch_checkpoint_seconds", "Event-loop time spent copying and encoding "
         "the last checkpoint (in slices).", h.checkpoint_seconds),
        ("gauge", "pbxwatch_alert_outbox_backlog", "Alerts waiting to be published.",
         h.outbox_backlog),
        ("counter", "pbxwatch_alerts_published", "Alerts the broker acknowledged.",
         h.outbox_published),
        ("counter", "pbxwatch_mail_sent", "Mails the SMTP server accepted (250).", h.mail_sent),
        ("counter", "pbxwatch_mail_failed", "Mails given up: a 5xx reply, or 4xx replies up to "
         "mail.max_attempts (recorded in mail_outbox, logged at ERROR).", h.mail_failed),
        ("gauge", "pbxwatch_mail_backlog", "Mails waiting in the outbox (held ones included).",
         h.mail_backlog),
        ("gauge", "pbxwatch_mail_smtp_up", "1 while the SMTP server last took a mail.",
         h.mail_smtp_up),
        ("gauge", "pbxwatch_pbx_owned", "1 while this instance owns the PBX (writes its rows, "
         "publishes its alerts); 0 while it follows it as a hot standby.", h.owner),
        ("counter", "pbxwatch_cluster_takeovers", "Times this instance took the PBX's lease "
         "over (a failover, or a move when instances joined or left).", h.takeovers),
        ("gauge", "pbxwatch_cluster_instances", "Instances sharing the PBXs (0: no cluster).",
         h.cluster_instances),
        ("gauge", "pbxwatch_cluster_failover_seconds", "How long the last lease this instance "
         "took over had lapsed: the owner's silence before the takeover.", h.failover_seconds),
    ]  # fmt: skip
