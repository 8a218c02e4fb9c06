"""OpenID Connect login end to end against a real provider (npm
``oidc-provider`` on Node.js, ``tests/oidc``): httpx follows the redirects
through the provider's login form.  The authorisation request carries
PKCE (S256), state and nonce; the groups claim becomes roles through
``role_map``; a forged callback is refused; logout needs the CSRF token."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from pbxwatch.settings import Settings
from pbxwatch.web.auth import SESSION_COOKIE
from tests.oidc.harness import Provider, forms, login, oidc_provider_factory  # noqa: F401
from tests.services import free_port
from tests.web.served import KNOWN_E164, Served, serve


@pytest.fixture
def console(
    replayed: tuple[Settings, Path],
    oidc_provider_factory: Callable[..., Provider],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[Served, Provider]]:
    port = free_port()
    provider = oidc_provider_factory(
        [f"http://127.0.0.1:{port}/auth/callback"],
        post_logout_redirect_uris=[f"http://127.0.0.1:{port}/logged-out"],
    )
    monkeypatch.setenv("PBXWATCH_OIDC_CLIENT_SECRET", provider.client_secret)
    monkeypatch.setenv("PBXWATCH_WEB_SESSION_SECRET", "k" * 40)
    web: dict[str, Any] = {"auth": provider.web_auth()}
    with serve(*replayed, web=web, port=port) as s:
        yield s, provider


def test_login_through_the_provider_with_pkce_state_and_nonce(
    console: tuple[Served, Provider],
) -> None:
    s, provider = console
    with httpx.Client() as client:
        first = client.get(s.base + "/calls", follow_redirects=False)
        assert first.status_code == 303
        assert first.headers["location"] == "/login?next=/calls"
        to_idp = client.get(s.base + first.headers["location"], follow_redirects=False)
        location = to_idp.headers["location"]
        assert location.startswith(provider.issuer)
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert len(query["code_challenge"]) >= 43
        assert query["state"]
        assert query["nonce"]
        assert "openid" in query["scope"].split()
        page = login(client, location, provider.users["ops"])
        assert page.status_code == 200, page.text[:500]
        assert str(page.url) == s.base + "/calls"
        assert "Inloggad som <strong>ops</strong>" in page.text
        assert KNOWN_E164 in client.get(s.base + "/calls?extension=1002").text
        session = client.cookies[SESSION_COOKIE]
        assert session
        # logout: the CSRF token of the page, else refused
        assert client.post(s.base + "/logout", data={"csrf": "nope"}).status_code == 403
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token
        out = client.post(s.base + "/logout", data={"csrf": token[1]}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get(s.base + "/api/v1/calls").status_code == 401
        # RP-initiated logout: off to the provider's end-session endpoint
        to_end = out.headers["location"]
        end = provider.metadata()["end_session_endpoint"]
        assert to_end.startswith(end + "?")
        query = {k: v[0] for k, v in parse_qs(urlsplit(to_end).query).items()}
        assert query["post_logout_redirect_uri"] == s.base + "/logged-out"
        assert query["client_id"] == provider.client_id
        assert query["id_token_hint"].count(".") == 2  # the ID token of the login
        # the provider asks to confirm; then it sends the browser back
        confirm = client.get(to_end)
        assert confirm.status_code == 200, confirm.text[:500]
        [form] = forms(confirm.text)
        done = client.post(
            urljoin(str(confirm.url), form["action"]),
            data={**form["fields"], "logout": "yes"},
            follow_redirects=True,
        )
        assert str(done.url) == s.base + "/logged-out"
        assert "Du är utloggad." in done.text
        # and the next login asks for the password again
        again = login(client, s.base + "/login", provider.users["ops"], stop_at=provider.issuer)
        again = client.get(again.headers["location"], follow_redirects=True)
        assert 'name="password"' in again.text, again.text[:500]


@pytest.mark.parametrize(("user", "calls", "wallboard"), [
    ("it", 403, 200), ("chief", 200, 200), ("staff", 200, 200), ("nobody", 403, 403),
])  # fmt: skip
def test_groups_become_roles(
    console: tuple[Served, Provider], user: str, calls: int, wallboard: int
) -> None:
    s, provider = console
    with httpx.Client() as client:
        page = login(client, s.base + "/login?next=/", provider.users[user])
        assert page.status_code == wallboard, page.text[:300]
        r = client.get(s.base + "/api/v1/calls?limit=200")
        assert r.status_code == calls
        if calls == 200:
            assert {c["unit"] for c in r.json()["calls"]} == {"socialtjanst"}
        assert KNOWN_E164 not in r.text


def test_a_forged_callback_is_refused(console: tuple[Served, Provider]) -> None:
    s, provider = console
    with httpx.Client() as client:
        client.get(s.base + "/login", follow_redirects=False)  # a state in the session
        r = client.get(s.base + "/auth/callback?code=forged&state=forged")
        assert r.status_code == 401
        assert client.get(s.base + "/api/v1/calls").status_code == 401
        # a real code, but for another session's state: refused too
        other = httpx.Client()
        with other:
            to_idp = other.get(s.base + "/login", follow_redirects=False).headers["location"]
            back = login(other, to_idp, provider.users["ops"], stop_at=s.base + "/auth/callback")
            callback = back.headers["location"]
        assert client.get(callback).status_code == 401
        assert client.get(s.base + "/api/v1/calls").status_code == 401
