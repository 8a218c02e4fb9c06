"""The PBX side: the AMI connection, what is inbound, calls, numbers, the
calendar, the clock, detections and diversion."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from pydantic import (
    Field,
    SecretStr,
    field_validator,
)

from pbxwatch.settings.base import ConfigError, _Model, known_zone, read_secret


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


#: the id of the PBX a config with a single ``ami:`` block describes, and of
#: every row an older pbxwatch stored (migration 0012)
DEFAULT_PBX = "main"


class PbxSettings(_Model):
    """One PBX of ``pbxs:``: its AMI, what is inbound on it, its time zone
    and the part of the directory it serves (all of it when neither
    ``units`` nor ``extensions`` is given)."""

    #: at most 16: a PBX other than main prefixes its ids with it (64 characters at most)
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=16)
    ami: AmiSettings = Field(default_factory=AmiSettings)
    timezone: str | None = Field(None, description="the PBX's own time zone; default: timezone")
    inbound: InboundSettings = Field(default_factory=InboundSettings)
    units: list[str] | None = Field(
        None, description="the units whose people and queues are on this PBX"
    )
    extensions: list[str] | None = Field(
        None, description="people (extensions) on this PBX besides those of its units"
    )

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return None if v is None else known_zone(v)

    @property
    def serves_everything(self) -> bool:
        """Neither ``units`` nor ``extensions`` given: the whole directory."""
        return self.units is None and self.extensions is None
