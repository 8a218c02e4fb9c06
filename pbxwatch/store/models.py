"""Tables.  Every key is derived from the PBX's own identifiers (Linkedid,
the incident and callback ids the core builds from them), so writing the
same record twice updates one row instead of adding a second.

Times are epoch seconds (double precision): the core's own unit, free of
time-zone conversions; reports turn them into local days.  Personal data
(caller numbers, diversion messages) sits in nullable columns that the
retention purge sets to NULL while the aggregates stay.
"""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Float, Index, Integer, MetaData, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


#: the PBX of every row an older pbxwatch stored (``settings.DEFAULT_PBX``)
DEFAULT_PBX = "main"


class OfPbx:
    """A table of one PBX's facts: which PBX (migration 0012).  Its ids
    are unique across PBXs by themselves (``pbxwatch.stamp``)."""

    pbx: Mapped[str] = mapped_column(String(32), server_default=DEFAULT_PBX)


#: the tables with a ``pbx`` column
PBX_TABLES = (
    "calls", "rings", "incidents", "callbacks", "diversion_intervals", "unstaffed_intervals",
    "ami_gaps", "clock_steps", "alerts", "stream_positions", "checkpoints",
)  # fmt: skip


class Call(OfPbx, Base):
    __tablename__ = "calls"
    __table_args__ = (  # the console's call search: a unit's or a target's calls by time
        Index("ix_calls_unit_started_at", "unit", "started_at"),
        # by caller digits (LIKE '%..%'): trigrams on PostgreSQL (migration 0010)
        Index(
            "ix_calls_caller_e164_caller",
            "caller_e164",
            "caller",
            postgresql_using="gin",
            postgresql_ops={"caller_e164": "gin_trgm_ops", "caller": "gin_trgm_ops"},
        ),
    )

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float)
    direction: Mapped[str] = mapped_column(String(16))
    caller: Mapped[str | None] = mapped_column(String(64))  # personal data
    caller_e164: Mapped[str | None] = mapped_column(String(32), index=True)  # personal data
    dialled: Mapped[str | None] = mapped_column(String(64))
    target_kind: Mapped[str | None] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(64))
    unit: Mapped[str | None] = mapped_column(String(64), index=True)
    outcome: Mapped[str] = mapped_column(String(32))
    answered_by: Mapped[str | None] = mapped_column(String(64))
    answer_seconds: Mapped[float | None] = mapped_column(Float)
    rings_before_answer: Mapped[int | None] = mapped_column(Integer)
    voicemail_mailbox: Mapped[str | None] = mapped_column(String(64))
    diverted: Mapped[bool] = mapped_column(Boolean, default=False)
    overflowed_to_contact_centre: Mapped[bool] = mapped_column(Boolean, default=False)
    transferred_to: Mapped[str | None] = mapped_column(String(64))
    abandoned_where: Mapped[str | None] = mapped_column(String(16))
    short_abandon: Mapped[bool] = mapped_column(Boolean, default=False)
    queues: Mapped[list[str]] = mapped_column(JSON, default=list)
    complete: Mapped[bool] = mapped_column(Boolean, default=True)
    across_gap: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    purged: Mapped[bool] = mapped_column(Boolean, default=False)


class Ring(OfPbx, Base):
    __tablename__ = "rings"

    call_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    extension: Mapped[str] = mapped_column(String(32), index=True)
    unit: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)
    #: the call's own start (``calls.started_at``), so that an extension's
    #: newest calls come off one index (migration 0011)
    call_started_at: Mapped[float] = mapped_column(Float)
    seconds: Mapped[float] = mapped_column(Float)
    rings: Mapped[int] = mapped_column(Integer)
    result: Mapped[str] = mapped_column(String(32))


