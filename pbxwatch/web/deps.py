"""What every route needs: the console, the viewer, the language."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from pbxwatch.web.auth import Forbidden
from pbxwatch.web.console import Console
from pbxwatch.web.roles import Principal
from pbxwatch.web.words import LANGS

LANG_COOKIE = "pbxwatch_lang"


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def viewer(request: Request) -> Principal:
    """The logged-in viewer (``NotLoggedIn`` otherwise)."""
    return console_of(request).auth.viewer(request)


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return str(asked)
    cookie = request.cookies.get(LANG_COOKIE)
    return cookie if cookie in LANGS else "sv"


def require(ok: bool, why: str) -> None:
    if not ok:
        raise Forbidden(why)


def page(total: int, limit: int, offset: int, n: int) -> dict[str, Any]:
    nxt = offset + n if offset + n < total and n > 0 else None
    return {"total": total, "limit": limit, "offset": offset, "next_offset": nxt}


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None
