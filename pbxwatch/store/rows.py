"""Core records to table rows: one function per record type, pure."""

from __future__ import annotations

from typing import Any

from pbxwatch.core.callbacks import Callback, CallbackChange, CallbackEvent
from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.core.engine import Record
from pbxwatch.core.incidents import Incident
from pbxwatch.core.records import CallRecord

Row = tuple[str, dict[str, Any]]


def rows_of(rec: Record) -> list[Row]:
    if isinstance(rec, CallRecord):
        return _call_rows(rec)
    if isinstance(rec, Incident):
        return _incident_rows(rec)
    if isinstance(rec, CallbackChange):
        return [("callbacks", callback_row(rec.callback))]
    if isinstance(rec, CallbackEvent):
        return [("callbacks", callback_row(rec.callback))]
    if isinstance(rec, DiversionInterval):
        return [("diversion_intervals", _diversion_row(rec))]
    return []


def _call_rows(rec: CallRecord) -> list[Row]:
    call = {
        "call_id": rec.call_id,
        "started_at": rec.started_at,
        "ended_at": rec.ended_at,
        "direction": rec.direction,
        "caller": rec.caller,
        "caller_e164": rec.caller_e164,
        "dialled": rec.dialled,
        "target_kind": rec.target_kind,
        "target": rec.target,
        "unit": rec.target_unit,
        "outcome": rec.outcome,
        "answered_by": rec.answered_by,
        "answer_seconds": rec.answer_seconds,
        "rings_before_answer": rec.rings_before_answer,
        "voicemail_mailbox": rec.voicemail_mailbox,
        "diverted": rec.diverted,
        "overflowed_to_contact_centre": rec.overflowed_to_contact_centre,
        "transferred_to": rec.transferred_to,
        "abandoned_where": rec.abandoned_where,
        "short_abandon": rec.short_abandon,
        "queues": list(rec.queues),
        "complete": rec.complete,
    }
    rows: list[Row] = [("calls", call)]
    for seq, ring in enumerate(rec.rings):
        rows.append(
            (
                "rings",
                {
                    "call_id": rec.call_id,
                    "seq": seq,
                    "extension": ring.extension,
                    "unit": None,
                    "queue": ring.queue,
                    "started_at": ring.started_at,
                    "seconds": ring.seconds,
                    "rings": ring.rings,
                    "result": ring.result,
                },
            )
        )
    return rows


def _incident_rows(inc: Incident) -> list[Row]:
    rows: list[Row] = [
        (
            "incidents",
            {
                "incident_id": inc.incident_id,
                "kind": inc.kind,
                "state": inc.state,
                "started_at": inc.started_at,
                "ended_at": inc.ended_at,
                "unit": inc.unit,
                "extension": inc.extension,
                "queue": inc.queue,
                "call_id": inc.call_id,
                "details": inc.details,
            },
        )
    ]
    if inc.kind == "group_unstaffed" and inc.queue is not None:
        rows.append(
            (
                "unstaffed_intervals",
                {
                    "incident_id": inc.incident_id,
                    "queue": inc.queue,
                    "unit": inc.unit,
                    "start": inc.started_at,
                    "end": inc.ended_at,
                },
            )
        )
    return rows


def callback_row(cb: Callback) -> dict[str, Any]:
    return {
        "callback_id": cb.callback_id,
        "call_id": cb.call_id,
        "mailbox": cb.mailbox,
        "owner": cb.owner,
        "unit": cb.unit,
        "caller": cb.caller,
        "number": cb.number,
        "has_number": cb.number is not None,
        "left_at": cb.left_at,
        "deadline": cb.deadline,
        "resolved_at": cb.resolved_at,
        "resolved_by_call": cb.resolved_by_call,
        "resolved_from": cb.resolved_from,
        "listened_at": cb.listened_at,
        "exempt_reason": cb.exempt_reason,
        "due_soon_sent": cb.due_soon_sent,
        "overdue_sent": cb.overdue_sent,
    }


def callback_of_row(row: Any) -> Callback:
    """A stored callback back into the core (restart recovery)."""
    return Callback(
        callback_id=row.callback_id,
        call_id=row.call_id,
        mailbox=row.mailbox,
        owner=row.owner,
        unit=row.unit,
        caller=row.caller,
        number=row.number if row.has_number else None,
        left_at=row.left_at,
        deadline=row.deadline,
        exempt_reason=row.exempt_reason,
        resolved_at=row.resolved_at,
        resolved_by_call=row.resolved_by_call,
        resolved_from=row.resolved_from,
        listened_at=row.listened_at,
        due_soon_sent=row.due_soon_sent,
        overdue_sent=row.overdue_sent,
    )


def _diversion_row(d: DiversionInterval) -> dict[str, Any]:
    return {
        "interval_id": d.interval_id,
        "extension": d.extension,
        "unit": d.unit,
        "source": d.source,
        "state": d.state,
        "subtype": d.subtype,
        "message": d.message,
        "start": d.start,
        "end": d.end,
    }
