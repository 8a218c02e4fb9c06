"""Core records to table rows, by column name; pure."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import fields
from functools import cache
from typing import Any

from pbxwatch.core.alerts import Alert
from pbxwatch.core.callbacks import Callback, CallbackChange
from pbxwatch.core.clock import ClockStep
from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.core.engine import Record
from pbxwatch.core.gaps import AmiGap
from pbxwatch.core.incidents import Incident
from pbxwatch.core.records import CallRecord
from pbxwatch.store import models

Row = tuple[str, dict[str, Any]]


@cache
def _columns(table: str) -> tuple[str, ...]:
    return tuple(models.Base.metadata.tables[table].columns.keys())


_SHARED: dict[tuple[str, type], tuple[str, ...]] = {}


def _shared(table: str, kind: type) -> tuple[str, ...]:
    """The columns of ``table`` that records of type ``kind`` have an
    attribute for (dataclass fields and properties), found once per type."""
    key = (table, kind)
    if key not in _SHARED:
        names = {f.name for f in fields(kind)} | {n for n in dir(kind) if not n.startswith("_")}
        _SHARED[key] = tuple(c for c in _columns(table) if c in names)
    return _SHARED[key]


def _pick(table: str, obj: Any, **more: Any) -> Row:
    """The columns of ``table`` that ``obj`` has an attribute for, plus ``more``.

    Columns only the database has (``purged``) are left out, so an upsert
    never undoes what the retention purge did to a row."""
    row = {c: getattr(obj, c) for c in _shared(table, type(obj)) if c not in more}
    row.update(more)
    return table, row


def rows_of(
    rec: Record, pseudonym: Callable[[str], str] | None = None, pbx: str = models.DEFAULT_PBX
) -> list[Row]:
    """Rows for one record of the PBX ``pbx`` (its ids already that PBX's:
    ``pbxwatch.stamp``), with citizens' numbers pseudonymised when a
    ``pseudonym`` is given.  Reminders (``CallbackEvent``) need none: the
    change of flags they cause comes as a ``CallbackChange`` too."""
    rows = _rows_of(rec)
    for _, row in rows:  # every table rows_of makes is one PBX's
        row["pbx"] = pbx
    if pseudonym is not None:
        for table, row in rows:
            for col in _citizen_numbers(table, row):
                if row.get(col):
                    row[col] = pseudonym(row[col])
    return rows


def _citizen_numbers(table: str, row: dict[str, Any]) -> tuple[str, ...]:
    """The columns of ``row`` that hold a citizen's number (a colleague's
    extension, the municipality's own numbers and queue names stay)."""
    if table == "callbacks":
        return ("caller", "number")
    if table != "calls":
        return ()
    cols: tuple[str, ...] = ()
    if row.get("direction") == "inbound":
        cols += ("caller", "caller_e164")
    if row.get("direction") == "outbound":
        cols += ("dialled",)
    if row.get("target_kind") == "external":
        cols += ("target", "answered_by")
    return cols


def _rows_of(rec: Record) -> list[Row]:
    if isinstance(rec, CallRecord):
        call = _pick("calls", rec, unit=rec.target_unit, queues=rec.queues)
        start = rec.started_at  # on each ring too: an extension's calls come off one index
        rings = [
            _pick("rings", ring, call_id=rec.call_id, seq=seq, unit=None, call_started_at=start)
            for seq, ring in enumerate(rec.rings)
        ]
        return [call, *rings]
    if isinstance(rec, Incident):
        rows = [_pick("incidents", rec)]
        if rec.kind == "group_unstaffed" and rec.queue is not None:
            rows.append(_pick("unstaffed_intervals", rec, start=rec.started_at, end=rec.ended_at))
        return rows
    if isinstance(rec, CallbackChange):
        cb = rec.callback
        return [_pick("callbacks", cb, has_number=cb.number is not None)]
    if isinstance(rec, DiversionInterval):
        return [_pick("diversion_intervals", rec)]
    if isinstance(rec, AmiGap):
        reconciled = json.dumps(dict(rec.reconciled), sort_keys=True)
        return [_pick("ami_gaps", rec, reconciled=reconciled)]
    if isinstance(rec, ClockStep):
        return [_pick("clock_steps", rec)]
    if isinstance(rec, Alert):
        payload = json.dumps(rec.payload(), ensure_ascii=False, sort_keys=True)
        return [_pick("alerts", rec, payload=payload)]
    return []


def callback_of_row(row: Any) -> Callback:
    """A stored callback back into the core (restart recovery)."""
    values = {f.name: getattr(row, f.name) for f in fields(Callback)}
    if not row.has_number:
        values["number"] = None
    return Callback(**values)


def incident_of_row(row: Any) -> Incident:
    """A stored incident back into the core (restart recovery)."""
    return Incident(**{f.name: getattr(row, f.name) for f in fields(Incident)})
