"""Login and sessions: the three modes, signed cookies, CSRF, idle timeout.

- ``none``: no login, loopback only (the settings refuse any other listen
  address); the viewer acts as ``operations`` and every page says so.
- ``header``: an authenticating proxy in front sets the user and groups
  headers; requests from any peer not in ``trusted_proxies`` get 403
  (``TrustedPeers``, outermost), so nobody can bypass the proxy.
- ``oidc``: authorization code with PKCE (S256), state and nonce kept in
  the session, the ID token checked (signature by the provider's JWKS,
  issuer, audience, expiry, nonce) by Authlib; roles from ``roles_claim``
  through ``role_map``.

Sessions are Starlette's signed cookies (itsdangerous): ``HttpOnly``,
``SameSite=Lax``, ``Secure`` when the request came over TLS (or the
configured redirect URL is https), signed with the key from
``web.session.secret_env`` and refused when tampered with or older than
the idle timeout.  Every state-changing request carries the session's
CSRF token.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import time
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import urlencode, urlsplit

from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from pbxwatch.settings import ConfigError, WebSettings, is_loopback
from pbxwatch.web.roles import Principal, claim_values, roles_of

log = logging.getLogger(__name__)

SESSION_COOKIE = "pbxwatch_session"
#: an ID token longer than this is not kept in the session cookie (browsers
#: take about 4 KiB a cookie); logout then names the client instead
ID_TOKEN_KEPT = 2500
#: the loopback-only demo
LOCAL = Principal("local", frozenset({"operations"}))


class NotLoggedIn(Exception):
    """No (valid) session: log in first."""


class Forbidden(Exception):
    """Logged in, but this is not for the viewer's roles (or peer)."""


def session_secret(web: WebSettings) -> str:
    """The key signing session cookies.  OIDC sessions must survive a
    restart and several instances: the key is required.  Without login
    (``none``, ``header``) the session only holds the CSRF token and a
    per-process key is enough."""
    secret = web.session.secret()
    if secret:
        if len(secret) < 32:
            raise ConfigError(
                f"web.session.secret_env: the key in {web.session.secret_env} "
                "must be at least 32 characters"
            )
        return secret
    if web.auth.mode == "oidc":
        raise ConfigError(
            f"web.session.secret_env: environment variable "
            f"{web.session.secret_env} is not set (or set web.session.secret_file)"
        )
    return secrets.token_urlsafe(32)


class Sessions:
    """Starlette's SessionMiddleware, ``Secure`` cookies over TLS."""

    def __init__(self, app: ASGIApp, secret: str, max_age: int, force_secure: bool) -> None:
        common: dict[str, Any] = {
            "secret_key": secret,
            "session_cookie": SESSION_COOKIE,
            "max_age": max_age,
            "same_site": "lax",
        }
        self.plain = SessionMiddleware(app, https_only=False, **common)
        self.tls = SessionMiddleware(app, https_only=True, **common)
        self.force_secure = force_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = self.force_secure or scope.get("scheme") in ("https", "wss")
        await (self.tls if secure else self.plain)(scope, receive, send)


class TrustedPeers:
    """Header mode: only the configured proxies may talk to the console."""

    def __init__(self, app: ASGIApp, networks: list[str]) -> None:
        self.app = app
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def trusted(self, host: str | None) -> bool:
        if host is None:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self.networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            client = scope.get("client")
            if not self.trusted(client[0] if client else None):
                resp = PlainTextResponse("403: only the authenticating proxy may connect\n", 403)
                await resp(scope, receive, send)
                return
            headers = dict(scope.get("headers") or [])
            if headers.get(b"x-forwarded-proto") == b"https":  # TLS ended at the proxy
                scope = {**scope, "scheme": "https"}  # so the session cookie is Secure
        await self.app(scope, receive, send)


