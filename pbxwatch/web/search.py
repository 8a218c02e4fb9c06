"""The console's reads from the store: call search, one call with its
rings and incidents, the incidents feed, gaps today, and the audit log.

Every query is bounded (a page of at most ``MAX_LIMIT`` rows) and uses
the indexes of migrations 0007, 0010 and 0011: a unit's or a target's calls
by time, an extension's calls and rings newest first, incidents by call,
caller digits (trigrams on PostgreSQL).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ARRAY,
    Select,
    String,
    Subquery,
    any_,
    func,
    insert,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from pbxwatch.core.records import iso
from pbxwatch.store import models

#: the selects of an extension's three sources, whatever their columns
_R = TypeVar("_R", bound="Select[*tuple[Any, ...]]")
_T = TypeVar("_T", bound="Select[*tuple[Any, ...]]")

MAX_LIMIT = 200
#: a search counts its matches up to this many
COUNT_CAP = 10_000
#: a caller pattern: digits (a leading +), ``*`` for one hidden digit
CALLER_PATTERN = re.compile(r"^\+?[0-9*]{1,20}$")
#: what a masked number shows (``+4670*****67``): a viewer who sees masked
#: numbers may search by that much and no more, so search is no oracle
MASKED_PATTERN = re.compile(r"^(\+\d{0,4}|\d{0,4})\*+\d{0,2}$")


class SearchError(ValueError):
    """A filter the viewer may not use (the message says why)."""


@dataclass(frozen=True, slots=True)
class CallFilter:
    start: float | None = None
    end: float | None = None
    unit: str | None = None
    target: str | None = None
    outcome: str | None = None
    extension: str | None = None
    caller: str | None = None
    direction: str | None = None


def caller_like(pattern: str, *, clear: bool) -> str:
    """The SQL LIKE for a caller pattern; a viewer without numbers in clear
    may only give the masked form (anchored, as many digits as it shows)."""
    if not CALLER_PATTERN.match(pattern):
        raise SearchError("caller: digits, a leading + and * for hidden digits only")
    if not clear and not MASKED_PATTERN.match(pattern):
        raise SearchError(
            "caller: you see masked numbers; search by the masked form, e.g. +4670*****67"
        )
    if "*" in pattern:
        return pattern.replace("*", "_")
    return f"%{pattern}%"


class _ArrayOf(FunctionElement[Any]):
    """PostgreSQL's ``ARRAY(subquery)``: the subquery's rows as one array."""

    inherit_cache = True
    name = "array_of"
    type = ARRAY(String())


@compiles(_ArrayOf, "postgresql")
def _array_of(element: _ArrayOf, compiler: Any, **kw: Any) -> str:
    return f"ARRAY{compiler.process(element.clauses, **kw)}"


def _filtered(
    stmt: Select[Any],
    f: CallFilter,
    units: frozenset[str] | None,
    clear: bool,
    postgres: bool = False,
) -> Select[Any]:
    c = models.Call
    if units is not None:
        stmt = stmt.where(c.unit.in_(sorted(units)))
    if f.start is not None:
        stmt = stmt.where(c.started_at >= f.start)
    if f.end is not None:
        stmt = stmt.where(c.started_at < f.end)
    if f.unit is not None:
        stmt = stmt.where(c.unit == f.unit)
    if f.target is not None:
        stmt = stmt.where(c.target == f.target)
    if f.outcome is not None:
        stmt = stmt.where(c.outcome == f.outcome)
    if f.direction is not None:
        stmt = stmt.where(c.direction == f.direction)
    if f.extension is not None:  # rang, was the target or answered: one small set of ids
        r, ext = models.Ring, f.extension
        rang = select(r.call_id).where(r.extension == ext)
        targeted = select(c.call_id).where(c.target == ext)
        answered = select(c.call_id).where(c.answered_by == ext)
        rang, targeted, answered = _in_range(f, rang, targeted, answered)
        ids = union(rang, targeted, answered)
        if postgres:
            # ``call_id = ANY(ARRAY(SELECT ...))``: the ids first, then each
            # call by its key.  With ``IN (...)`` PostgreSQL walked the whole
            # year newest first looking for them (``LIMIT 50`` made that look
            # cheap), with a join it read every call for a hash join: 0.4 to
            # 1.5 s on 2 million calls (bench/console.py)
            stmt = stmt.where(c.call_id == any_(_ArrayOf(ids.scalar_subquery())))
        else:
            stmt = stmt.where(c.call_id.in_(ids))
    if f.caller is not None:
        like = caller_like(f.caller, clear=clear)
        stmt = stmt.where(or_(c.caller_e164.like(like), c.caller.like(like)))
    return stmt


async def search_calls(
    store: AsyncEngine,
    f: CallFilter,
    units: frozenset[str] | None,
    *,
    clear: bool,
    limit: int,
    offset: int,
) -> tuple[list[Any], int, bool]:
    """A page of calls (newest first), how many match in all, and whether
    that is only a lower bound (more than ``COUNT_CAP`` match: counting a
    year of a large municipality's calls would cost more than the page)."""
    c = models.Call
    pg = store.dialect.name == "postgresql"
    limit = min(limit, MAX_LIMIT)
    if _extension_only(f, units):
        newest = union_all(*_extension_newest(f, offset + limit)).subquery("mine")
        ids = (
            select(newest.c.started_at, newest.c.call_id)
            .distinct()  # a call both rang and answered by the extension comes twice
            .order_by(newest.c.started_at.desc(), newest.c.call_id)
            .limit(limit)
            .offset(offset)
            .subquery()
        )
        page = (
            select(c).join(ids, c.call_id == ids.c.call_id).order_by(c.started_at.desc(), c.call_id)
        )
        count = select(func.count()).select_from(
            union(*_extension_newest(f, COUNT_CAP + 1)).subquery()
        )
    else:
        page = (
            _filtered(select(c), f, units, clear, pg)
            .order_by(c.started_at.desc(), c.call_id)
            .limit(limit)
            .offset(offset)
        )
        matching = _filtered(select(c.call_id), f, units, clear, pg).limit(COUNT_CAP + 1)
        count = select(func.count()).select_from(matching.subquery())
    async with store.connect() as conn:
        rows = (await conn.execute(page)).all()
        total = int((await conn.execute(count)).scalar_one())
    return list(rows), min(total, COUNT_CAP), total > COUNT_CAP


def _extension_only(f: CallFilter, units: frozenset[str] | None) -> bool:
    """An extension, perhaps a time range, and nothing else: what
    :func:`_extension_newest` answers from the indexes alone."""
    others = (f.unit, f.target, f.outcome, f.direction, f.caller)
    return f.extension is not None and units is None and all(v is None for v in others)


def _extension_newest(f: CallFilter, n: int) -> list[Select[Any]]:
    """The newest ``n`` calls of ``f.extension`` (newest first, then by id)
    from each of the three sources: the calls it rang (each call once), the
    calls for it and the calls it answered, as ``(started_at, call_id)``.

    Each is an index-only scan in that very order (migration 0011: rings
    carry their call's start) stopped after ``n``, so a page reads about
    three times its length of index entries and a count capped at
    ``COUNT_CAP`` at most ``COUNT_CAP + 1`` per source (the union of the
    three has as many as there are, up to the cap), where before every call
    of the extension was read by key to order them (a contact-centre agent:
    ~14 000 a year).  Same matches as :func:`_filtered`: a time range bounds
    the call's start, and a ring's own start too."""
    c, r, ext = models.Call, models.Ring, f.extension
    rang = select(r.call_started_at.label("started_at"), r.call_id).where(r.extension == ext)
    targeted = select(c.started_at, c.call_id).where(c.target == ext)
    answered = select(c.started_at, c.call_id).where(c.answered_by == ext)
    rang, targeted, answered = _in_range(f, rang, targeted, answered)
    rang = rang.distinct().order_by(r.call_started_at.desc(), r.call_id)  # rung twice: once
    targeted = targeted.order_by(c.started_at.desc(), c.call_id)
    answered = answered.order_by(c.started_at.desc(), c.call_id)
    out: list[Select[Any]] = []
    for source in (rang, targeted, answered):
        top: Subquery = source.limit(n).subquery()
        out.append(select(top.c.started_at, top.c.call_id))
    return out


async def one_call(store: AsyncEngine, call_id: str) -> tuple[Any, list[Any], list[Any]] | None:
    """A call, its rings in order and its incidents; ``None`` if unknown."""
    async with store.connect() as conn:
        call = (
            await conn.execute(select(models.Call).where(models.Call.call_id == call_id))
        ).first()
        if call is None:
            return None
        r, i = models.Ring, models.Incident
        rings = (await conn.execute(select(r).where(r.call_id == call_id).order_by(r.seq))).all()
        incidents = (
            await conn.execute(select(i).where(i.call_id == call_id).order_by(i.started_at))
        ).all()
    return call, list(rings), list(incidents)


async def incidents(
    store: AsyncEngine,
    units: frozenset[str] | None,
    *,
    kind: str | None,
    unit: str | None,
    start: float | None,
    end: float | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    i = models.Incident

    def where(stmt: Select[Any]) -> Select[Any]:
        if units is not None:
            stmt = stmt.where(i.unit.in_(sorted(units)))
        if kind is not None:
            stmt = stmt.where(i.kind == kind)
        if unit is not None:
            stmt = stmt.where(i.unit == unit)
        if start is not None:
            stmt = stmt.where(i.started_at >= start)
        if end is not None:
            stmt = stmt.where(i.started_at < end)
        return stmt

    page = where(select(i)).order_by(i.started_at.desc(), i.incident_id)
    async with store.connect() as conn:
        rows = (await conn.execute(page.limit(min(limit, MAX_LIMIT)).offset(offset))).all()
        total = int((await conn.execute(where(select(func.count()).select_from(i)))).scalar_one())
    return list(rows), total


async def gaps_since(store: AsyncEngine, since: float) -> int:
    g = models.AmiGap
    q = (
        select(func.count())
        .select_from(g)
        .where(or_(g.started_at >= since, g.ended_at.is_(None), g.ended_at >= since))
    )
    async with store.connect() as conn:
        return int((await conn.execute(q)).scalar_one())


async def audit(
    store: AsyncEngine,
    user: str,
    roles: Sequence[str],
    what: str,
    units: dict[str | None, int],
    address: str | None,
) -> None:
    """Note that ``user`` saw caller numbers in clear: records per unit."""
    if not units:
        return
    now = time.time()
    rows = [
        {
            "at": now,
            "user": user[:255],
            "roles": " ".join(sorted(roles)),
            "unit": unit,
            "what": what[:255],
            "records": n,
            "address": address,
        }
        for unit, n in sorted(units.items(), key=lambda kv: kv[0] or "")
    ]
    async with store.begin() as conn:
        await conn.execute(insert(models.AuditEntry), rows)


def audit_json(row: Any, tz: ZoneInfo) -> dict[str, Any]:
    """One audit entry as the API and the audit page show it."""
    return {"at": iso(row.at, tz), "user": row.user, "roles": row.roles, "unit": row.unit,
            "what": row.what, "records": row.records, "address": row.address}  # fmt: skip


async def audit_entries(
    store: AsyncEngine, unit: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    a = models.AuditEntry
    page = select(a).order_by(a.at.desc(), a.entry_id.desc())
    count = select(func.count()).select_from(a)
    if unit is not None:
        page, count = page.where(a.unit == unit), count.where(a.unit == unit)
    async with store.connect() as conn:
        rows = (await conn.execute(page.limit(min(limit, MAX_LIMIT)).offset(offset))).all()
        total = int((await conn.execute(count)).scalar_one())
    return list(rows), total


def _in_range(f: CallFilter, rang: _R, targeted: _T, answered: _T) -> tuple[_R, _T, _T]:
    """The three sources of an extension's calls (it rang, was the target,
    answered) bounded by the filter's time range: the call's start (for a
    ring, its call's start as 0011 stores it, which its index is by) and a
    ring's own start too."""
    c, r = models.Call, models.Ring
    if f.start is not None:
        rang = rang.where(r.call_started_at >= f.start, r.started_at >= f.start)
        targeted = targeted.where(c.started_at >= f.start)
        answered = answered.where(c.started_at >= f.start)
    if f.end is not None:
        rang = rang.where(r.call_started_at < f.end, r.started_at < f.end)
        targeted = targeted.where(c.started_at < f.end)
        answered = answered.where(c.started_at < f.end)
    return rang, targeted, answered