# An extension's calls newest first, as the console's search orders them
# (start descending, then id), straight off the index and without reading the
# rows: as a call's target, as who answered it, and as one of its rings, by
# the call's start (and the ring's own, which a time range also bounds).
# Migration 0011; they take the place of 0010's ascending ones.
Index("ix_calls_target_started_at_desc", Call.target, Call.started_at.desc(), Call.call_id)
Index(
    "ix_calls_answered_by_started_at_desc",
    Call.answered_by,
    Call.started_at.desc(),
    Call.call_id,
)
Index(
    "ix_rings_extension_call_started_at_desc",
    Ring.extension,
    Ring.call_started_at.desc(),
    Ring.call_id,
    Ring.started_at,
)


class Incident(OfPbx, Base):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_call_id", "call_id"),)  # a call's timeline

    incident_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    ended_at: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(64), index=True)
    extension: Mapped[str | None] = mapped_column(String(32))
    queue: Mapped[str | None] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)


class Callback(OfPbx, Base):
    __tablename__ = "callbacks"

    callback_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    call_id: Mapped[str] = mapped_column(String(64))
    mailbox: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str | None] = mapped_column(String(32))
    unit: Mapped[str | None] = mapped_column(String(64), index=True)
    caller: Mapped[str | None] = mapped_column(String(64))  # personal data
    number: Mapped[str | None] = mapped_column(String(32))  # what to dial back; personal data
    has_number: Mapped[bool] = mapped_column(Boolean, default=True)
    left_at: Mapped[float] = mapped_column(Float, index=True)
    deadline: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[float | None] = mapped_column(Float)
    resolved_by_call: Mapped[str | None] = mapped_column(String(64))
    resolved_from: Mapped[str | None] = mapped_column(String(32))
    listened_at: Mapped[float | None] = mapped_column(Float)
    exempt_reason: Mapped[str | None] = mapped_column(Text)
    deferred_reason: Mapped[str | None] = mapped_column(Text)  # the owner away: why (personal)
    returned_at: Mapped[float | None] = mapped_column(Float)
    due_soon_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    overdue_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    message_id: Mapped[str | None] = mapped_column(String(64))
    found_at_resync: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    deleted_at: Mapped[float | None] = mapped_column(Float)
    purged: Mapped[bool] = mapped_column(Boolean, default=False)


class DiversionInterval(OfPbx, Base):
    __tablename__ = "diversion_intervals"

    interval_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    extension: Mapped[str] = mapped_column(String(32), index=True)
    unit: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16))
    subtype: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)  # may be personal ("Sjuk")
    start: Mapped[float] = mapped_column(Float, index=True)
    end: Mapped[float | None] = mapped_column(Float)
    purged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class UnstaffedInterval(OfPbx, Base):
    __tablename__ = "unstaffed_intervals"

    incident_id: Mapped[str] = mapped_column(String(160), primary_key=True)
    queue: Mapped[str] = mapped_column(String(64), index=True)
    unit: Mapped[str | None] = mapped_column(String(64))
    start: Mapped[float] = mapped_column(Float)
    end: Mapped[float | None] = mapped_column(Float)


class AmiGap(OfPbx, Base):
    """A stretch of PBX time without events, and what the state read after
    it reconciled (JSON counts): the hours a report is unsure for."""

    __tablename__ = "ami_gaps"

    gap_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    reconciled: Mapped[str | None] = mapped_column(Text)


class ClockStep(OfPbx, Base):
    """A step of the PBX's clock that pbxwatch adopted (an NTP correction, a
    PBX restarted with a wrong clock): figures either side of it are each on
    one timebase, and this row says where the timebases meet."""

    __tablename__ = "clock_steps"

    step_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    delta: Mapped[float] = mapped_column(Float)
    mode: Mapped[str] = mapped_column(String(16))
    confirmed_by: Mapped[int] = mapped_column(Integer)


