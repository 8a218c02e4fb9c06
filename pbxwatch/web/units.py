"""A unit's page in the console, ``/units/{unit}`` (and ``/api/v1/units/{unit}``),
and its report, ``/units/{unit}/report`` (HTML or PDF, ``all`` for operations).

The page is for the unit's own roles (``chief:<unit>``, ``staff:<unit>``) and
``operations``; never ``it``.  Everything on it is read from the store at the
PBX's time now (the live engine's clock): the open callbacks with their
countdown and state (``pbxwatch.core.figures.callback_state``, as the report
counts them), the deferred ones while the owner is away, the missed forwards
per person this week and this month, the unforwarded absences open now, and
the month's figures against ``settings.targets`` (``pbxwatch.report.build``,
the report's own figures).  Caller numbers are shown only to the unit and to
operations, masked unless the unit has ``show_caller_numbers``; every answer
with numbers in clear is written to the audit log.

The report is ``pbxwatch.reports``' document, the one ``pbxwatch report
--format html|pdf`` makes.  Its inline styles move to a linked sheet so the
console's strict Content-Security-Policy holds.  The whole report (reading
the period's calls, the HTML, the PDF) is made in a child process
(``pbxwatch.reports.worker``), one report at a time, so the AMI reader on
this loop is not held up: a second report waits at most
``REPORT_WAIT_SECONDS`` for the first (then 503), and a report taking more
than ``REPORT_SECONDS`` is stopped (504).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core.figures import callback_state
from pbxwatch.core.numbers import is_pseudonym
from pbxwatch.core.records import iso
from pbxwatch.report import build
from pbxwatch.reports import render as report_render
from pbxwatch.reports import worker
from pbxwatch.reports.details import unit_details
from pbxwatch.reports.document import ALL, values
from pbxwatch.store import models
from pbxwatch.web import schemas, search
from pbxwatch.web.console import Console, show
from pbxwatch.web.deps import client_address, console_of, lang_of, require, viewer
from pbxwatch.web.roles import NumberAccess, Principal

#: at most this many open callbacks are listed (oldest first)
MAX_CALLBACKS = 500
#: the longest report period the console makes (a report reads every call)
MAX_REPORT_DAYS = 800
#: how long a report may take in its child process before it is stopped (504)
REPORT_SECONDS = 300.0
#: how long a report waits for the one being made before it (503)
REPORT_WAIT_SECONDS = 60.0
#: the figures against targets: (key, format, target key, "min"/"max")
TARGET_ROWS = [row for row in report_render.ROWS if row[2] is not None]
PLAIN = ("offered", "answered", "voicemail_messages", "unstaffed_minutes")
PLAIN_ROWS = [row for row in report_render.ROWS if row[0] in PLAIN]

WORDS: dict[str, dict[str, str]] = {
    "sv": {
        "units": "Enheter",
        "unit_page": "Enhetens sida",
        "evaluated": "Läget kl.",
        "open_callbacks": "Öppna återuppringningar",
        "overdue": "Försenade",
        "pending": "Ej förfallna",
        "deferred": "Uppskjutna (ägaren borta)",
        "exempt": "Undantagna",
        "caller": "Uppringare",
        "owner": "Ägare",
        "left_at": "Lämnat",
        "deadline": "Tidsgräns",
        "countdown": "Tid kvar",
        "state": "Status",
        "reason": "Frånvaro",
        "who_may": "Vem får ringa tillbaka",
        "after_return": "förfaller efter återkomsten",
        "returned": "tillbaka",
        "may_owner": "bara ägaren",
        "may_unit": "en kollega i enheten kan ringa nu",
        "may_anyone": "vem som helst kan ringa nu",
        "none_open": "Inga öppna återuppringningar.",
        "none_overdue": "Inga försenade.",
        "none_deferred": "Inga uppskjutna meddelanden.",
        "state_pending": "ej förfallen",
        "state_overdue": "försenad",
        "state_deferred": "uppskjuten",
        "state_exempt": "undantagen",
        "left_in": "om {t}",
        "late_by": "{t} sen",
        "coaching": "Missade hänvisningar per person",
        "coaching_note": "Samtal som ringde obesvarat och gick till röstbrevlåda eller "
        "kontaktcenter utan hänvisning.",
        "person": "Person",
        "this_week": "Denna vecka",
        "this_month": "Denna månad",
        "no_misses": "Inga missade hänvisningar denna månad.",
        "absences": "Ej hänvisad frånvaro nu",
        "absences_note": "Telefonen nåbar inte i telefontid, och ingen hänvisning satt.",
        "since": "Sedan",
        "minutes": "Minuter",
        "no_absences": "Ingen ej hänvisad frånvaro just nu.",
        "figures": "Enhetens mått denna månad mot målen",
        "figure": "Mått",
        "value": "Värde",
        "target": "Mål",
        "meets": "Uppfyllt",
        "yes": "ja",
        "no": "nej",
        "na": "–",
        "report": "Rapport",
        "all_units": "Alla enheter",
        "report_link": "Årets rapport hittills",
        "report_pdf": "som PDF",
        "report_form": "Rapport för en period",
        "from": "Från",
        "to": "Till",
        "format": "Format",
        "show_report": "Visa rapporten",
        "numbers_masked": "Uppringarnummer visas maskerade för dig.",
        "audited": "Att du ser uppringarnummer loggas i granskningsloggen.",
        "more": "Visar de {n} äldsta.",
    },
    "en": {
        "units": "Units",
        "unit_page": "The unit's page",
        "evaluated": "As of",
        "open_callbacks": "Open callbacks",
        "overdue": "Overdue",
        "pending": "Not yet due",
        "deferred": "Deferred (owner away)",
        "exempt": "Exempt",
        "caller": "Caller",
        "owner": "Owner",
        "left_at": "Left",
        "deadline": "Deadline",
        "countdown": "Time left",
        "state": "State",
        "reason": "Absence",
        "who_may": "Who may call back",
        "after_return": "due after the return",
        "returned": "back",
        "may_owner": "the owner only",
        "may_unit": "a colleague in the unit may call now",
        "may_anyone": "anyone may call now",
        "none_open": "No open callbacks.",
        "none_overdue": "None overdue.",
        "none_deferred": "No deferred messages.",
        "state_pending": "not yet due",
        "state_overdue": "overdue",
        "state_deferred": "deferred",
        "state_exempt": "exempt",
        "left_in": "in {t}",
        "late_by": "{t} late",
        "coaching": "Missed forwards per person",
        "coaching_note": "Calls that rang unanswered and ended in voicemail or the "
        "contact centre with no diversion set.",
        "person": "Person",
        "this_week": "This week",
        "this_month": "This month",
        "no_misses": "No missed forwards this month.",
        "absences": "Unforwarded absences now",
        "absences_note": "The phone unreachable in phone hours, with no diversion set.",
        "since": "Since",
        "minutes": "Minutes",
        "no_absences": "No unforwarded absence now.",
        "figures": "The unit's figures this month against the targets",
        "figure": "Figure",
        "value": "Value",
        "target": "Target",
        "meets": "Met",
        "yes": "yes",
        "no": "no",
        "na": "–",
        "report": "Report",
        "all_units": "All units",
        "report_link": "This year's report so far",
        "report_pdf": "as PDF",
        "report_form": "Report for a period",
        "from": "From",
        "to": "To",
        "format": "Format",
        "show_report": "Show the report",
        "numbers_masked": "Caller numbers are shown masked to you.",
        "audited": "That you see caller numbers is written to the audit log.",
        "more": "Showing the {n} oldest.",
    },
}

router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1", responses={
    401: {"model": schemas.Error, "description": "No session: log in"},
    403: {"model": schemas.Error, "description": "Not the viewer's unit"},
    404: {"model": schemas.Error, "description": "No such unit"},
    503: {"model": schemas.Error, "description": "The store is not open (yet)"},
})  # fmt: skip
Viewer = Annotated[Principal, Depends(viewer)]
UnitKey = Annotated[str, Path(max_length=64)]


# ------------------------------------------------------------------ schema


class UnitCallback(BaseModel):
    callback_id: str
    state: str
    caller: str | None
    numbers: NumberAccess
    owner: str | None
    owner_name: str | None
    left_at: str | None
    deadline: str | None
    due_in_seconds: float | None
    deferred_reason: str | None
    returned_at: str | None
    fulfilled_by: str
    listened_at: str | None


class MissedForwards(BaseModel):
    extension: str
    name: str
    week: int
    month: int


class Absence(BaseModel):
    incident_id: str
    extension: str | None
    name: str | None
    since: str | None
    minutes: float


class TargetRow(BaseModel):
    key: str
    value: float | None
    target: float | None
    how: str
    met: bool | None


class UnitPage(BaseModel):
    unit: str
    unit_name: str
    now: str | None
    numbers: NumberAccess
    fulfilled_by: str
    callbacks: list[UnitCallback]
    callbacks_capped: bool
    missed_forwards: list[MissedForwards]
    week_from: str
    month_from: str
    absences: list[Absence]
    figures_from: str
    figures_to: str
    figures: list[TargetRow]
    report: str


# ------------------------------------------------------------------ access


def check_unit(console: Console, who: Principal, unit: str) -> None:
    """The viewer may see ``unit``'s page: their own unit, or operations;
    ``it`` never.  An unknown unit is 404."""
    require(who.operations or bool(who.own_units), "unit pages are for the units and operations")
    if unit not in console.settings.directory.units:
        raise HTTPException(404, "no such unit")
    require(who.operations or who.unit_role(unit) is not None, "not your unit")


def _today(console: Console, now: float) -> dt.date:
    return dt.datetime.fromtimestamp(now, console.tz).date()


def _midnight(console: Console, day: dt.date) -> float:
    return dt.datetime.combine(day, dt.time(0), console.tz).timestamp()


# ------------------------------------------------------------------ data


async def unit_data(console: Console, who: Principal, unit: str) -> tuple[dict[str, Any], int]:
    """The unit page's data, and how many callers it shows in clear."""
    store = console.store
    if store is None:
        raise HTTPException(503, "no store")
    now = console.view.now()
    tz = console.tz
    settings = console.settings
    people = settings.directory.people
    policy = settings.directory.units[unit].callback_policy
    access = who.number_access(unit, console.directory)
    callbacks, capped = await _callbacks(store, unit, now)
    out_callbacks = []
    clear = 0
    for r in callbacks:
        deferred = r.deferred_reason is not None and (r.returned_at is None or now < r.returned_at)
        state = callback_state(
            has_number=r.has_number,
            exempt=r.exempt_reason is not None,
            resolved_at=r.resolved_at,
            deadline=r.deadline if r.deadline is not None else now,
            now=now,
            deferred=deferred,
        )
        number = r.number if r.number and not is_pseudonym(r.number) else None
        if number is None and r.caller and not is_pseudonym(r.caller):
            number = r.caller
        shown = show(number, access)
        if shown is not None and access == "clear":
            clear += 1
        no_deadline = deferred or state == "exempt" or r.deadline is None
        out_callbacks.append(
            {
                "callback_id": r.callback_id,
                "state": state,
                "caller": shown,
                "numbers": access,
                "owner": r.owner,
                "owner_name": people[r.owner].name if r.owner in people else None,
                "left_at": iso(r.left_at, tz),
                "deadline": None if no_deadline else iso(r.deadline, tz),
                "due_in_seconds": None if no_deadline else round(r.deadline - now, 1),
                "deferred_reason": r.deferred_reason,
                "returned_at": iso(r.returned_at, tz),
                "fulfilled_by": policy.fulfilled_by,
                "listened_at": iso(r.listened_at, tz),
            }
        )
    today = _today(console, now)
    week_first = today - dt.timedelta(days=today.weekday())
    month_first = today.replace(day=1)
    misses = await _missed_forwards(
        store, unit, _midnight(console, week_first), _midnight(console, month_first)
    )
    absences = await _absences(store, unit)
    figures = await _figures(store, console, unit, month_first, today, now)
    return {
        "unit": unit,
        "unit_name": settings.directory.units[unit].name,
        "now": iso(now, tz),
        "numbers": access,
        "fulfilled_by": policy.fulfilled_by,
        "callbacks": out_callbacks,
        "callbacks_capped": capped,
        "missed_forwards": [
            {
                "extension": ext,
                "name": people[ext].name if ext in people else ext,
                "week": week,
                "month": month,
            }
            for ext, (week, month) in sorted(misses.items(), key=lambda kv: (-kv[1][1], kv[0]))
        ],
        "week_from": week_first.isoformat(),
        "month_from": month_first.isoformat(),
        "absences": [
            {
                "incident_id": a.incident_id,
                "extension": a.extension,
                "name": people[a.extension].name if a.extension in people else None,
                "since": iso(a.started_at, tz),
                "minutes": round(max(0.0, now - a.started_at) / 60.0, 1),
            }
            for a in absences
        ],
        "figures_from": month_first.isoformat(),
        "figures_to": today.isoformat(),
        "figures": figures,
        "report": f"/units/{unit}/report?from={today.year}-01-01&to={today.isoformat()}",
    }, clear


