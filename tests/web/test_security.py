"""The console's doors: no access without a session, a tampered or idle
cookie refused, CSRF refused, header mode only from its proxies, and no
listening beyond loopback without login."""

from __future__ import annotations

import json
import subprocess
import time
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import itsdangerous
import pytest
import yaml

from pbxwatch.settings import Settings
from pbxwatch.web.auth import SESSION_COOKIE
from tests.conftest import LAB_CONFIG
from tests.services import pbxwatch
from tests.web.served import Served, as_group, header_web, serve

SECRET = "a-session-key-for-the-tests-only-0123456789"
OIDC = {"auth": {"mode": "oidc", "oidc": {
    "issuer": "http://127.0.0.1:9/unused", "client_id": "pbxwatch",
    "client_secret_env": "TEST_OIDC_SECRET", "role_map": {"ops": ["operations"]}}},
    "session": {"idle_minutes": 10}}  # fmt: skip


@pytest.fixture(scope="module")
def oidc_console(replayed: tuple[Settings, Path]) -> Iterator[Served]:
    mp = pytest.MonkeyPatch()
    mp.setenv("PBXWATCH_WEB_SESSION_SECRET", SECRET)
    mp.setenv("TEST_OIDC_SECRET", "client-secret")
    try:
        with serve(*replayed, web=OIDC) as s:
            yield s
    finally:
        mp.undo()


def cookie(session: dict[str, Any], secret: str = SECRET) -> str:
    """A session cookie as Starlette signs it (itsdangerous, timestamped)."""
    data = b64encode(json.dumps(session).encode())
    return itsdangerous.TimestampSigner(secret).sign(data).decode()


def logged_in(**more: Any) -> dict[str, Any]:
    return {"user": "olle", "roles": ["operations"], "seen": int(time.time()), "csrf": "tok",
            **more}  # fmt: skip


def get(s: Served, path: str, session: str | None = None, **kw: Any) -> httpx.Response:
    cookies = {SESSION_COOKIE: session} if session else None
    return httpx.get(s.base + path, cookies=cookies, follow_redirects=False, **kw)


@pytest.mark.parametrize("path", ["/", "/calls", "/calls/1795413316.64", "/incidents", "/audit"])
def test_pages_without_a_session_go_to_the_login(oidc_console: Served, path: str) -> None:
    r = get(oidc_console, path)
    assert r.status_code == 303
    assert r.headers["location"] == f"/login?next={path}"


@pytest.mark.parametrize("path", ["/api/v1/queues", "/api/v1/health", "/api/v1/calls",
                                  "/api/v1/calls/1795413316.64", "/api/v1/incidents",
                                  "/api/v1/audit", "/events", "/events/incidents"])  # fmt: skip
def test_api_and_events_without_a_session_are_refused(oidc_console: Served, path: str) -> None:
    r = get(oidc_console, path)
    assert r.status_code == 401
    assert "0702345678" not in r.text


def test_a_signed_session_is_accepted_a_tampered_one_refused(oidc_console: Served) -> None:
    good = cookie(logged_in())
    r = get(oidc_console, "/api/v1/calls?extension=1002", good)
    assert r.status_code == 200, r.text
    assert r.json()["total"] >= 1
    # the same payload with another role, under the signature of the first
    _, _, rest = good.partition(".")
    forged = b64encode(json.dumps(logged_in(user="mallory")).encode()).decode()
    for bad in (
        f"{forged}.{rest}",
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        cookie(logged_in(), secret="another-key-another-key-another-key"),
    ):
        assert get(oidc_console, "/api/v1/calls", bad).status_code == 401
        assert get(oidc_console, "/").status_code == 303


def test_an_idle_session_ends(oidc_console: Served) -> None:
    stale = cookie(logged_in(seen=int(time.time()) - 11 * 60))
    assert get(oidc_console, "/api/v1/queues", stale).status_code == 401
    fresh = cookie(logged_in(seen=int(time.time()) - 9 * 60))
    assert get(oidc_console, "/api/v1/queues", fresh).status_code == 200


def test_the_session_cookie_is_httponly_and_samesite(oidc_console: Served) -> None:
    r = get(oidc_console, "/", cookie(logged_in(seen=int(time.time()) - 60)))
    assert r.status_code == 200
    set_cookie = r.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=lax" in set_cookie
    assert "secure" not in set_cookie  # plain HTTP on loopback; Secure over TLS
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp


def test_logout_without_the_csrf_token_is_refused(oidc_console: Served) -> None:
    session = cookie(logged_in(csrf="tok-logout"))  # its own: logout revokes the session
    url = oidc_console.base + "/logout"
    jar = {SESSION_COOKIE: session}
    for data, headers in (({}, {}), ({"csrf": "wrong"}, {}),
                          ({"csrf": "tok-logout"}, {"Origin": "http://evil.example"})):  # fmt: skip
        r = httpx.post(url, data=data, headers=headers, cookies=jar)
        assert r.status_code == 403, r.text
        assert get(oidc_console, "/api/v1/queues", session).status_code == 200  # still in
    r = httpx.post(url, data={"csrf": "tok-logout"}, cookies=jar, follow_redirects=False)
    assert r.status_code == 303
    # a copy of the cookie as it was before the logout is refused too
    assert get(oidc_console, "/api/v1/queues", session).status_code == 401
    # no provider answers here: only the console's session ends, and the
    # browser lands on the logged-out page, not on /login (which would go
    # back to the provider)
    assert r.headers["location"] == "/logged-out"
    cleared = r.cookies.get(SESSION_COOKIE)
    assert get(oidc_console, "/api/v1/queues", cleared).status_code == 401


