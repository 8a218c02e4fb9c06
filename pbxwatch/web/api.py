"""The JSON API, ``/api/v1``: the same data and the same authorisation as
the pages (OpenAPI at ``/api/v1/openapi.json``)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from pbxwatch.core.records import iso
from pbxwatch.web import schemas, search
from pbxwatch.web.deps import client_address, console_of, lang_of, page, require, viewer
from pbxwatch.web.roles import Principal
from pbxwatch.web.timeline import classify, timeline

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.Error, "description": "No session: log in"},
    403: {"model": schemas.Error, "description": "Not for the viewer's roles"},
    503: {"model": schemas.Error, "description": "The store is not open (yet)"},
}
BAD: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.Error, "description": "A filter the viewer may not use"}
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.Error, "description": "No such call (for this viewer)"}
}

router = APIRouter(prefix="/api/v1", responses=ERRORS)
Viewer = Annotated[Principal, Depends(viewer)]
Text = Annotated[str | None, Query(max_length=64, pattern=r"^[\w.@:*+ -]+$")]


def _epoch(request: Request, value: dt.datetime | None, name: str) -> float | None:
    try:
        return console_of(request).epoch(value)
    except (OverflowError, ValueError, OSError) as exc:
        raise HTTPException(400, f"{name}: out of range") from exc


def _incident(row: Any, request: Request) -> dict[str, Any]:
    tz = console_of(request).tz
    return {
        "incident_id": row.incident_id,
        "pbx": row.pbx,
        "kind": row.kind,
        "state": row.state,
        "started_at": iso(row.started_at, tz),
        "ended_at": iso(row.ended_at, tz),
        "unit": row.unit,
        "extension": row.extension,
        "queue": row.queue,
        "call_id": row.call_id,
        "details": dict(row.details or {}),
    }


@router.get(
    "/queues",
    response_model=list[schemas.Queue],
    summary="Every queue and group number the viewer may see, now",
)
async def queues(
    request: Request,
    who: Viewer,
    pbx: Annotated[str | None, Query(description="only this PBX's (its id)")] = None,
) -> list[dict[str, Any]]:
    require(who.any_role, "no console role")
    return [q for q in console_of(request).view.queues()
            if who.sees_unit(q["unit"]) and pbx in (None, q["pbx"])]  # fmt: skip


@router.get("/health", response_model=schemas.Health, summary="pbxwatch's own health")
async def health(request: Request, who: Viewer) -> dict[str, Any]:
    require(who.sees_health, "health is for operations and it")
    console = console_of(request)
    return console.view.health_view(await console.gaps_today())


@router.get(
    "/calls", response_model=schemas.CallPage, responses=BAD, summary="Finished calls, newest first"
)
async def calls(
    request: Request,
    who: Viewer,
    start: Annotated[
        dt.datetime | None, Query(description="from (ISO 8601; naive = local)")
    ] = None,
    end: Annotated[dt.datetime | None, Query(description="until, exclusive")] = None,
    unit: Text = None,
    target: Text = None,
    outcome: schemas.Outcome | None = None,
    direction: schemas.Direction | None = None,
    extension: Text = None,
    caller: Annotated[
        str | None,
        Query(
            max_length=24, description="digits, * for hidden ones (masked form for masked viewers)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    require(who.sees_calls, "calls are for operations and the units' own roles")
    console = console_of(request)
    if console.store is None:
        raise HTTPException(503, "no store")
    f = search.CallFilter(
        start=_epoch(request, start, "start"),
        end=_epoch(request, end, "end"),
        unit=unit,
        target=target,
        outcome=outcome,
        extension=extension,
        caller=caller,
        direction=direction,
    )
    try:
        shown, total, capped = await console.find_calls(
            who, f, limit=limit, offset=offset, what="api calls", address=client_address(request)
        )
    except search.SearchError as exc:
        raise HTTPException(400, str(exc)) from exc
    return {
        "calls": [c for c, _ in shown],
        "total_capped": capped,
        **page(total, limit, offset, len(shown)),
    }


async def call_detail(request: Request, who: Principal, call_id: str) -> dict[str, Any]:
    """One call with its rings, incidents, timeline and classification
    (shared by the page and the API); 404 when not the viewer's."""
    require(who.sees_calls, "calls are for operations and the units' own roles")
    console = console_of(request)
    found = await search.one_call(console.store, call_id) if console.store is not None else None
    if found is None or not who.sees_call_of(found[0].unit):
        raise HTTPException(404, "no such call")
    call, rings, incidents = found
    out, access = console.call_out(call, who)
    lang = lang_of(request)
    kind, why = classify(call, rings, incidents, lang)
    steps = timeline(call, rings, out["caller_e164"] or out["caller"], console.names(), lang)
    await console.audit(who, f"call {call_id}", [call], [access], client_address(request))
    return {
        "call": out,
        "rings": [
            {
                "seq": r.seq,
                "extension": r.extension,
                "queue": r.queue,
                "started_at": iso(r.started_at, console.tz),
                "seconds": r.seconds,
                "rings": r.rings,
                "result": r.result,
            }
            for r in rings
        ],
        "incidents": [_incident(i, request) for i in incidents],
        "timeline": [s.to_json(console.tz) for s in steps],
        "classification": kind,
        "why": why,
    }


@router.get(
    "/calls/{call_id}",
    response_model=schemas.CallDetail,
    responses=NOT_FOUND,
    summary="One call: timeline, classification and why",
)
async def call(
    request: Request, who: Viewer, call_id: Annotated[str, Path(max_length=64)]
) -> dict[str, Any]:
    return await call_detail(request, who, call_id)


@router.get("/incidents", response_model=schemas.IncidentPage, summary="Incidents, newest first")
async def incidents(
    request: Request,
    who: Viewer,
    kind: schemas.IncidentKind | None = None,
    unit: Text = None,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    require(who.sees_calls, "incidents are for operations and the units' own roles")
    console = console_of(request)
    if console.store is None:
        raise HTTPException(503, "no store")
    rows, total = await search.incidents(
        console.store,
        who.call_units(),
        kind=kind,
        unit=unit,
        start=_epoch(request, start, "start"),
        end=_epoch(request, end, "end"),
        limit=limit,
        offset=offset,
    )
    return {
        "incidents": [_incident(r, request) for r in rows],
        **page(total, limit, offset, len(rows)),
    }


@router.get("/audit", response_model=schemas.AuditPage, summary="Who saw whose caller numbers")
async def audit(
    request: Request,
    who: Viewer,
    unit: Text = None,
    limit: Annotated[int, Query(ge=1, le=search.MAX_LIMIT)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> dict[str, Any]:
    require(who.operations, "the audit log is for operations")
    console = console_of(request)
    if console.store is None:
        raise HTTPException(503, "no store")
    rows, total = await search.audit_entries(console.store, unit, limit, offset)
    entries = [search.audit_json(r, console.tz) for r in rows]
    return {"entries": entries, **page(total, limit, offset, len(rows))}