async def _callbacks(store: AsyncEngine, unit: str, now: float) -> tuple[list[Any], bool]:
    """The unit's callbacks still open (not called back, with a number to
    call), oldest first."""
    cb = models.Callback
    q = (
        select(cb)
        .where(cb.unit == unit, cb.resolved_at.is_(None), cb.has_number.is_(True),
               cb.purged.is_(False), cb.left_at <= now)
        .order_by(cb.left_at, cb.callback_id)
        .limit(MAX_CALLBACKS + 1)
    )  # fmt: skip
    async with store.connect() as conn:
        rows = list((await conn.execute(q)).all())
    return rows[:MAX_CALLBACKS], len(rows) > MAX_CALLBACKS


async def _missed_forwards(
    store: AsyncEngine, unit: str, week_from: float, month_from: float
) -> dict[str, tuple[int, int]]:
    """Missing forwards per extension since the week's and the month's start."""
    i = models.Incident
    q = select(i.extension, i.started_at).where(
        i.kind == "missing_forward", i.unit == unit, i.started_at >= min(week_from, month_from)
    )
    out: dict[str, tuple[int, int]] = {}
    async with store.connect() as conn:
        for ext, at in await conn.execute(q):
            week, month = out.get(ext or "?", (0, 0))
            out[ext or "?"] = (week + (at >= week_from), month + (at >= month_from))
    return {ext: n for ext, n in out.items() if n != (0, 0)}