class AlertRow(OfPbx, Base):
    """The transactional outbox: an alert is written in the same batch (one
    transaction) as the records that raised it, and ``sent_at`` is set only
    after the broker acknowledged it (PUBACK)."""

    __tablename__ = "alerts"

    alert_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str | None] = mapped_column(String(64), index=True)
    severity: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[float] = mapped_column(Float, index=True)
    payload: Mapped[str] = mapped_column(Text)  # the JSON published; caller numbers masked
    sent_at: Mapped[float | None] = mapped_column(Float, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: why the alert is never published: ``replay`` (a replay records what it
    #: would have sent; chiefs must not get old news from it) or ``too_old``
    withheld: Mapped[str | None] = mapped_column(String(16))


class AuditEntry(Base):
    """Who saw which unit's personal data (caller numbers) in the web
    console, and when: one row per page or API answer and unit."""

    __tablename__ = "audit_log"

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    user: Mapped[str] = mapped_column(String(255))
    roles: Mapped[str] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(64), index=True)
    what: Mapped[str] = mapped_column(String(255))  # "calls" (a search) or "call <id>"
    records: Mapped[int] = mapped_column(Integer)  # records with numbers in clear
    address: Mapped[str | None] = mapped_column(String(64))


#: Columns holding personal data, per table: the retention purge erases them
#: and an upsert never writes them back into a purged row.
PERSONAL: dict[str, tuple[str, ...]] = {
    "calls": ("caller", "caller_e164", "dialled"),  # and target/answered_by if external
    "callbacks": ("caller", "number"),
    "diversion_intervals": ("message",),
}


class StreamPosition(OfPbx, Base):
    """How far a source's stream has been committed: the restart point."""

    __tablename__ = "stream_positions"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    frames: Mapped[int] = mapped_column(Integer)
    event_time: Mapped[float | None] = mapped_column(Float)


class Checkpoint(OfPbx, Base):
    """A source's live state (calls in progress, presence, queues), saved
    every few seconds and at shutdown: where a restart carries on from.
    Holds caller numbers of calls in progress; replaced, never kept."""

    __tablename__ = "checkpoints"

    source: Mapped[str] = mapped_column(String(255), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    saved_at: Mapped[float] = mapped_column(Float)
    event_time: Mapped[float | None] = mapped_column(Float)
    calls: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(Text)


class PbxLease(Base):
    """Which pbxwatch instance owns a PBX, for the hot standby: only the
    owner writes that PBX's rows.  ``epoch`` goes up at every change of
    owner, and every batch an owner writes first checks that it still
    holds that epoch (fencing: an owner that lost the lease while paused
    cannot write when it resumes, whatever its clock says)."""

    __tablename__ = "pbx_leases"

    pbx: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    epoch: Mapped[int] = mapped_column(Integer)
    #: the database's clock (epoch seconds) at which the lease lapses unless renewed
    expires_at: Mapped[float] = mapped_column(Float)


class MailRow(Base):
    """The mail outbox: one row per message and recipient.  An alert's
    rows are written by the store writer with the alert row; digests and
    morning summaries by the mail sender, rendered, in one transaction with
    what they summarise.  ``status``: ``pending``, ``held`` (raised outside
    the unit's phone hours, waits for the morning summary), ``summarized``
    (went out in ``summary_id``), ``sent``, ``failed`` (a 5xx reply, or too
    many 4xx: recorded in ``reply_code``/``reply``, never retried)."""

    __tablename__ = "mail_outbox"

    mail_id: Mapped[str] = mapped_column(String(400), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # alert, summary, daily, weekly
    unit: Mapped[str | None] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(255))
    lang: Mapped[str] = mapped_column(String(2))
    created_at: Mapped[float] = mapped_column(Float, index=True)  # PBX time
    alert_id: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)  # may hold caller numbers of its unit
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True, server_default="pending")
    summary_id: Mapped[str | None] = mapped_column(String(400))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_try_at: Mapped[float | None] = mapped_column(Float)  # host time
    sent_at: Mapped[float | None] = mapped_column(Float)
    reply_code: Mapped[int | None] = mapped_column(Integer)
    reply: Mapped[str | None] = mapped_column(Text)
