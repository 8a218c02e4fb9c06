"""Where findings go: MQTT (and Home Assistant discovery), e-mail, the
store and the metrics endpoint."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

from pydantic import (
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from pbxwatch.settings.base import _Listening, _Model, host_port, read_secret
from pbxwatch.settings.web import is_loopback


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


class MetricsSettings(_Model, _Listening):
    enabled: bool = True
    listen: str = Field(
        "127.0.0.1:9108",
        description="host:port of the /metrics endpoint; loopback unless you mean otherwise",
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, v: str) -> str:
        return host_port(v)


#: roles of the web console: ``operations`` (everything), ``it`` (wallboard
#: and health, never a caller number), ``chief:<unit>`` and ``staff:<unit>``