async def _absences(store: AsyncEngine, unit: str) -> list[Any]:
    i = models.Incident
    q = (
        select(i)
        .where(i.kind == "unforwarded_absence", i.unit == unit, i.state == "open")
        .order_by(i.started_at)
        .limit(200)
    )
    async with store.connect() as conn:
        return list((await conn.execute(q)).all())


async def _figures(
    store: AsyncEngine, console: Console, unit: str, first: dt.date, last: dt.date, now: float
) -> list[dict[str, Any]]:
    """The month so far, the report's figures, against the targets."""
    settings = console.settings
    report = await build(store, settings, unit, first, last, now)
    doc = report.to_json(console.tz)
    start, end = _midnight(console, first), _midnight(console, last + dt.timedelta(days=1))
    limit = settings.directory.units[unit].answer_within_rings
    doc["details"] = await unit_details(store, unit, limit, start, end, console.tz)
    vals = values(doc)
    targets = settings.targets.model_dump()
    queues = [q for q in settings.directory.queues.values() if q.unit == unit]
    skip = set()
    if not queues:
        skip.add("unstaffed_minutes")  # no group number, no contact centre
    if not any(q.kind == "contact_centre" for q in queues):
        skip.add("direct_resolution")
    rows = []
    for key, _kind, tkey, how in PLAIN_ROWS + TARGET_ROWS:
        if key in skip:
            continue
        value = vals.get(key)
        target = targets[tkey] if tkey is not None else None
        met = None
        if value is not None and target is not None:
            met = value >= target if how == "min" else value <= target
        rows.append({"key": key, "value": value, "target": target, "how": how, "met": met,
                     "answer_within_rings": limit})  # fmt: skip
    return rows


