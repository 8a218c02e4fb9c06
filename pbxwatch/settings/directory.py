"""Who is who: units and their phone hours and callback policy, people,
queues, the guideline targets and privacy; and the core's Directory built
from them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from pbxwatch.core import calendar
from pbxwatch.core.directory import Directory, Person, QueueInfo, Target, Unit
from pbxwatch.core.directory import DiversionSource as Source
from pbxwatch.settings.base import _DAYS, _SLUG, ConfigError, _Model, read_secret

if TYPE_CHECKING:
    from pbxwatch.settings import Settings


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