class Auth:
    """Who the viewer is, per the configured mode."""

    def __init__(self, web: WebSettings) -> None:
        self.web = web
        self.mode = web.auth.mode
        self.idle = web.session.idle_minutes * 60.0
        self.role_map = web.auth.role_map()
        self.oauth: Any = None
        #: origins a form of the console may lead to (CSP ``form-action``):
        #: the logout form's POST ends at the provider's end-session endpoint
        self.form_origins: set[str] = set()
        #: sessions logged out (their CSRF token, which names a session) ->
        #: when the cookie would have expired anyway: refused until then,
        #: and their open SSE streams end (:meth:`still_valid`)
        self.revoked: dict[str, float] = {}
        if self.mode == "oidc":
            assert web.auth.oidc is not None
            self.oauth = _oidc_client(web)
            self.form_origins.add(_origin(web.auth.oidc.issuer))

    def viewer(self, request: Request) -> Principal:
        """The viewer, or ``NotLoggedIn``."""
        if self.mode == "none":
            client = request.client
            if client is None or not is_loopback(client.host):
                raise Forbidden("no login: loopback only")
            return LOCAL
        if self.mode == "header":
            assert self.web.auth.header is not None
            user = request.headers.get(self.web.auth.header.user_header, "").strip()
            if not user:
                raise NotLoggedIn("no user header from the proxy")
            groups = claim_values(request.headers.get(self.web.auth.header.roles_header, ""))
            return Principal(user, roles_of(groups, self.role_map))
        session = request.session
        name = session.get("user")
        if not isinstance(name, str) or not name:
            raise NotLoggedIn("no session")
        now = time.time()
        seen = session.get("seen")
        if not isinstance(seen, int | float) or now - seen > self.idle:
            session.clear()
            raise NotLoggedIn("session idle too long")
        if session.get("csrf") in self.revoked:  # a copy of a cookie logged out
            session.clear()
            raise NotLoggedIn("session logged out")
        if now - seen > 5:  # the cookie is rewritten at most every few seconds
            session["seen"] = int(now)
        roles = session.get("roles")
        return Principal(
            name,
            frozenset(r for r in roles if isinstance(r, str))
            if isinstance(roles, list)
            else frozenset(),
        )

    def revoke(self, session: MutableMapping[str, Any]) -> None:
        """Logout: this session (any copy of its cookie) is refused from now."""
        token = session.get("csrf")
        now = time.time()
        for old in [t for t, until in self.revoked.items() if until < now]:
            del self.revoked[old]
        if isinstance(token, str) and self.mode == "oidc":
            self.revoked[token] = now + self.idle + 60

    def still_valid(self, session: dict[str, Any]) -> bool:
        """Whether a session as it was when an SSE stream began (a copy of
        its contents) is still good: not logged out, not idle too long
        (the stream itself is no activity).  Always true without login
        sessions (``none``; ``header``, whose proxy checks each request)."""
        if self.mode != "oidc":
            return True
        seen = session.get("seen")
        if not isinstance(seen, int | float) or time.time() - seen > self.idle:
            return False
        return session.get("csrf") not in self.revoked

    # ----------------------------------------------------------------- CSRF

    @staticmethod
    def csrf_token(request: Request) -> str:
        session = request.session
        token = session.get("csrf")
        if isinstance(token, str):
            return token
        fresh = secrets.token_urlsafe(24)
        session["csrf"] = fresh
        return fresh

    @staticmethod
    def check_csrf(request: Request, given: str | None) -> None:
        """A state-changing request: same origin, and the session's token."""
        expected = request.session.get("csrf")
        origin = request.headers.get("origin")
        # the host, not the scheme: behind a TLS proxy the page is https, the request http
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise Forbidden("CSRF: cross-origin request")
        if not isinstance(expected, str) or not given or not hmac.compare_digest(expected, given):
            raise Forbidden("CSRF: missing or wrong token")

    # ----------------------------------------------------------------- OIDC

    async def login(self, request: Request, next_url: str) -> Any:
        """Off to the provider (PKCE, state and nonce kept in the session)."""
        assert self.web.auth.oidc is not None
        request.session["next"] = safe_next(next_url)
        redirect = self.web.auth.oidc.redirect_url or str(request.url_for("auth_callback"))
        return await self.oauth.idp.authorize_redirect(request, redirect)

    async def callback(self, request: Request) -> str:
        """Back from the provider: check, start the session, return where to go."""
        from authlib.integrations.starlette_client import OAuthError  # type: ignore[import-untyped]

        assert self.web.auth.oidc is not None
        try:
            token = await self.oauth.idp.authorize_access_token(request)
        except OAuthError as exc:
            raise NotLoggedIn(f"login failed: {exc.error}") from exc
        claims = token.get("userinfo")
        if not claims:  # no ID token, or no nonce in it: not an OpenID login
            raise NotLoggedIn("login failed: no ID token")
        oidc = self.web.auth.oidc
        roles = roles_of(claim_values(claims.get(oidc.roles_claim)), self.role_map)
        user = str(claims.get("preferred_username") or claims.get("email") or claims["sub"])
        next_url = safe_next(request.session.get("next"))
        session: MutableMapping[str, Any] = request.session
        session.clear()  # nothing from before the login survives it (fixation)
        session.update(
            user=user, roles=sorted(roles), seen=int(time.time()), csrf=secrets.token_urlsafe(24)
        )
        id_token = token.get("id_token")
        if isinstance(id_token, str) and len(id_token) <= ID_TOKEN_KEPT:
            session["id_token"] = id_token  # the hint for RP-initiated logout
        log.info("console login: %s with roles %s", user, ", ".join(sorted(roles)) or "none")
        return next_url

    async def end_session_url(self, request: Request, back: str) -> str | None:
        """Where logout sends the browser: the provider's
        ``end_session_endpoint`` (OpenID Connect RP-Initiated Logout 1.0)
        with ``id_token_hint`` (when the session kept the ID token), the
        ``client_id`` and ``post_logout_redirect_uri`` ``back``, so that the
        provider's own session ends too and the next login asks again.
        ``None`` when the provider offers no such endpoint (or its discovery
        document cannot be read now): then only the console's session ends.
        Call it before clearing the session."""
        if self.mode != "oidc":
            return None
        try:
            metadata = await self.oauth.idp.load_server_metadata()
        except Exception as exc:  # noqa: BLE001  (the provider is away: log out locally)
            log.warning("console logout: no discovery document from the provider: %s", exc)
            return None
        endpoint = metadata.get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint.startswith(("https://", "http://")):
            return None
        self.form_origins.add(_origin(endpoint))
        assert self.web.auth.oidc is not None
        params = {"client_id": self.web.auth.oidc.client_id, "post_logout_redirect_uri": back}
        hint = request.session.get("id_token")
        if isinstance(hint, str) and hint:
            params = {"id_token_hint": hint, **params}
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)

    def post_logout_url(self, request: Request, logged_out_path: str, callback_path: str) -> str:
        """The console's logged-out page as the provider must have it
        registered: beside the configured ``redirect_url`` if there is one
        (behind a proxy the request's own URL may not be the public one)."""
        oidc = self.web.auth.oidc
        if oidc is not None and oidc.redirect_url:
            configured = oidc.redirect_url
            if configured.endswith(callback_path):
                return configured[: -len(callback_path)] + logged_out_path
            return _origin(configured) + logged_out_path
        return str(request.url_for("logged_out"))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def safe_next(value: object) -> str:
    """Only a path of this site (no ``//host``, no scheme) to go back to."""
    if (
        isinstance(value, str)
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
    ):
        return value
    return "/"


def _oidc_client(web: WebSettings) -> Any:
    from authlib.integrations.starlette_client import OAuth

    oidc = web.auth.oidc
    assert oidc is not None
    secret = oidc.client_secret()
    if not secret:
        raise ConfigError(
            f"web.auth.oidc.client_secret_env: environment variable "
            f"{oidc.client_secret_env} is not set (or set client_secret_file)"
        )
    oauth = OAuth()
    oauth.register(
        name="idp",
        client_id=oidc.client_id,
        client_secret=secret,
        server_metadata_url=oidc.issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": " ".join(oidc.scopes), "code_challenge_method": "S256"},
    )
    return oauth
