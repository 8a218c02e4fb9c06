"""Configuration: one YAML file validated by pydantic.

Every model forbids unknown keys so that a typo ("phone_hour") is an error
naming the key rather than a silently ignored setting.  Secrets never live in
the YAML: the AMI secret comes from an environment variable or a file
(``ami.secret_env`` / ``ami.secret_file``).  Environment variables
``PBXWATCH_<SECTION>__<KEY>`` override YAML values (useful in containers).

The models live in modules by what they configure (``pbx``, ``outputs``,
``web``, ``directory``); everything is importable from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from pbxwatch.core.directory import Directory
from pbxwatch.settings.base import (
    _SLUG,
    ConfigError,
    format_validation_error,
    known_zone,
    read_secret,
)
from pbxwatch.settings.cluster import ClusterSettings
from pbxwatch.settings.directory import (
    CallbackPolicy,
    Chief,
    DirectorySettings,
    PersonSettings,
    PhoneHours,
    PrivacySettings,
    QueueSettings,
    TargetSettings,
    UnitSettings,
    build_directory,
)
from pbxwatch.settings.outputs import (
    SUPPORTED_STORES,
    DiscoverySettings,
    MailRecipient,
    MailSettings,
    MailUnitSettings,
    MetricsSettings,
    MqttSettings,
    StorageSettings,
)
from pbxwatch.settings.pbx import (
    DEFAULT_PBX,
    AmiSettings,
    CalendarSettings,
    CallSettings,
    ClockSettings,
    DetectionSettings,
    DiversionSettings,
    InboundSettings,
    NumberSettings,
    PbxSettings,
)
from pbxwatch.settings.web import (
    HeaderAuthSettings,
    OidcSettings,
    WebAuthSettings,
    WebSessionSettings,
    WebSettings,
    is_loopback,
)


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
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    directory: DirectorySettings
    #: the PBXs, when more than one (or one with its own id); without it
    #: ``ami`` and ``inbound`` are the one PBX, ``main``
    pbxs: list[PbxSettings] = Field(default_factory=list)
    #: the PBX a view of :meth:`pbx_views` is of (not a YAML key)
    _pbx_id: str = PrivateAttr(DEFAULT_PBX)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return known_zone(v)

    @property
    def pbx_id(self) -> str:
        """The PBX these settings are of: ``main`` unless a view of one of
        ``pbxs``."""
        return self._pbx_id

    def pbx_ids(self) -> list[str]:
        """The configured PBX ids, in the config's order."""
        return [p.id for p in self.pbxs] or [DEFAULT_PBX]

    def source_name(self) -> str:
        """The PBX as the store knows it: stream position, gaps and the
        checkpoint of ``run`` are kept under this name.  The ``main`` PBX is
        its AMI address (as before there were many); another is its id, so
        that it keeps its checkpoint when its address changes."""
        if self._pbx_id != DEFAULT_PBX:
            return f"pbx:{self._pbx_id}"
        return f"ami:{self.ami.host}:{self.ami.port}"

    def pbx_views(self) -> list[Settings]:
        """One ``Settings`` per PBX, as if each were the only one: its
        ``ami``, ``inbound``, ``timezone`` and part of the directory (every
        unit stays: a unit may span PBXs), and its :attr:`pbx_id`."""
        if not self.pbxs:
            return [self]
        return [self._view(p) for p in self.pbxs]

    def _view(self, pbx: PbxSettings) -> Settings:
        d = self.directory
        units = set(pbx.units) if pbx.units is not None else None
        exts = set(pbx.extensions or ())
        every = pbx.serves_everything
        people = {ext: p for ext, p in d.people.items()
                  if every or (units is not None and p.unit in units) or ext in exts}  # fmt: skip
        queues = {
            name: q.model_copy(update={"members": [m for m in q.members if m in people]})
            for name, q in d.queues.items()
            if every or (units is not None and q.unit in units)
        }
        directory = d.model_copy(update={"people": people, "queues": queues})
        view = self.model_copy(update={
            "ami": pbx.ami, "inbound": pbx.inbound, "timezone": pbx.timezone or self.timezone,
            "directory": directory, "pbxs": [],
        })  # fmt: skip
        view._pbx_id = pbx.id
        return view

    @model_validator(mode="after")
    def _pbxs(self) -> Settings:
        if not self.pbxs:
            return self
        for key in ("ami", "inbound"):
            if key in self.model_fields_set:
                raise ValueError(f"{key}: give it in each of pbxs, not besides pbxs")
        seen: dict[object, str] = {}
        for i, pbx in enumerate(self.pbxs):
            where = f"pbxs.{i}"
            if pbx.id in seen:
                raise ValueError(f"{where}.id: {pbx.id!r} is given twice")
            seen[pbx.id] = where
            address = (pbx.ami.host, pbx.ami.port)
            if address in seen:
                raise ValueError(
                    f"{where}.ami: {pbx.ami.host}:{pbx.ami.port} is also {seen[address]}'s"
                )
            seen[address] = where
            for unit in pbx.units or ():
                if unit not in self.directory.units:
                    raise ValueError(f"{where}.units: unknown unit {unit!r}")
            for ext in pbx.extensions or ():
                if ext not in self.directory.people:
                    raise ValueError(f"{where}.extensions: not in people: {ext!r}")
            _check_inbound(self._view(pbx), f"{where}.inbound")
        return self

    @model_validator(mode="after")
    def _cluster_store(self) -> Settings:
        """Instances share their leases and rows through one database: an
        embedded SQLite file is each host's own."""
        url = self.storage.url or ""
        if self.cluster.enabled and not url.startswith("postgresql"):
            raise ValueError("cluster.enabled: the instances must share one PostgreSQL "
                             "(storage.url: postgresql+asyncpg://...)")  # fmt: skip
        return self

    @model_validator(mode="after")
    def _inbound_rule(self) -> Settings:
        if not self.pbxs:
            _check_inbound(self, "inbound")
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


def _check_inbound(settings: Settings, where: str) -> None:
    d = settings.directory
    has_dids = any(p.dids for p in d.people.values()) or any(q.dids for q in d.queues.values())
    if not (settings.inbound.trunk_channels or settings.inbound.contexts or has_dids):
        raise ValueError(
            f"{where}: give trunk_channels, contexts or DIDs so inbound calls can be recognised"
        )


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


__all__ = [
    "DEFAULT_PBX",
    "SUPPORTED_STORES",
    "AmiSettings",
    "CalendarSettings",
    "CallSettings",
    "CallbackPolicy",
    "Chief",
    "ClockSettings",
    "ClusterSettings",
    "ConfigError",
    "DetectionSettings",
    "DirectorySettings",
    "DiscoverySettings",
    "DiversionSettings",
    "HeaderAuthSettings",
    "InboundSettings",
    "MailRecipient",
    "MailSettings",
    "MailUnitSettings",
    "MetricsSettings",
    "MqttSettings",
    "NumberSettings",
    "OidcSettings",
    "PbxSettings",
    "PersonSettings",
    "PhoneHours",
    "PrivacySettings",
    "QueueSettings",
    "Settings",
    "StorageSettings",
    "TargetSettings",
    "UnitSettings",
    "WebAuthSettings",
    "WebSessionSettings",
    "WebSettings",
    "build_directory",
    "format_validation_error",
    "is_loopback",
    "load_settings",
    "read_secret",
]