# ------------------------------------------------------------------ words


def duration(seconds: float, lang: str) -> str:
    """``2 h 05 min``, ``12 min``, ``3 d 4 h``."""
    s = int(abs(seconds))
    days, rest = divmod(s, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min"


def _view(data: dict[str, Any], lang: str) -> dict[str, Any]:
    """What the template shows beyond the data: countdowns, labels, values."""
    u = WORDS[lang]
    for c in data["callbacks"]:
        left = c["due_in_seconds"]
        if left is None:
            c["countdown"] = u["after_return"] if c["state"] == "deferred" else u["na"]
        elif left >= 0:
            c["countdown"] = u["left_in"].format(t=duration(left, lang))
        else:
            c["countdown"] = u["late_by"].format(t=duration(left, lang))
        c["state_text"] = u.get(f"state_{c['state']}", c["state"])
        c["when"] = (c["left_at"] or "")[:16].replace("T", " ")
        c["deadline_text"] = (c["deadline"] or "")[:16].replace("T", " ") or u["na"]
    for a in data["absences"]:
        a["when"] = (a["since"] or "")[:16].replace("T", " ")
    kinds = {key: kind for key, kind, _t, _h in report_render.ROWS}
    for row in data["figures"]:
        kind = kinds[row["key"]]
        row["label"] = (
            report_render.LABELS[lang][row["key"]]
            .strip()
            .replace("{n}", str(row["answer_within_rings"]))
        )
        row["shown"] = report_render.show(row["value"], kind, lang)
        sign = "≥ " if row["how"] == "min" else "≤ "
        target = row["target"]
        shown = "" if target is None else report_render.show(target, kind, lang)
        row["target_shown"] = "" if target is None else sign + shown
    by_state: dict[str, list[dict[str, Any]]] = {}
    for c in data["callbacks"]:
        by_state.setdefault(c["state"], []).append(c)
    for group in by_state.values():
        group.sort(key=lambda c: c["due_in_seconds"] if c["due_in_seconds"] is not None else 0.0)
    return {"by_state": by_state, "may": u[f"may_{data['fulfilled_by']}"]}


# ------------------------------------------------------------------ routes


async def _audited(request: Request, who: Principal, unit: str) -> dict[str, Any]:
    console = console_of(request)
    check_unit(console, who, unit)
    data, clear = await unit_data(console, who, unit)
    if clear and console.store is not None:
        await search.audit(console.store, who.user, sorted(who.roles), f"unit {unit}",
                           {unit: clear}, client_address(request))  # fmt: skip
    return data


@api_router.get(
    "/units/{unit}", response_model=UnitPage, summary="A unit's open callbacks, coaching list, "
    "unforwarded absences and figures against the targets"
)  # fmt: skip
async def unit_api(request: Request, who: Viewer, unit: UnitKey) -> dict[str, Any]:
    return await _audited(request, who, unit)


@router.get("/units")
async def units_index(request: Request, who: Viewer) -> Response:
    from pbxwatch.web.pages import render

    require(who.operations or bool(who.own_units), "unit pages are for the units and operations")
    console = console_of(request)
    units = console.settings.directory.units
    mine = sorted(u for u in units if who.operations or who.unit_role(u) is not None)
    if len(mine) == 1 and not who.operations:
        return RedirectResponse(f"/units/{mine[0]}", 303)
    lang = lang_of(request)
    return render(request, "units.html", who, u=WORDS[lang],
                  units=[(k, units[k].name) for k in mine])  # fmt: skip


@router.get("/units/{unit}")
async def unit_page(request: Request, who: Viewer, unit: UnitKey) -> HTMLResponse:
    from pbxwatch.web.pages import render

    data = await _audited(request, who, unit)
    lang = lang_of(request)
    return render(request, "unit.html", who, u=WORDS[lang], d=data, **_view(data, lang))


# ------------------------------------------------------------------ report

_STYLE = re.compile(r"<style>(.*?)</style>", re.S)
#: the report's stylesheets by content hash (the same few for every report)
_SHEETS: dict[str, str] = {}


def linked_styles(html: str) -> str:
    """The report's inline ``<style>`` blocks (the page's and each SVG
    chart's) as one linked sheet, so the strict CSP needs no inline style."""
    css = "\n".join(dict.fromkeys(m.group(1) for m in _STYLE.finditer(html)))
    key = hashlib.sha256(css.encode()).hexdigest()[:16]
    if len(_SHEETS) < 16:
        _SHEETS[key] = css
    link = f'<link rel="stylesheet" href="/reports/report-{key}.css">'
    return _STYLE.sub("", html).replace("</head>", f"{link}\n</head>", 1)


@router.get("/reports/report-{key}.css")
async def report_sheet(key: str) -> Response:
    css = _SHEETS.get(key)
    if css is None:
        raise HTTPException(404, "no such sheet")
    return Response(css, media_type="text/css")


def _date(value: str | None, default: dt.date, name: str) -> dt.date:
    if not value:
        return default
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise HTTPException(400, f"{name}: not a date (YYYY-MM-DD)") from exc


@router.get("/units/{unit}/report")
async def unit_report(
    request: Request,
    who: Viewer,
    unit: UnitKey,
    date_from: Annotated[str | None, Query(alias="from", max_length=10)] = None,
    date_to: Annotated[str | None, Query(alias="to", max_length=10)] = None,
    fmt: Annotated[str, Query(alias="format", pattern="^(html|pdf)$")] = "html",
) -> Response:
    """The report of ``unit`` (``all``: every unit, for operations) for
    ``from``..``to`` (local dates; default this year so far)."""
    console = console_of(request)
    if unit == ALL:
        require(who.operations, "the municipality-wide report is for operations")
    else:
        check_unit(console, who, unit)
    store = console.store
    if store is None:
        raise HTTPException(503, "no store")
    now = console.view.now()
    today = _today(console, now)
    first = _date(date_from, today.replace(month=1, day=1), "from")
    last = _date(date_to, today, "to")
    if last < first:
        raise HTTPException(400, "to: before from")
    if (last - first).days >= MAX_REPORT_DAYS:
        raise HTTPException(400, f"a report covers at most {MAX_REPORT_DAYS} days")
    lang = lang_of(request)
    lock: asyncio.Lock | None = getattr(request.app.state, "report_lock", None)
    if lock is None:
        lock = request.app.state.report_lock = asyncio.Lock()
    job = worker.ReportRequest(console.settings, unit, first, last, now, fmt, lang,
                               worker.store_url_for(console.settings, store))  # fmt: skip
    try:
        await asyncio.wait_for(lock.acquire(), REPORT_WAIT_SECONDS)
    except TimeoutError:
        raise HTTPException(
            503, "another report is being made (one at a time); try again in a minute"
        ) from None
    try:  # one report at a time: each reads every call of its period
        data = await worker.in_child(job, REPORT_SECONDS)
    except worker.ReportTimeout as exc:
        raise HTTPException(504, f"{exc}: choose a shorter period") from None
    except worker.ReportFailed as exc:
        raise HTTPException(500, f"the report could not be made: {exc}") from None
    finally:
        lock.release()
    if fmt == "pdf":
        name = f"pbxwatch-{unit}-{first.isoformat()}-{last.isoformat()}.pdf"
        disposition = f'attachment; filename="{name}"'
        return Response(data, media_type="application/pdf",
                        headers={"content-disposition": disposition})  # fmt: skip
    return HTMLResponse(linked_styles(data.decode()))
