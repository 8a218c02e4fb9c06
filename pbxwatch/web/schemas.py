"""The JSON API's response models (the OpenAPI document's schemas)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from pbxwatch.core.incidents import IncidentKind
from pbxwatch.core.records import Direction, Outcome

# the record's own vocabularies: the API's schema says what the core says
__all__ = ["Direction", "IncidentKind", "Outcome"]


class Error(BaseModel):
    detail: str


class Members(BaseModel):
    available: int
    in_call: int
    paused: int
    logged_out: int


class Queue(BaseModel):
    queue: str
    #: the PBX it is on (``main`` when one PBX is configured)
    pbx: str
    #: unique over the PBXs: the name, or ``<pbx>:<name>`` for a PBX other than main
    id: str
    kind: str
    unit: str
    unit_name: str
    waiting: int
    longest_wait_seconds: float
    service_level: float | None
    service_level_seconds: float
    answered_today: int
    abandoned_today: int
    members: Members
    in_phone_hours: bool
    unstaffed: bool
    unstaffed_since: str | None
    today_since: str | None


class PbxHealth(BaseModel):
    pbx: str
    ami_up: bool
    last_event_at: str | None
    event_lag_seconds: float
    clock_offset_seconds: float
    calls_in_progress: int


class Health(BaseModel):
    #: logged in to every PBX's AMI
    ami_up: bool
    last_event_at: str | None
    event_lag_seconds: float
    clock_offset_seconds: float
    store_up: bool
    store_backlog: int
    outbox_backlog: int
    mqtt_enabled: bool
    mqtt_up: bool
    calls_in_progress: int
    gaps_today: int | None
    now: str | None
    #: each PBX's AMI session and stream
    pbxs: list[PbxHealth]


class Call(BaseModel):
    call_id: str
    #: the PBX the call was on (``main`` when one PBX is configured)
    pbx: str
    started_at: str | None
    ended_at: str | None
    duration_seconds: float | None
    direction: str
    caller: str | None
    caller_e164: str | None
    #: how this viewer gets caller numbers: in clear, masked or not at all
    numbers: Literal["clear", "masked", "none"]
    dialled: str | None
    target_kind: str | None
    target: str | None
    unit: str | None
    outcome: str
    answered_by: str | None
    answer_seconds: float | None
    rings_before_answer: int | None
    voicemail_mailbox: str | None
    diverted: bool
    overflowed_to_contact_centre: bool
    transferred_to: str | None
    abandoned_where: str | None
    short_abandon: bool
    queues: list[str]
    complete: bool
    across_gap: bool


class CallPage(BaseModel):
    calls: list[Call]
    #: how many match, at most search.COUNT_CAP ...
    total: int
    #: ... and whether more than that match
    total_capped: bool
    limit: int
    offset: int
    next_offset: int | None


class Ring(BaseModel):
    seq: int
    extension: str
    queue: str | None
    started_at: str | None
    seconds: float
    rings: int
    result: str


class Step(BaseModel):
    at: str | None
    kind: str
    text: str
    approximate: bool


class Incident(BaseModel):
    incident_id: str
    #: the PBX the incident was on
    pbx: str
    kind: str
    state: str
    started_at: str | None
    ended_at: str | None
    unit: str | None
    extension: str | None
    queue: str | None
    call_id: str | None
    details: dict[str, Any]


class IncidentPage(BaseModel):
    incidents: list[Incident]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class CallDetail(BaseModel):
    call: Call
    rings: list[Ring]
    incidents: list[Incident]
    timeline: list[Step]
    classification: str
    why: str


class AuditEntry(BaseModel):
    at: str | None
    user: str
    roles: str
    unit: str | None
    what: str
    records: int
    address: str | None


class AuditPage(BaseModel):
    entries: list[AuditEntry]
    total: int
    limit: int
    offset: int
    next_offset: int | None
