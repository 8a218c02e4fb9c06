"""The console's ASGI application: pages, SSE, the JSON API, static files,
login, and the headers that keep a browser strict (no inline script, no
framing, nothing from elsewhere)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pbxwatch import __version__
from pbxwatch.settings import Settings
from pbxwatch.web import api, pages, units
from pbxwatch.web.auth import Auth, Forbidden, NotLoggedIn, Sessions, TrustedPeers, session_secret
from pbxwatch.web.console import Console
from pbxwatch.web.live import LiveView
from pbxwatch.web.streams import EventStreams

STATIC = Path(__file__).parent / "static"
#: where the identity provider sends the browser back (register it there)
CALLBACK_PATH = "/auth/callback"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]


def csp(form_origins: frozenset[str]) -> str:
    """The policy; ``form-action`` also names the OpenID provider's origins,
    as the logout form's POST is redirected to its end-session endpoint
    (browsers check ``form-action`` on a form's redirects too)."""
    return CSP + "".join(f" {o}" for o in sorted(form_origins))


class StrictHeaders:
    """Security headers on every response; nothing personal is cached."""

    def __init__(self, app: ASGIApp, form_origins: set[str] | None = None) -> None:
        self.app = app
        self.form_origins = form_origins if form_origins is not None else set()
        self._csp = (frozenset[str](), csp(frozenset()).encode())

    def policy(self) -> bytes:
        origins, value = self._csp
        if origins != self.form_origins:  # the provider's end-session origin was learnt
            origins = frozenset(self.form_origins)
            value = csp(origins).encode()
            self._csp = (origins, value)
        return value

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += HEADERS
                headers.append((b"content-security-policy", self.policy()))
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


def _api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def create_app(settings: Settings, view: LiveView, store: AsyncEngine | None) -> FastAPI:
    """The console for ``view`` (the live engine) and ``store`` (search)."""
    web = settings.web
    auth = Auth(web)
    app = FastAPI(
        title="pbxwatch console API",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.console = Console(settings, view, store, auth)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.include_router(units.api_router)
    app.include_router(units.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    async def not_logged_in(request: Request, exc: Exception) -> Response:
        if _api(request):
            return JSONResponse({"detail": "log in first"}, 401)
        return pages.refused(request, exc, 401)

    async def forbidden(request: Request, exc: Exception) -> Response:
        if _api(request):
            return JSONResponse({"detail": str(exc) or "forbidden"}, 403)
        return pages.refused(request, exc, 403)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if _api(request):
            return JSONResponse({"detail": str(exc.detail)}, exc.status_code, headers=exc.headers)
        return pages.refused(request, Exception(str(exc.detail)), exc.status_code)

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if _api(request):
            from fastapi.encoders import jsonable_encoder

            return JSONResponse({"detail": jsonable_encoder(exc.errors())}, 422)
        return pages.refused(request, Exception("invalid request"), 422)

    app.add_exception_handler(NotLoggedIn, not_logged_in)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    oidc = web.auth.oidc
    force_secure = bool(oidc and oidc.redirect_url and oidc.redirect_url.startswith("https:"))
    layers: list[partial[Any]] = [
        partial(Sessions, secret=session_secret(web),
                max_age=int(web.session.idle_minutes * 60) + 60, force_secure=force_secure),
        partial(StrictHeaders, form_origins=auth.form_origins),
    ]  # fmt: skip
    if web.auth.mode == "header":
        assert web.auth.header is not None
        layers.append(partial(TrustedPeers, networks=web.auth.header.trusted_proxies))
    for layer in layers:  # each added one is outermost
        app.add_middleware(layer.func, **layer.keywords)
    app.state.layers = layers  # the event streams sit behind the same ones
    return app


def asgi_app(app: FastAPI) -> EventStreams:
    """What the server runs: ``app`` with its event streams in front."""
    return EventStreams(app, app.state.layers)
