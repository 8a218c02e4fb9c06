"""Configuration: one YAML file validated by pydantic.

Every model forbids unknown keys so that a typo ("phone_hour") is an error
naming the key rather than a silently ignored setting.  Secrets never live in
the YAML: the AMI secret comes from an environment variable or a file
(``ami.secret_env`` / ``ami.secret_file``).  Environment variables
``PBXWATCH_<SECTION>__<KEY>`` override YAML values (useful in containers).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pbxwatch.core import calendar
from pbxwatch.core.directory import Directory, Person, QueueInfo, Target, Unit
from pbxwatch.core.directory import DiversionSource as Source

__all__ = ["ConfigError", "Settings", "load_settings"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class ConfigError(Exception):
    """The configuration cannot be used; the message names file and key."""


def read_secret(key: str, env: str | None, file: Path | None) -> str | None:
    """A secret from its file (first) or its environment variable, read when
    needed and never from the YAML; ``None`` when neither gives one."""
    if file is not None:
        try:
            return file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{key}_file: cannot read {file}: {exc}") from exc
    return (os.environ.get(env) or None) if env else None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AmiSettings(_Model):
    """How to reach the Asterisk Manager Interface."""

    host: str = "127.0.0.1"
    port: int = Field(5038, ge=1, le=65535)
    username: str = "pbxwatch"
    secret_env: str = "PBXWATCH_AMI_SECRET"
    secret_file: Path | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    ping_interval_seconds: float = Field(10.0, gt=0)
    ping_timeout_seconds: float = Field(5.0, gt=0)
    connect_timeout_seconds: float = Field(10.0, gt=0)
    reconnect_initial_seconds: float = Field(1.0, gt=0)
    reconnect_max_seconds: float = Field(60.0, gt=0)

    def secret(self) -> SecretStr:
        """Read the secret now, from the file if given, else the environment."""
        value = read_secret("ami.secret", self.secret_env, self.secret_file)
        if not value:
            raise ConfigError(
                f"ami.secret_env: environment variable {self.secret_env} is not set "
                "(or set ami.secret_file)"
            )
        return SecretStr(value)


class InboundSettings(_Model):
    """How inbound external calls are recognised: any one rule suffices."""

    trunk_channels: list[str] = Field(
        default_factory=list,
        description="fnmatch patterns of trunk channels (IAX2/pstn-*), or a trunk's endpoint "
        "name alone (pstn), which matches it on any technology",
    )
    contexts: list[str] = Field(default_factory=list)


class CallSettings(_Model):
    ring_period_seconds: float = Field(6.0, gt=0)
    short_abandon_seconds: float = Field(5.0, ge=0)
    finalize_grace_seconds: float = Field(2.0, ge=0)
    idle_timeout_seconds: float = Field(4 * 3600.0, gt=0)
    max_duration_seconds: float = Field(12 * 3600.0, gt=0)


class NumberSettings(_Model):
    default_country_code: str = "46"
    outbound_prefix: str = ""

    @field_validator("default_country_code")
    @classmethod
    def _digits(cls, v: str) -> str:
        if not v.isdigit():
            raise ValueError("must be digits only, e.g. 46")
        return v


class CalendarSettings(_Model):
    closed_days: list[dt.date] = Field(
        default_factory=list, description="bridge days and local closures, YYYY-MM-DD"
    )


class ClockSettings(_Model):
    """How far the PBX's event times may disagree with what is expected
    before they are distrusted (see the README's "Time")."""

    tolerance_seconds: float = Field(
        5.0, gt=0, description="an event this far ahead of the PBX clock estimate is implausible"
    )
    max_delay_seconds: float = Field(
        60.0, gt=0, description="an event may arrive this late and still keep its own time"
    )
    confirm_events: int = Field(
        3, ge=2, le=50, description="consecutive events that confirm a step of the PBX clock"
    )


class DetectionSettings(_Model):
    unforwarded_absence_minutes: float = Field(15.0, gt=0)
    missing_forward_digest_minutes: float = Field(
        30.0, gt=0, description="a unit hears of the first missed call at once, the rest per window"
    )
    forget_closed_callbacks_days: float = Field(
        7.0,
        gt=0,
        description="`run` keeps a callback made in memory until heard, at most this "
        "long (it stays in the store)",
    )
    forget_open_callbacks_days: float = Field(
        30.0,
        gt=0,
        description="`run` keeps a callback never made in memory this long past its "
        "deadline; a callback after that is not matched (it stays overdue in the store)",
    )


class DiscoverySettings(_Model):
    """Home Assistant MQTT discovery: retained config topics that make the
    queue and unit sensors appear in Home Assistant by themselves."""

    enabled: bool = False
    prefix: str = Field(
        "homeassistant", min_length=1, description="Home Assistant's discovery prefix"
    )


class MqttSettings(_Model):
    """The broker unit chiefs' alerts and on-call queue state go to."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password_env: str | None = Field(None, description="env variable holding the password")
    password_file: Path | None = None
    tls: bool = False
    tls_ca_file: Path | None = None
    client_id: str | None = Field(None, description="default pbxwatch-<site>")
    topic_prefix: str = "pbxwatch"
    keepalive_seconds: int = Field(30, ge=5)
    reconnect_initial_seconds: float = Field(1.0, gt=0)
    reconnect_max_seconds: float = Field(30.0, gt=0)
    queue_state_seconds: float = Field(
        5.0, gt=0, description="how often retained queue state is refreshed (on change)"
    )
    shutdown_drain_seconds: float = Field(
        5.0,
        gt=0,
        description="at shutdown, how long to go on publishing the outbox "
        "(what is left is published at the next start)",
    )
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)

    def password(self) -> str | None:
        return read_secret("mqtt.password", self.password_env, self.password_file)


class MailRecipient(_Model):
    email: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    lang: Literal["sv", "en"] = "sv"


class MailUnitSettings(_Model):
    """Who gets a unit's mail besides its chief (``directory.units.<u>.chief.email``)."""

    chief_lang: Literal["sv", "en"] = "sv"
    recipients: list[MailRecipient] = Field(default_factory=list)


class MailSettings(_Model):
    """E-mail to unit chiefs over SMTP (see README: E-mail to unit chiefs)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="none only to a loopback relay"
    )
    username: str | None = None
    password_env: str | None = Field(None, description="env variable holding the password")
    password_file: Path | None = None
    sender: str = Field("pbxwatch@localhost", alias="from", pattern=r"^[^@\s]+@[^@\s]+$")
    units: dict[str, MailUnitSettings] = Field(default_factory=dict)
    digest_time: dt.time = Field(dt.time(7, 0), description="local time of the daily digest")
    weekly_day: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    console_url: str | None = Field(None, description="the console's base URL, for links")
    timeout_seconds: float = Field(30.0, gt=0)
    retry_initial_seconds: float = Field(30.0, gt=0)
    retry_max_seconds: float = Field(900.0, gt=0)
    max_attempts: int = Field(
        20, ge=1, description="4xx replies to one mail before it is given up as failed"
    )
    poll_seconds: float = Field(2.0, gt=0)
    shutdown_drain_seconds: float = Field(5.0, ge=0)

    @model_validator(mode="after")
    def _none_only_to_loopback(self) -> MailSettings:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(
                f"security none sends credentials and mail in clear: {self.host} is not "
                "a loopback address; use starttls or tls"
            )
        return self

    def password(self) -> str | None:
        return read_secret("mail.password", self.password_env, self.password_file)


class DiversionSettings(_Model):
    presence_states: list[str] = Field(default_factory=lambda: ["away", "xa", "dnd"])
    presentity_template: str = "CustomPresence:{ext}"
    forward_device_template: str | None = Field(
        "Custom:CF{ext}", description="custom device state that is in use while CF is on"
    )
    dnd_device_template: str | None = Field(
        "Custom:DND{ext}", description="custom device state that is in use while DND is on"
    )
    astdb_forward_family: str | None = Field(
        None, description="AstDB family holding call-forward numbers (e.g. CF); None = not used"
    )
    astdb_dnd_family: str | None = Field(
        None, description="AstDB family holding do-not-disturb flags (e.g. DND); None = not used"
    )
    astdb_poll_minutes: float = Field(
        10.0, gt=0, description="how often run re-reads the AstDB families with DBGet"
    )
    extended_away_states: list[str] = Field(default_factory=lambda: ["xa"])
    extended_absence_reasons: list[str] = Field(
        default_factory=lambda: ["semester", "tjänsteresa", "ledig", "sjuk", "föräldraledig"]
    )


#: the database drivers pbxwatch is built and tested for
SUPPORTED_STORES = ("postgresql+asyncpg", "sqlite+aiosqlite")


class StorageSettings(_Model):
    url: str | None = Field(
        None,
        description="SQLAlchemy async URL, e.g. postgresql+asyncpg://pbxwatch@db/pbxwatch; "
        "default SQLite in data_dir.  A password belongs in password_env, not here",
    )
    password_env: str | None = Field(None, description="env variable holding the DB password")
    data_dir: Path = Path("data")
    batch_size: int = Field(1000, ge=1)
    batch_delay_seconds: float = Field(0.25, gt=0)
    capacity_rows: int = Field(200_000, ge=1000, description="rows kept in memory before spilling")
    retention_days: int = Field(
        365, ge=1, description="personal data kept this long (per unit override possible)"
    )
    purge_every_hours: float = Field(
        24.0, gt=0, description="how often `run` erases personal data past retention"
    )
    checkpoint_seconds: float = Field(
        5.0,
        ge=0,
        description="how often `run` saves its live state (calls in progress, presence, "
        "queues) so a restart carries on from it; 0 = only at shutdown",
    )
    shutdown_flush_seconds: float = Field(
        10.0,
        gt=0,
        description="at shutdown, how long to wait for the database before the "
        "rows still queued go to the spill file (written first at the next start)",
    )

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, v: str | None) -> str | None:
        if v is None:
            return v
        scheme = v.split("://", 1)[0] if "://" in v else ""
        if scheme not in SUPPORTED_STORES:
            hint = " or ".join(f"{s}://" for s in SUPPORTED_STORES)
            raise ValueError(f"unsupported database {scheme or v!r}: use {hint}")
        return v

    def resolved_url(self) -> str:
        from pbxwatch.store.db import default_url

        url = self.url or default_url(self.data_dir)
        password = read_secret("storage.password", self.password_env, None)
        if password:
            from sqlalchemy.engine import make_url

            return make_url(url).set(password=password).render_as_string(hide_password=False)
        return url


class MetricsSettings(_Model):
    enabled: bool = True
    listen: str = Field(
        "127.0.0.1:9108",
        description="host:port of the /metrics endpoint; loopback unless you mean otherwise",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {v!r}")
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


#: roles of the web console: ``operations`` (everything), ``it`` (wallboard
#: and health, never a caller number), ``chief:<unit>`` and ``staff:<unit>``
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


class WebSettings(_Model):
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
        host, sep, port = v.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"expected host:port, got {v!r}")
        auth = info.data.get("auth")
        if isinstance(auth, WebAuthSettings) and auth.mode == "none" and not is_loopback(host):
            raise ValueError(
                f"{v} is not a loopback address: set web.auth.mode (oidc or header) "
                "or listen on 127.0.0.1"
            )
        return v

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class PhoneHours(_Model):
    days: list[str] = Field(default_factory=lambda: list(_DAYS[:5]))
    open: dt.time = dt.time(8, 0)
    close: dt.time = dt.time(16, 30)
    eve_close: dt.time | None = Field(
        None, description="earlier close on the bank 'from 2pm' eves, e.g. 14:00; None = as usual"
    )

    @field_validator("days")
    @classmethod
    def _known_days(cls, v: list[str]) -> list[str]:
        bad = [d for d in v if d not in _DAYS]
        if bad:
            raise ValueError(f"unknown day(s) {bad}; use {list(_DAYS)}")
        return v

    @model_validator(mode="after")
    def _order(self) -> PhoneHours:
        if self.close <= self.open:
            raise ValueError("close must be after open")
        return self


class CallbackPolicy(_Model):
    deadline: Literal["same_working_day", "working_days"] = "same_working_day"
    working_days: int = Field(1, ge=1, le=30)
    fulfilled_by: Literal["owner", "unit", "anyone"] = "owner"
    counts: Literal["attempt", "answered"] = "attempt"
    due_soon_minutes: int = Field(60, ge=0)
    during_absence: Literal["defer", "exempt"] = Field(
        "defer",
        description="a message left while the owner is extended-away for a listed reason: "
        "defer (the deadline counts from the owner's return; Falkenberg) or exempt "
        "(no deadline at all, only where the unit's guideline says so)",
    )


class Chief(_Model):
    name: str
    email: str | None = None
    extension: str | None = None


class UnitSettings(_Model):
    name: str
    chief: Chief | None = None
    phone_hours: PhoneHours = Field(default_factory=PhoneHours)
    answer_within_rings: int = Field(
        3, ge=1, le=20,
        description="N of the 'answered within N rings' share (metrics and dashboards)",
    )  # fmt: skip
    callback_policy: CallbackPolicy = Field(default_factory=CallbackPolicy)
    retention_days: int | None = Field(None, ge=1)
    show_caller_numbers: bool = False


class PersonSettings(_Model):
    name: str
    unit: str
    mailbox: str | None = None
    devices: list[str] = Field(default_factory=list)
    dids: list[str] = Field(default_factory=list)


class QueueSettings(_Model):
    kind: Literal["group", "contact_centre"]
    unit: str
    dids: list[str] = Field(default_factory=list)
    internal_numbers: list[str] = Field(default_factory=list)
    service_level_seconds: float = Field(60.0, gt=0)
    members: list[str] = Field(
        default_factory=list, description="member extensions, so pbxwatch knows the full team"
    )


class DirectorySettings(_Model):
    units: dict[str, UnitSettings]
    people: dict[str, PersonSettings] = Field(default_factory=dict)
    queues: dict[str, QueueSettings] = Field(default_factory=dict)
    device_templates: list[str] = Field(
        default_factory=lambda: ["PJSIP/{ext}", "SIP/{ext}", "IAX2/{ext}"],
        description="devices of a person who lists none",
    )

    @field_validator("units")
    @classmethod
    def _slugs(cls, v: dict[str, UnitSettings]) -> dict[str, UnitSettings]:
        for key in v:
            if not _SLUG.match(key):
                raise ValueError(f"unit key {key!r} must be a slug (a-z, 0-9, -, _)")
        return v

    @model_validator(mode="after")
    def _references(self) -> DirectorySettings:
        for ext, person in self.people.items():
            if person.unit not in self.units:
                raise ValueError(f"people.{ext}.unit: unknown unit {person.unit!r}")
        for name, queue in self.queues.items():
            if queue.unit not in self.units:
                raise ValueError(f"queues.{name}.unit: unknown unit {queue.unit!r}")
            strangers = [m for m in queue.members if m not in self.people]
            if strangers:
                raise ValueError(f"queues.{name}.members: not in people: {strangers}")
        seen: dict[str, str] = {}
        for ext, person in self.people.items():
            for did in person.dids:
                _claim(seen, did, f"people.{ext}")
        for name, queue in self.queues.items():
            for did in queue.dids:
                _claim(seen, did, f"queues.{name}")
        return self


def _claim(seen: dict[str, str], did: str, owner: str) -> None:
    if did in seen:
        raise ValueError(f"{owner}.dids: DID {did} is already used by {seen[did]}")
    seen[did] = owner


class TargetSettings(_Model):
    """The guideline targets operations measure against.  The guidelines ask
    for short answer times, few rings, few abandoned calls and callbacks the
    same day without numbers: these are the municipality's own goals, used for
    the dashboards' thresholds (``config/grafana/generate.py --config``)."""

    availability: float = Field(0.8, ge=0, le=1, description="answered / offered, at least")
    answer_seconds_p90: float = Field(30.0, gt=0, description="90th percentile, at most")
    answered_within_rings_share: float = Field(
        0.8, ge=0, le=1, description="answered within the unit's answer_within_rings, at least"
    )
    abandoned_share: float = Field(0.1, ge=0, le=1, description="at most")
    missing_forward_share: float = Field(0.1, ge=0, le=1, description="at most")
    callbacks_on_time_share: float = Field(0.95, ge=0, le=1, description="at least")
    service_level: float = Field(
        0.8, ge=0, le=1, description="queue callers answered within service_level_seconds "
        "/ offered (short abandons apart), at least"
    )  # fmt: skip
    direct_resolution: float = Field(
        0.7, ge=0, le=1, description="contact-centre calls answered without transfer, at least"
    )


class PrivacySettings(_Model):
    """Caller numbers are personal data held by a public authority."""

    mask_numbers_in_logs: bool = Field(
        True, description="mask anything that looks like a phone number in every log line"
    )
    pseudonymise_numbers: bool = Field(
        False,
        description="store caller and dialled numbers as keyed HMACs, not in clear; "
        "equal numbers stay equal, so callbacks still match",
    )
    pseudonym_key_env: str = "PBXWATCH_PSEUDONYM_KEY"
    pseudonym_key_file: Path | None = None

    def pseudonym_key(self) -> bytes | None:
        """The HMAC key when pseudonymisation is on (a missing key is an
        error: numbers must not silently be stored in clear)."""
        if not self.pseudonymise_numbers:
            return None
        key = read_secret("privacy.pseudonym_key", self.pseudonym_key_env,
                          self.pseudonym_key_file)  # fmt: skip
        if not key or len(key) < 16:
            raise ConfigError(
                f"privacy.pseudonymise_numbers: set a key of at least 16 characters in "
                f"{self.pseudonym_key_env} or privacy.pseudonym_key_file"
            )
        return key.encode()


class Settings(BaseSettings):
    """The whole configuration file."""

    model_config = SettingsConfigDict(
        extra="forbid", env_prefix="PBXWATCH_", env_nested_delimiter="__", frozen=True
    )

    site: Annotated[str, Field(pattern=_SLUG.pattern)]
    timezone: str = "Europe/Stockholm"
    ami: AmiSettings = Field(default_factory=AmiSettings)
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    calls: CallSettings = Field(default_factory=CallSettings)
    numbers: NumberSettings = Field(default_factory=NumberSettings)
    diversion: DiversionSettings = Field(default_factory=DiversionSettings)
    calendar: CalendarSettings = Field(default_factory=CalendarSettings)
    detection: DetectionSettings = Field(default_factory=DetectionSettings)
    clock: ClockSettings = Field(default_factory=ClockSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    targets: TargetSettings = Field(default_factory=TargetSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    directory: DirectorySettings

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {v!r}") from exc
        return v

    def source_name(self) -> str:
        """The PBX as the store knows it: stream position, gaps and the
        checkpoint of ``run`` are kept under this name."""
        return f"ami:{self.ami.host}:{self.ami.port}"

    @model_validator(mode="after")
    def _inbound_rule(self) -> Settings:
        has_dids = any(p.dids for p in self.directory.people.values()) or any(
            q.dids for q in self.directory.queues.values()
        )
        if not (self.inbound.trunk_channels or self.inbound.contexts or has_dids):
            raise ValueError(
                "inbound: give trunk_channels, contexts or DIDs so inbound calls can be recognised"
            )
        return self

    @model_validator(mode="after")
    def _mail_units(self) -> Settings:
        for unit in self.mail.units:
            if unit not in self.directory.units:
                raise ValueError(f"mail.units: unknown unit {unit!r}")
        return self

    @model_validator(mode="after")
    def _web_units(self) -> Settings:
        where = f"web.auth.{self.web.auth.mode}.role_map"
        for claim, roles in self.web.auth.role_map().items():
            for role in roles:
                unit = role.partition(":")[2]
                if unit and unit not in self.directory.units:
                    raise ValueError(f"{where}.{claim}: unknown unit {unit!r} in {role!r}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment overrides the YAML (passed as init kwargs).
        return (env_settings, init_settings)

    def directory_model(self) -> Directory:
        """The pure lookup structure the core works with."""
        return build_directory(self)


def build_directory(settings: Settings) -> Directory:
    d = settings.directory
    units = {
        key: Unit(
            key=key,
            name=u.name,
            show_caller_numbers=u.show_caller_numbers,
            phone_hours=calendar.PhoneHours(
                days=frozenset(_DAYS.index(day) for day in u.phone_hours.days),
                open=u.phone_hours.open,
                close=u.phone_hours.close,
                eve_close=u.phone_hours.eve_close,
            ),
            callback_policy=calendar.CallbackPolicy(
                deadline=u.callback_policy.deadline,
                working_days=u.callback_policy.working_days,
                fulfilled_by=u.callback_policy.fulfilled_by,
                counts=u.callback_policy.counts,
                due_soon_seconds=u.callback_policy.due_soon_minutes * 60.0,
                during_absence=u.callback_policy.during_absence,
            ),
        )
        for key, u in d.units.items()
    }
    people: dict[str, Person] = {}
    devices: dict[str, str] = {}
    presentities: dict[str, str] = {}
    div = settings.diversion
    diversion_templates: list[tuple[str, Source]] = []
    if div.forward_device_template:
        diversion_templates.append((div.forward_device_template, "call_forward"))
    if div.dnd_device_template:
        diversion_templates.append((div.dnd_device_template, "dnd"))
    diversion_devices: dict[str, tuple[str, Source]] = {}
    astdb_families: dict[str, Source] = {}
    if div.astdb_forward_family:
        astdb_families[div.astdb_forward_family.upper()] = "call_forward"
    if div.astdb_dnd_family:
        astdb_families[div.astdb_dnd_family.upper()] = "dnd"
    dids: dict[str, Target] = {}
    internal: dict[str, Target] = {}
    for ext, p in d.people.items():
        people[ext] = Person(extension=ext, name=p.name, unit=p.unit, mailbox=p.mailbox)
        for device in p.devices or [t.format(ext=ext) for t in d.device_templates]:
            devices[device.lower()] = ext
        presentities[settings.diversion.presentity_template.format(ext=ext).lower()] = ext
        for template, source in diversion_templates:
            diversion_devices[template.format(ext=ext).lower()] = (ext, source)
        for did in p.dids:
            dids[did] = Target("extension", ext)
        internal[ext] = Target("extension", ext)
    queues: dict[str, QueueInfo] = {}
    for name, q in d.queues.items():
        queues[name] = QueueInfo(
            name=name,
            kind=q.kind,
            unit=q.unit,
            service_level_seconds=q.service_level_seconds,
            members=tuple(q.members),
        )
        target = Target(q.kind, name)
        for did in q.dids:
            dids[did] = target
        for num in q.internal_numbers:
            internal[num] = target
    return Directory(
        units=units,
        people=people,
        queues=queues,
        devices=devices,
        presentities=presentities,
        diversion_devices=diversion_devices,
        astdb_families=astdb_families,
        dids=dids,
        internal_numbers=internal,
        trunk_channels=tuple(settings.inbound.trunk_channels),
        inbound_contexts=frozenset(settings.inbound.contexts),
        diverting_presence=frozenset(s.lower() for s in settings.diversion.presence_states),
        extended_absence=tuple(r.lower() for r in settings.diversion.extended_absence_reasons),
        extended_away_states=frozenset(s.lower() for s in settings.diversion.extended_away_states),
        country_code=settings.numbers.default_country_code,
        outbound_prefix=settings.numbers.outbound_prefix,
    )


def _format_loc(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for err in exc.errors():
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            if err["loc"] and err["loc"][-1] == "secret":
                msg += " (secrets never go in the YAML: use ami.secret_env or ami.secret_file)"
        lines.append(f"  {_format_loc(err['loc'])}: {msg}")
    if len(lines) == 2:  # one mistake: one line, the key first
        return f"{source}: {lines[1].strip()}"
    return "\n".join(lines)


def load_settings(path: str | Path) -> Settings:
    """Read and validate a YAML configuration file.

    Raises ConfigError with the file name and the offending key(s).
    """
    path = Path(path)
    try:
        raw: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    try:
        return Settings(**raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
