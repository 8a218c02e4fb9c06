"""A real OpenID Connect provider for the tests: the npm package
``oidc-provider`` (``tests/oidc/provider.mjs``) on the machine's Node.js, on a
free loopback port, with one confidential client and a list of users whose
``groups`` claim maps to console roles.

``start_provider(tmp_path, redirect_uris)`` starts one and waits until its
discovery document answers; the ``oidc_provider_factory`` fixture starts them
and stops them after the test.  ``login(client, url, user)`` walks an
``httpx.Client`` through a login: it follows the redirects from ``url`` (a
console's login page or the provider's authorisation URL), fills in the
provider's login form, and stops where asked (or at the end of the
redirects).  The node packages come from ``scripts/npm-deps.sh``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

HERE = Path(__file__).resolve().parent
PROVIDER_JS = HERE / "provider.mjs"


@dataclass(frozen=True)
class User:
    username: str
    password: str
    groups: tuple[str, ...]
    name: str = ""


def default_users() -> tuple[User, ...]:
    """``ops`` (operations), ``it`` (on-call IT), ``chief`` (the chief of
    Socialtjänst) and ``staff`` (staff of Socialtjänst), fresh passwords."""

    def pw() -> str:
        return secrets.token_urlsafe(12)

    return (
        User("ops", pw(), ("pbxwatch-operations",), "Olle Operations"),
        User("it", pw(), ("pbxwatch-it",), "Ida IT"),
        User("chief", pw(), ("pbxwatch-chief-socialtjanst",), "Chris Chief"),
        User("staff", pw(), ("pbxwatch-staff-socialtjanst",), "Sam Staff"),
        User("nobody", pw(), (), "No Groups"),
    )


#: ``web.auth.oidc.role_map`` for the groups of :func:`default_users`
ROLE_MAP: dict[str, list[str]] = {
    "pbxwatch-operations": ["operations"],
    "pbxwatch-it": ["it"],
    "pbxwatch-chief-socialtjanst": ["chief:socialtjanst"],
    "pbxwatch-staff-socialtjanst": ["staff:socialtjanst"],
}


@dataclass
class Provider:
    issuer: str
    port: int
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    users: dict[str, User]
    proc: subprocess.Popen[bytes]
    log: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def metadata(self) -> dict[str, Any]:
        response = httpx.get(self.discovery_url, timeout=5)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data

    def web_auth(
        self, *, secret_env: str = "PBXWATCH_OIDC_CLIENT_SECRET", **oidc: Any
    ) -> dict[str, Any]:
        """A ``web.auth`` section of pbxwatch's configuration for this
        provider (the secret in the environment variable ``secret_env``)."""
        return {
            "mode": "oidc",
            "oidc": {
                "issuer": self.issuer,
                "client_id": self.client_id,
                "client_secret_env": secret_env,
                "roles_claim": "groups",
                "role_map": ROLE_MAP,
                **oidc,
            },
        }

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def node_ready() -> None:
    """Fail (not skip) with what to run when node or the packages are missing."""
    if shutil.which("node") is None:
        pytest.fail("node is missing: scripts/debian-packages.sh installs nodejs and npm")
    if not (HERE / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("tests/oidc/node_modules is missing: run scripts/npm-deps.sh")


def start_provider(
    tmp_path: Path,
    redirect_uris: Sequence[str],
    users: Sequence[User] | None = None,
    *,
    client_id: str = "pbxwatch",
    client_secret: str | None = None,
    post_logout_redirect_uris: Sequence[str] = (),
    token_endpoint_auth_method: str = "client_secret_basic",
    timeout: float = 30.0,
) -> Provider:
    """Start ``provider.mjs`` on a free loopback port and wait until its
    discovery document answers.  Its configuration (client and users, with
    their passwords) is written to ``tmp_path/oidc-provider.json``."""
    node_ready()
    users = tuple(users) if users is not None else default_users()
    secret = client_secret or secrets.token_urlsafe(24)
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = tmp_path / "oidc-provider.json"
    config.write_text(
        json.dumps(
            {
                "client": {
                    "client_id": client_id,
                    "client_secret": secret,
                    "redirect_uris": list(redirect_uris),
                    "post_logout_redirect_uris": list(post_logout_redirect_uris),
                    "token_endpoint_auth_method": token_endpoint_auth_method,
                },
                "users": [
                    {
                        "username": u.username,
                        "password": u.password,
                        "groups": list(u.groups),
                        "name": u.name or u.username,
                    }
                    for u in users
                ],
            }
        ),
        "utf-8",
    )
    config.chmod(0o600)
    log = tmp_path / "oidc-provider.log"
    ready = tmp_path / "oidc-provider.ready"
    with ready.open("wb") as out, log.open("wb") as err:
        proc = subprocess.Popen(
            ["node", str(PROVIDER_JS), "--port", "0", "--config", str(config)],
            stdout=out,
            stderr=err,
            cwd=HERE,
            env={**os.environ, "NODE_ENV": "test"},
        )
    deadline = time.monotonic() + timeout
    issuer = ""
    port = 0
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"oidc provider exited with {proc.returncode}: "
                    f"{log.read_text(errors='replace')}"
                )
            line = ready.read_text().strip()
            if line and not issuer:
                info = json.loads(line.splitlines()[0])
                issuer, port = info["issuer"], int(info["port"])
            if issuer:
                with contextlib.suppress(httpx.HTTPError):
                    r = httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=2)
                    if r.status_code == 200 and r.json().get("issuer") == issuer:
                        break
            time.sleep(0.05)
        else:
            raise TimeoutError(
                f"oidc provider not ready after {timeout} s: {log.read_text(errors='replace')}"
            )
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return Provider(
        issuer=issuer,
        port=port,
        client_id=client_id,
        client_secret=secret,
        redirect_uris=list(redirect_uris),
        users={u.username: u for u in users},
        proc=proc,
        log=log,
    )


@pytest.fixture
def oidc_provider_factory(tmp_path: Path) -> Iterator[Callable[..., Provider]]:
    """``factory(redirect_uris, users=None, **kw)`` starts a provider (see
    :func:`start_provider`); all are stopped after the test."""
    started: list[Provider] = []

    def factory(
        redirect_uris: Sequence[str], users: Sequence[User] | None = None, **kw: Any
    ) -> Provider:
        provider = start_provider(tmp_path / f"oidc{len(started)}", redirect_uris, users, **kw)
        started.append(provider)
        return provider

    yield factory
    for provider in started:
        provider.stop()


class _Forms(HTMLParser):
    """The forms of a page: action, method and the inputs' names and values."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {
                    "action": a.get("action", ""),
                    "method": a.get("method", "get").lower(),
                    "fields": {},
                }
            )
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


def login(
    client: httpx.Client, url: str, user: User, *, stop_at: str | None = None, max_steps: int = 20
) -> httpx.Response:
    """Follow the redirects from ``url``, submitting the provider's login
    form (``username``/``password``) for ``user`` when it is shown.  Stops at
    the first response that is no redirect, or before requesting a URL that
    starts with ``stop_at`` (the response redirecting there is returned)."""
    response = client.get(url, follow_redirects=False)
    submitted = False
    for _ in range(max_steps):
        if response.is_redirect:
            target = urljoin(str(response.url), response.headers["location"])
            if stop_at is not None and target.startswith(stop_at):
                return response
            response = client.get(target, follow_redirects=False)
            continue
        page = forms(response.text) if "html" in response.headers.get("content-type", "") else []
        login_form = next((f for f in page if {"username", "password"} <= set(f["fields"])), None)
        if login_form is None or submitted:
            return response
        fields = {**login_form["fields"], "username": user.username, "password": user.password}
        response = client.post(
            urljoin(str(response.url), login_form["action"]), data=fields, follow_redirects=False
        )
        submitted = True
    raise AssertionError(f"more than {max_steps} redirects from {url}")
