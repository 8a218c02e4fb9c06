"""The HTML pages (Jinja2, Swedish first), the SSE stream and login."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Annotated, Any, get_args
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from pbxwatch.core.records import Outcome
from pbxwatch.web import search
from pbxwatch.web.api import call_detail
from pbxwatch.web.auth import Forbidden, NotLoggedIn
from pbxwatch.web.deps import (
    LANG_COOKIE,
    client_address,
    console_of,
    lang_of,
    page,
    require,
    viewer,
)
from pbxwatch.web.roles import NumberAccess, Principal
from pbxwatch.web.words import LANGS, words

OUTCOMES: tuple[str, ...] = get_args(Outcome)

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)
Viewer = Annotated[Principal, Depends(viewer)]
templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(
    request: Request, name: str, who: Principal | None, status: int = 200, **context: Any
) -> HTMLResponse:
    console = console_of(request)
    lang = lang_of(request)
    html = templates.get_template(name).render(
        request=request,
        w=words(lang),
        lang=lang,
        other_lang=LANGS[1 - LANGS.index(lang)],
        who=who,
        mode=console.auth.mode,
        csrf=console.auth.csrf_token(request),
        path=request.url.path,
        **context,
    )
    resp = HTMLResponse(html, status)
    if request.query_params.get("lang") in LANGS:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", httponly=True)
    return resp


@router.get("/")
async def wallboard(request: Request, who: Viewer, pbx: str | None = None) -> HTMLResponse:
    require(who.any_role, "no console role")
    console = console_of(request)
    if pbx is not None and pbx not in console.view.pbxs:
        raise HTTPException(404, f"no PBX {pbx!r}")
    data = await console.wallboard(who, pbx)
    return render(request, "wallboard.html", who, data=data)


def _when(request: Request, value: str | None, name: str) -> float | None:
    if not value:
        return None
    try:
        return console_of(request).epoch(dt.datetime.fromisoformat(value))
    except (ValueError, OverflowError, OSError) as exc:
        raise HTTPException(400, f"{name}: not a date and time") from exc


@router.get("/calls")
async def calls(request: Request, who: Viewer) -> HTMLResponse:
    require(who.sees_calls, "calls are for operations and the units' own roles")
    console = console_of(request)
    q = {
        k: (request.query_params.get(k) or "").strip()[:64]
        for k in ("start", "end", "unit", "target", "outcome", "extension", "caller")
    }
    try:
        offset = max(0, min(int(request.query_params.get("offset") or 0), 1_000_000))
    except ValueError:
        offset = 0
    limit = 50
    units = sorted(u for u in console.settings.directory.units if who.sees_call_of(u))
    error: str | None = None
    total, capped = 0, False
    shown: list[tuple[dict[str, Any], NumberAccess]] = []
    if console.store is not None:
        f = search.CallFilter(
            start=_when(request, q["start"], "start"),
            end=_when(request, q["end"], "end"),
            unit=q["unit"] or None,
            target=q["target"] or None,
            outcome=q["outcome"] if q["outcome"] in OUTCOMES else None,
            extension=q["extension"] or None,
            caller=q["caller"] or None,
        )
        try:
            shown, total, capped = await console.find_calls(
                who, f, limit=limit, offset=offset, what="calls", address=client_address(request)
            )
        except search.SearchError as exc:
            error = str(exc)
    return render(
        request,
        "calls.html",
        who,
        q=q,
        units=units,
        outcomes=OUTCOMES,
        unit_names={k: u.name for k, u in console.settings.directory.units.items()},
        calls=[c for c, _ in shown],
        base_query=urlencode({k: v for k, v in q.items() if v}),
        error=error,
        masked=any(a == "masked" for _, a in shown),
        capped=capped,
        **page(total, limit, offset, len(shown)),
    )


@router.get("/calls/{call_id}")
async def one_call(request: Request, who: Viewer, call_id: str) -> HTMLResponse:
    detail = await call_detail(request, who, call_id[:64])
    return render(request, "call.html", who, d=detail)


@router.get("/incidents")
async def incidents(request: Request, who: Viewer) -> HTMLResponse:
    require(who.sees_calls, "incidents are for operations and the units' own roles")
    console = console_of(request)
    rows: list[Any] = []
    if console.store is not None:
        rows, _ = await search.incidents(
            console.store,
            who.call_units(),
            kind=None,
            unit=None,
            start=None,
            end=None,
            limit=100,
            offset=0,
        )
    items = [console.incident_item(r) for r in rows]
    return render(request, "incidents.html", who, items=items)


@router.get("/audit")
async def audit(request: Request, who: Viewer) -> HTMLResponse:
    require(who.operations, "the audit log is for operations")
    console = console_of(request)
    rows: list[Any] = []
    if console.store is not None:
        unit = request.query_params.get("unit") or None
        rows, _ = await search.audit_entries(console.store, unit, 200, 0)
    entries = [search.audit_json(r, console.tz) for r in rows]
    return render(request, "audit.html", who, entries=entries)


# ------------------------------------------------------------------ login


@router.get("/login")
async def login(request: Request) -> Response:
    console = console_of(request)
    if console.auth.mode != "oidc":
        return RedirectResponse("/", 303)
    response: Response = await console.auth.login(request, request.query_params.get("next", "/"))
    return response


@router.get("/auth/callback", name="auth_callback")  # app.CALLBACK_PATH
async def auth_callback(request: Request) -> Response:
    console = console_of(request)
    if console.auth.mode != "oidc":
        raise HTTPException(404, "no login in this mode")
    try:
        return RedirectResponse(await console.auth.callback(request), 303)
    except NotLoggedIn as exc:  # a bad state, code or ID token: say so, no redirect loop
        log.warning("console login refused: %s", exc)
        return render(request, "error.html", None, status=401, message=str(exc))


@router.post("/logout")
async def logout(request: Request, csrf: Annotated[str | None, Form()] = None) -> Response:
    """The console's session ends; with OIDC the provider's too (RP-initiated
    logout), else ``/login`` would log the browser straight back in."""
    console = console_of(request)
    auth = console.auth
    auth.check_csrf(request, csrf or request.headers.get("x-csrf-token"))
    if auth.mode != "oidc":
        request.session.clear()
        return RedirectResponse("/", 303)
    from pbxwatch.web.app import CALLBACK_PATH

    back = auth.post_logout_url(request, LOGGED_OUT_PATH, CALLBACK_PATH)
    provider = await auth.end_session_url(request, back)
    user = request.session.get("user")
    auth.revoke(request.session)
    request.session.clear()
    log.info("console logout: %s%s", user, "" if provider else " (the provider's session stays)")
    return RedirectResponse(provider or LOGGED_OUT_PATH, 303)


LOGGED_OUT_PATH = "/logged-out"


@router.get(LOGGED_OUT_PATH, name="logged_out")
async def logged_out(request: Request) -> HTMLResponse:
    """Where the provider sends the browser after logout (its
    ``post_logout_redirect_uri``): no session, a way to log in again."""
    return render(request, "error.html", None, message=words(lang_of(request))["signed_out"])


def refused(request: Request, exc: Exception, status: int) -> Response:
    """An error page (HTML) for the pages; JSON under /api."""
    lang = lang_of(request)
    key = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status)
    message = words(lang)[key] if key else str(exc)
    console = console_of(request)
    if (
        status == 401
        and console.auth.mode == "oidc"
        and request.method == "GET"
        and not request.url.path.startswith("/events")
    ):
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(nxt)}", 303)
    if isinstance(exc, Forbidden) and str(exc).startswith("CSRF"):
        message = f"{message} ({exc})"
    return render(request, "error.html", None, status=status, message=message)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