def test_header_mode_refuses_every_other_peer(replayed: tuple[Settings, Path]) -> None:
    """Only the proxy (127.0.0.1 here) may connect: a client from
    127.0.0.2 gets 403 for every page, the API and static files, whatever
    headers it sends."""
    with serve(*replayed, web=header_web(["127.0.0.1/32"])) as s:
        other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
        proxy = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.1"))
        with other, proxy:
            for path in (
                "/",
                "/calls",
                "/api/v1/calls",
                "/api/v1/openapi.json",
                "/events",
                "/static/console.css",
            ):
                r = other.get(s.base + path, headers=as_group("ops"))
                assert r.status_code == 403, path
                assert "0702345678" not in r.text
            assert proxy.get(s.base + "/api/v1/calls", headers=as_group("ops")).status_code == 200
            # from the proxy, no user header: not logged in
            assert proxy.get(s.base + "/api/v1/calls").status_code == 401
            # TLS ended at the proxy: the session cookie is Secure
            tls = proxy.get(s.base + "/", headers={**as_group("ops"), "X-Forwarded-Proto": "https"})
            assert "secure" in tls.headers["set-cookie"].lower()
            plain = proxy.get(s.base + "/", headers=as_group("ops"))
            assert "secure" not in plain.headers["set-cookie"].lower()
            # a user whose groups map to no role sees nothing
            assert (
                proxy.get(s.base + "/api/v1/queues", headers=as_group("nobody")).status_code == 403
            )


def _config(tmp: Path, web: dict[str, Any]) -> Path:
    raw = yaml.safe_load(LAB_CONFIG.read_text(encoding="utf-8"))
    raw["web"] = web
    raw["storage"] = {"data_dir": str(tmp / "data")}
    path = tmp / "pbxwatch.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), "utf-8")
    return path


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "192.0.2.10:8080", "[::]:8080"])
def test_a_listen_address_beyond_loopback_without_login_refuses_to_start(
    tmp_path: Path, listen: str
) -> None:
    config = _config(tmp_path, {"listen": listen})
    for cmd in (["check-config", str(config)], ["run", "--config", str(config)]):
        r = subprocess.run(pbxwatch(*cmd), check=False, capture_output=True, text=True, timeout=60,
                           env={"PBXWATCH_AMI_SECRET": "x", "PATH": "/usr/bin:/bin"})  # fmt: skip
        assert r.returncode == 2, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, r.stderr
        assert "web.listen" in lines[0]
        assert "loopback" in lines[0]
    assert not (tmp_path / "data").exists()  # refused before anything was opened


def test_roles_of_unknown_units_are_refused(tmp_path: Path) -> None:
    config = _config(tmp_path, {"auth": {"mode": "header", "header": {
        "trusted_proxies": ["127.0.0.1"], "role_map": {"g": ["chief:nosuchunit"]}}}})  # fmt: skip
    r = subprocess.run(
        pbxwatch("check-config", str(config)), check=False, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert "nosuchunit" in r.stderr
    assert "web.auth.header.role_map" in r.stderr


def _sse_until_end(s: Served, session: str, then: Any = None, timeout: float = 10.0) -> list[str]:
    """The event names of ``/events`` for ``session`` until the server ends
    the stream; ``then()`` is called after the first wallboard event."""
    names: list[str] = []
    with httpx.stream("GET", s.base + "/events", cookies={SESSION_COOKIE: session},
                      timeout=timeout) as r:  # fmt: skip
        assert r.status_code == 200
        started = time.monotonic()
        for line in r.iter_lines():
            if line.startswith("event: "):
                names.append(line.removeprefix("event: "))
                if names == ["wallboard"] and then is not None:
                    then()
            assert time.monotonic() - started < timeout, names
    return names


@pytest.fixture
def quick_session_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    from pbxwatch.web import streams

    monkeypatch.setattr(streams, "SSE_SESSION_CHECK_SECONDS", 0.3)


@pytest.mark.usefixtures("quick_session_checks")
def test_an_open_sse_stream_ends_when_its_session_is_logged_out(oidc_console: Served) -> None:
    session = cookie(logged_in(csrf="tok-sse"))

    def log_out() -> None:
        r = httpx.post(oidc_console.base + "/logout", data={"csrf": "tok-sse"},
                       cookies={SESSION_COOKIE: session}, follow_redirects=False)  # fmt: skip
        assert r.status_code == 303

    names = _sse_until_end(oidc_console, session, log_out)
    assert names[0] == "wallboard"
    assert names[-1] == "session"
    assert get(oidc_console, "/events", session).status_code == 401  # and no way back


@pytest.mark.usefixtures("quick_session_checks")
def test_an_open_sse_stream_ends_when_its_session_has_expired(
    oidc_console: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream is no activity: idle for the idle timeout after it began
    (1.5 s here), the session has ended and so does the stream."""
    monkeypatch.setattr(oidc_console.console.console.auth, "idle", 1.5)
    session = cookie(logged_in(csrf="tok-idle"))
    names = _sse_until_end(oidc_console, session)
    assert names[0] == "wallboard"
    assert names[-1] == "session"
    assert get(oidc_console, "/events", session).status_code == 401


@pytest.mark.usefixtures("quick_session_checks")
def test_an_sse_stream_of_a_good_session_stays_open(oidc_console: Served) -> None:
    session = cookie(logged_in(csrf="tok-stays"))
    timeout = httpx.Timeout(10.0, read=2.0)  # several checks; the stream is quiet meanwhile
    with httpx.stream("GET", oidc_console.base + "/events", cookies={SESSION_COOKIE: session},
                      timeout=timeout) as r:  # fmt: skip
        assert r.status_code == 200
        lines: list[str] = []
        with pytest.raises(httpx.ReadTimeout):  # still open, not ended
            lines.extend(r.iter_lines())
        assert lines  # its first wallboard event
        assert not [line for line in lines if line.startswith("event: session")]
