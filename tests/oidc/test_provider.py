"""The tests' OpenID provider itself (``tests/oidc/provider.mjs``, npm
``oidc-provider`` on Node.js): discovery, and a whole authorisation-code
flow with PKCE driven by httpx, the ID token (signature, issuer, audience,
nonce, groups) checked with joserfc against the provider's JWKS."""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import KeySet, RSAKey

from tests.oidc.harness import Provider, login, oidc_provider_factory  # noqa: F401

REDIRECT = "http://127.0.0.1:9/auth/callback"  # never requested: login() stops before it


@pytest.fixture
def provider(oidc_provider_factory: Callable[..., Provider]) -> Provider:  # noqa: F811
    return oidc_provider_factory([REDIRECT])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(provider: Provider, meta: dict[str, Any], **params: str) -> str:
    query = {
        "response_type": "code",
        "client_id": provider.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
    } | params
    return f"{meta['authorization_endpoint']}?{urlencode(query)}"


def callback_params(response: httpx.Response) -> dict[str, str]:
    assert response.is_redirect, response.text
    location = response.headers["location"]
    assert location.startswith(REDIRECT), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def redeem(
    rp: Any,
    provider: Provider,
    meta: dict[str, Any],
    code: str,
    verifier: str,
    secret: str | None = None,
) -> httpx.Response:
    """The token request for ``code`` (the client's secret unless ``secret``)."""
    response: httpx.Response = rp.post(
        meta["token_endpoint"],
        auth=(provider.client_id, provider.client_secret if secret is None else secret),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
              "code_verifier": verifier},
    )  # fmt: skip
    return response


def test_discovery(provider: Provider) -> None:
    meta = provider.metadata()
    assert meta["issuer"] == provider.issuer == f"http://127.0.0.1:{provider.port}"
    for endpoint in (
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "userinfo_endpoint",
        "end_session_endpoint",
    ):
        assert meta[endpoint].startswith(provider.issuer + "/"), endpoint
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "code" in meta["response_types_supported"]
    assert {"openid", "profile", "groups"} <= set(meta["scopes_supported"])
    assert "groups" in meta["claims_supported"]
    keys = httpx.get(meta["jwks_uri"]).json()["keys"]
    assert [k["kty"] for k in keys] == ["RSA"]
    assert all("d" not in k for k in keys), "private key material in the JWKS"


def test_code_flow_with_pkce(provider: Provider) -> None:
    meta = provider.metadata()
    verifier, challenge = pkce_pair()
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    url = authorize_url(
        provider,
        meta,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    with httpx.Client(timeout=10) as browser:
        page = browser.get(url, follow_redirects=True)
        assert page.status_code == 200
        assert 'name="username"' in page.text
        assert 'type="password"' in page.text
        back = callback_params(login(browser, url, provider.users["chief"], stop_at=REDIRECT))
    assert back["state"] == state
    assert back["iss"] == provider.issuer  # RFC 9207
    code = back["code"]

    with httpx.Client(timeout=10) as rp:
        # the code needs the verifier, and the client's secret
        wrong = redeem(rp, provider, meta, code, verifier, secret="wrong")
        assert wrong.status_code == 401, wrong.text
        tokens = redeem(rp, provider, meta, code, verifier)
        assert tokens.status_code == 200, tokens.text
        body = tokens.json()
        jwks = KeySet.import_key_set(rp.get(meta["jwks_uri"]).json())
        userinfo = rp.get(
            meta["userinfo_endpoint"], headers={"Authorization": f"Bearer {body['access_token']}"}
        ).json()
        # a code is good once
        again = redeem(rp, provider, meta, code, verifier)
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"

    token = jwt.decode(body["id_token"], jwks, algorithms=["RS256"])
    assert token.header["alg"] == "RS256"
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": provider.issuer},
        aud={"essential": True, "value": provider.client_id},
        nonce={"essential": True, "value": nonce},
        sub={"essential": True, "value": "chief"},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(token.claims)
    assert token.claims["exp"] > time.time()
    assert token.claims["groups"] == ["pbxwatch-chief-socialtjanst"]
    assert userinfo["sub"] == "chief"
    assert userinfo["groups"] == ["pbxwatch-chief-socialtjanst"]

    # the same check refuses the token under another key of the same id
    other = RSAKey.generate_key(2048, parameters={"kid": token.header["kid"], "use": "sig"})
    with pytest.raises(BadSignatureError):
        jwt.decode(body["id_token"], KeySet([other]), algorithms=["RS256"])


def test_groups_per_user(provider: Provider) -> None:
    meta = provider.metadata()
    for name, groups in (("ops", ["pbxwatch-operations"]), ("it", ["pbxwatch-it"]), ("nobody", [])):
        verifier, challenge = pkce_pair()
        url = authorize_url(
            provider,
            meta,
            state="s",
            nonce="n",
            code_challenge=challenge,
            code_challenge_method="S256",
            scope="openid groups",
        )
        with httpx.Client(timeout=10) as browser:
            code = callback_params(login(browser, url, provider.users[name], stop_at=REDIRECT))
        tokens = redeem(httpx, provider, meta, code["code"], verifier)
        assert tokens.status_code == 200, tokens.text
        claims = jwt.decode(
            tokens.json()["id_token"], KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
        ).claims
        assert claims["sub"] == name
        assert claims["groups"] == groups


def test_pkce_is_required(provider: Provider) -> None:
    meta = provider.metadata()
    with httpx.Client(timeout=10) as browser:
        response = browser.get(authorize_url(provider, meta, state="s", nonce="n"))
    back = callback_params(response)
    assert back["error"] == "invalid_request"
    assert "PKCE" in back["error_description"]
    assert back["state"] == "s"
    assert "code" not in back


def test_wrong_verifier_and_password(provider: Provider) -> None:
    meta = provider.metadata()
    _, challenge = pkce_pair()
    url = authorize_url(
        provider, meta, state="s", nonce="n", code_challenge=challenge, code_challenge_method="S256"
    )
    impostor = provider.users["ops"].__class__("ops", "not-the-password", ())
    with httpx.Client(timeout=10) as browser:
        refused = login(browser, url, impostor, stop_at=REDIRECT)
        assert refused.status_code == 401
        assert "Wrong username or password" in refused.text
    with httpx.Client(timeout=10) as browser:
        code = callback_params(login(browser, url, provider.users["ops"], stop_at=REDIRECT))["code"]
    tokens = redeem(httpx, provider, meta, code, pkce_pair()[0])
    assert tokens.status_code == 400
    assert tokens.json()["error"] == "invalid_grant"
