"""The web console: where it listens, who may log in and as what."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pbxwatch.settings.base import _Listening, _Model, host_port, read_secret

_ROLE = re.compile(r"^(operations|it|(chief|staff):[a-z0-9][a-z0-9_-]*)$")


def _roles_ok(role_map: dict[str, list[str]]) -> dict[str, list[str]]:
    for claim, roles in role_map.items():
        bad = [r for r in roles if not _ROLE.match(r)]
        if bad:
            raise ValueError(
                f"{claim!r}: unknown role(s) {bad}; use operations, it, chief:<unit>, staff:<unit>"
            )
    return role_map


class OidcSettings(_Model):
    """OpenID Connect login (authorization code with PKCE) against the
    municipality's identity provider (Entra ID, ADFS, Keycloak ...)."""

    issuer: str = Field(..., min_length=1, description="the provider's issuer URL")
    client_id: str = Field(..., min_length=1)
    client_secret_env: str = Field(
        "PBXWATCH_OIDC_CLIENT_SECRET", description="env variable holding the client secret"
    )
    client_secret_file: Path | None = None
    scopes: list[str] = Field(default_factory=lambda: ["openid", "profile", "email"])
    roles_claim: str = Field("groups", min_length=1, description="ID-token claim with groups")
    role_map: dict[str, list[str]] = Field(
        default_factory=dict, description="claim value -> console roles"
    )
    redirect_url: str | None = Field(
        None, description="the callback URL the provider knows; default from the request"
    )

    @field_validator("role_map")
    @classmethod
    def _known_roles(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return _roles_ok(v)

    def client_secret(self) -> str | None:
        return read_secret("web.auth.oidc.client_secret", self.client_secret_env,
                           self.client_secret_file)  # fmt: skip


class HeaderAuthSettings(_Model):
    """Trusted headers set by an authenticating proxy (oauth2-proxy ...):
    believed only from ``trusted_proxies``."""

    user_header: str = "X-Forwarded-User"
    roles_header: str = Field("X-Forwarded-Groups", description="comma-separated groups")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="addresses or CIDRs of the proxies"
    )
    role_map: dict[str, list[str]] = Field(
        default_factory=dict, description="group -> console roles"
    )

    @field_validator("role_map")
    @classmethod
    def _known_roles(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        return _roles_ok(v)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: list[str]) -> list[str]:
        for net in v:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError as exc:
                raise ValueError(f"{net!r} is not an address or CIDR") from exc
        return v


class WebAuthSettings(_Model):
    mode: Literal["none", "oidc", "header"] = Field(
        "none", description="none: loopback only, no login (acts as operations)"
    )
    oidc: OidcSettings | None = None
    header: HeaderAuthSettings | None = None

    @model_validator(mode="after")
    def _complete(self) -> WebAuthSettings:
        if self.mode == "oidc" and self.oidc is None:
            raise ValueError("mode oidc needs web.auth.oidc (issuer, client_id)")
        if self.mode == "header" and (self.header is None or not self.header.trusted_proxies):
            raise ValueError("mode header needs web.auth.header.trusted_proxies")
        return self

    def role_map(self) -> dict[str, list[str]]:
        if self.mode == "oidc" and self.oidc is not None:
            return self.oidc.role_map
        if self.mode == "header" and self.header is not None:
            return self.header.role_map
        return {}


class WebSessionSettings(_Model):
    secret_env: str = Field(
        "PBXWATCH_WEB_SESSION_SECRET",
        description="env variable with the key signing session cookies (needed for oidc)",
    )
    secret_file: Path | None = None
    idle_minutes: float = Field(30.0, gt=0, description="a session unused this long ends")

    def secret(self) -> str | None:
        return read_secret("web.session.secret", self.secret_env, self.secret_file)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class WebSettings(_Model, _Listening):
    """The web console: wallboard, call search, JSON API."""

    enabled: bool = True
    auth: WebAuthSettings = Field(default_factory=WebAuthSettings)
    session: WebSessionSettings = Field(default_factory=WebSessionSettings)
    listen: str = Field(
        "127.0.0.1:8080", description="host:port; anything but loopback needs auth.mode"
    )

    @field_validator("listen")
    @classmethod
    def _loopback_or_auth(cls, v: str, info: ValidationInfo) -> str:
        host = host_port(v).rpartition(":")[0]
        auth = info.data.get("auth")
        if isinstance(auth, WebAuthSettings) and auth.mode == "none" and not is_loopback(host):
            raise ValueError(
                f"{v} is not a loopback address: set web.auth.mode (oidc or header) "
                "or listen on 127.0.0.1"
            )
        return v
