"""The console's state shared by pages, API and SSE: the live view, the
store, login, and what each viewer may see of them."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.directory import Directory
from pbxwatch.core.numbers import mask
from pbxwatch.core.records import iso
from pbxwatch.settings import Settings
from pbxwatch.web import search
from pbxwatch.web.auth import Auth
from pbxwatch.web.live import LiveView
from pbxwatch.web.roles import NumberAccess, Principal

#: gaps today are counted in the store at most this often
GAPS_CACHE_SECONDS = 10.0
#: the live incidents feed reads the store at most this often per set of
#: units, however many clients follow it
INCIDENTS_CACHE_SECONDS = 2.0
INCIDENTS_SHOWN = 100


def show(value: str | None, access: NumberAccess) -> str | None:
    if value is None or access == "clear":
        return value if access == "clear" else None
    return mask(value) if access == "masked" else None


@dataclass
class Console:
    settings: Settings
    view: LiveView
    store: AsyncEngine | None
    auth: Auth
    stopping: bool = False
    _gaps: tuple[float, int | None] = field(default=(0.0, None), init=False)
    _incidents: dict[frozenset[str] | None, tuple[float, list[dict[str, Any]]]] = field(
        default_factory=dict, init=False
    )
    _incidents_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)
    _directory: Directory | None = field(default=None, init=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @property
    def directory(self) -> Directory:
        """Who is who: the one PBX's core's, or with many PBXs the whole
        configuration's (each core has its own PBX's part)."""
        if not self.view.others:
            return self.view.engine.directory
        if self._directory is None:
            self._directory = self.settings.directory_model()
        return self._directory

    def names(self) -> dict[str, str]:
        return {ext: p.name for ext, p in self.settings.directory.people.items()}

    async def gaps_today(self) -> int | None:
        at, n = self._gaps
        if self.store is None:
            return None
        if time.monotonic() - at < GAPS_CACHE_SECONDS:
            return n
        try:
            n = await search.gaps_since(self.store, self.view.day_start())
        except (SQLAlchemyError, OSError):
            n = None
        self._gaps = (time.monotonic(), n)
        return n

    def incident_item(self, r: Any) -> dict[str, Any]:
        """One incident as the feed shows it (no personal data)."""
        return {
            "incident_id": r.incident_id,
            "pbx": r.pbx,
            "kind": r.kind,
            "state": r.state,
            "started_at": iso(r.started_at, self.tz),
            "unit": r.unit,
            "extension": r.extension,
            "queue": r.queue,
            "call_id": r.call_id,
        }

    async def incidents_feed(self, units: frozenset[str] | None) -> list[dict[str, Any]]:
        """The newest incidents of ``units`` (``None``: all), read from the
        store at most every ``INCIDENTS_CACHE_SECONDS`` for all the SSE
        clients with those units."""
        if self.store is None:
            return []
        async with self._incidents_lock:
            at, items = self._incidents.get(units, (0.0, []))
            if time.monotonic() - at < INCIDENTS_CACHE_SECONDS:
                return items
            try:
                rows, _ = await search.incidents(self.store, units, kind=None, unit=None,
                                                 start=None, end=None,
                                                 limit=INCIDENTS_SHOWN, offset=0)  # fmt: skip
                items = [self.incident_item(r) for r in rows]
            except (SQLAlchemyError, OSError):
                pass  # the store is away: what was last read
            if len(self._incidents) > 64:  # a few role sets in practice
                self._incidents.clear()
            self._incidents[units] = (time.monotonic(), items)
            return items

    async def wallboard(self, who: Principal, pbx: str | None = None) -> dict[str, Any]:
        """What the wallboard shows this viewer (no personal data): every
        PBX's queues, or ``pbx``'s only."""
        queues = [q for q in self.view.queues()
                  if who.sees_unit(q["unit"]) and pbx in (None, q["pbx"])]  # fmt: skip
        health = self.view.health_view(await self.gaps_today()) if who.sees_health else None
        return {"queues": queues, "health": health, "ami_up": self.view.ami_up,
                "pbxs": self.view.pbxs, "pbx": pbx}  # fmt: skip

    # ----------------------------------------------------------------- calls

    def call_out(self, row: Any, who: Principal) -> tuple[dict[str, Any], NumberAccess]:
        """A stored call as this viewer may see it."""
        access = who.number_access(row.unit, self.directory)
        external = row.target_kind == "external"
        out = {
            "call_id": row.call_id,
            "pbx": row.pbx,
            "started_at": iso(row.started_at, self.tz),
            "ended_at": iso(row.ended_at, self.tz),
            "duration_seconds": None
            if row.ended_at is None
            else round(row.ended_at - row.started_at, 3),
            "direction": row.direction,
            "caller": show(row.caller, access),
            "caller_e164": show(row.caller_e164, access),
            "numbers": access,
            "dialled": show(row.dialled, access) if row.direction == "outbound" else row.dialled,
            "target_kind": row.target_kind,
            "target": show(row.target, access) if external else row.target,
            "unit": row.unit,
            "outcome": row.outcome,
            "answered_by": show(row.answered_by, access) if external else row.answered_by,
            "answer_seconds": row.answer_seconds,
            "rings_before_answer": row.rings_before_answer,
            "voicemail_mailbox": row.voicemail_mailbox,
            "diverted": bool(row.diverted),
            "overflowed_to_contact_centre": bool(row.overflowed_to_contact_centre),
            "transferred_to": row.transferred_to,
            "abandoned_where": row.abandoned_where,
            "short_abandon": bool(row.short_abandon),
            "queues": list(row.queues or []),
            "complete": bool(row.complete),
            "across_gap": bool(row.across_gap),
        }
        return out, access

    async def find_calls(
        self,
        who: Principal,
        f: search.CallFilter,
        *,
        limit: int,
        offset: int,
        what: str,
        address: str | None,
    ) -> tuple[list[tuple[dict[str, Any], NumberAccess]], int, bool]:
        """A call search as ``who`` may make it (their units, numbers in
        clear where they may), each call as they may see it, and what they
        saw in clear audited: (shown, total, capped).  Raises
        ``search.SearchError`` for a filter it cannot take."""
        assert self.store is not None
        rows, total, capped = await search.search_calls(
            self.store, f, who.call_units(), clear=who.clear_everywhere(self.directory),
            limit=limit, offset=offset,
        )  # fmt: skip
        shown = [self.call_out(r, who) for r in rows]
        await self.audit(who, what, rows, [a for _, a in shown], address)
        return shown, total, capped

    async def audit(
        self,
        who: Principal,
        what: str,
        rows: list[Any],
        accesses: list[NumberAccess],
        address: str | None,
    ) -> None:
        """Write down which units' numbers in clear the viewer just got."""
        if self.store is None:
            return
        seen: Counter[str | None] = Counter()
        for row, access in zip(rows, accesses, strict=True):
            personal = (
                row.caller or row.caller_e164 or (row.direction == "outbound" and row.dialled)
            )
            if access == "clear" and personal:
                seen[row.unit] += 1
        await search.audit(self.store, who.user, sorted(who.roles), what, dict(seen), address)

    def epoch(self, value: dt.datetime | None) -> float | None:
        """A datetime from a query (naive = the site's local time)."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.timestamp()
