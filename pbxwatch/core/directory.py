"""Who is who on the PBX: the lookups the core needs, free of pydantic."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from pbxwatch.core.calendar import CallbackPolicy, PhoneHours

DiversionSource = Literal["presence", "call_forward", "dnd"]
TargetKind = Literal["extension", "group", "contact_centre", "external", "voicemail", "other"]


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    name: str


@dataclass(frozen=True, slots=True)
class Unit:
    key: str
    name: str
    show_caller_numbers: bool = False
    phone_hours: PhoneHours = field(default_factory=PhoneHours)
    callback_policy: CallbackPolicy = field(default_factory=CallbackPolicy)


@dataclass(frozen=True, slots=True)
class Person:
    extension: str
    name: str
    unit: str
    mailbox: str | None = None


@dataclass(frozen=True, slots=True)
class QueueInfo:
    name: str
    kind: Literal["group", "contact_centre"]
    unit: str
    service_level_seconds: float = 60.0
    members: tuple[str, ...] = ()  # extensions; empty = not known from configuration


@dataclass
class Usage:
    """What of the directory events have matched so far: a configured device
    or trunk pattern that never matches is a configuration that is wrong
    for this PBX (say IAX2 names on a PJSIP system), and is reported."""

    devices: set[str] = field(default_factory=set)  # lower-case configured devices
    trunks: set[int] = field(default_factory=set)  # indexes into trunk_channels
    by_resource: int = 0  # devices recognised by their resource alone


@dataclass(frozen=True)
class Directory:
    units: dict[str, Unit] = field(default_factory=dict)
    people: dict[str, Person] = field(default_factory=dict)
    queues: dict[str, QueueInfo] = field(default_factory=dict)
    devices: dict[str, str] = field(default_factory=dict)  # lower-case device -> extension
    presentities: dict[str, str] = field(default_factory=dict)  # lower-case -> extension
    # lower-case custom device (Custom:CF1001) -> (extension, what it diverts by)
    diversion_devices: dict[str, tuple[str, DiversionSource]] = field(default_factory=dict)
    astdb_families: dict[str, DiversionSource] = field(default_factory=dict)  # upper-case family
    dids: dict[str, Target] = field(default_factory=dict)
    internal_numbers: dict[str, Target] = field(default_factory=dict)
    trunk_channels: tuple[str, ...] = ()
    inbound_contexts: frozenset[str] = frozenset()
    diverting_presence: frozenset[str] = frozenset({"away", "xa", "dnd"})
    extended_absence: tuple[str, ...] = ()
    extended_away_states: frozenset[str] = frozenset({"xa"})
    country_code: str = "46"
    outbound_prefix: str = ""

    #: what of the configuration the stream has matched (see :class:`Usage`)
    usage: Usage = field(default_factory=Usage, compare=False)

    @cached_property
    def _trunk_re(self) -> re.Pattern[str] | None:
        if not self.trunk_channels:
            return None
        return re.compile(
            "|".join(f"(?P<t{i}>{trunk_pattern(p)})" for i, p in enumerate(self.trunk_channels)),
            re.I,
        )

    def is_trunk(self, channel: str) -> bool:
        rx = self._trunk_re
        found = rx.match(channel) if rx is not None else None
        if found is None:
            return False
        self.usage.trunks.add(int((found.lastgroup or "t0")[1:]))
        return True

    def extension_of_device(self, device: str) -> str | None:
        """The person whose phone ``device`` is: a configured device, or
        else, whatever the technology (PJSIP, IAX2, SIP ...), a device whose
        resource is a person's extension (``PJSIP/1001`` of 1001 configured
        as ``IAX2/1001``): the stream names the technology, not the config."""
        key = device.lower()
        found = self.devices.get(key)
        if found is not None:
            self.usage.devices.add(key)
            return found
        tech, sep, resource = device.partition("/")
        if not sep or tech.lower() == "local" or "@" in resource or "/" in resource:
            return None
        if resource in self.people:
            self.usage.by_resource += 1
            return resource
        return None

    def unmatched(self) -> tuple[list[str], list[str]]:
        """Configured devices and trunk patterns the stream never matched."""
        devices = sorted(d for d in self.devices if d not in self.usage.devices)
        trunks = [p for i, p in enumerate(self.trunk_channels) if i not in self.usage.trunks]
        return devices, trunks

    def diversion_device(self, device: str) -> tuple[str, DiversionSource] | None:
        return self.diversion_devices.get(device.lower())

    def unit_of_target(self, target: Target | None) -> str | None:
        if target is None:
            return None
        if target.kind == "extension":
            person = self.people.get(target.name)
            return person.unit if person else None
        queue = self.queues.get(target.name)
        return queue.unit if queue else None

    def unit(self, key: str | None) -> Unit:
        """The unit, or a default one (default phone hours and policy) for
        people and queues the directory does not place."""
        found = self.units.get(key) if key else None
        return found if found is not None else Unit(key=key or "unknown", name=key or "unknown")

    def person_of_mailbox(self, mailbox: str) -> Person | None:
        for person in self.people.values():
            if person.mailbox == mailbox:
                return person
        return None

    def queue_kind(self, queue: str) -> Literal["group", "contact_centre"] | None:
        info = self.queues.get(queue)
        return info.kind if info else None


def trunk_pattern(pattern: str) -> str:
    """A trunk as a regular expression: an fnmatch pattern of channels
    (``IAX2/pstn-*``), or an endpoint name alone (``pstn``): its channels on
    any technology (``PJSIP/pstn-00000012``, ``IAX2/pstn-4711``)."""
    if "/" in pattern:
        return fnmatch.translate(pattern)
    return rf"[^/]+/{re.escape(pattern)}(?:-[^/]*)?\Z"


def mailbox_key(value: str) -> str:
    """``1002`` -> ``1002@default``; a mailbox with a context is kept."""
    box = value.strip()
    return box if "@" in box else f"{box}@default"


def device_of_channel(channel: str) -> str:
    """``IAX2/1001-8297`` -> ``IAX2/1001``; ``Local/1003@grp-member-0000000e;1`` ->
    ``Local/1003@grp-member``.  Asterisk appends ``-<sequence>`` (and ``;n`` for
    Local halves) to the device name; everything before that is the device."""
    name = channel.split(";", 1)[0]
    head, sep, _tail = name.rpartition("-")
    return head if sep and "/" in head else name


def resource_of_device(device: str) -> str:
    """``IAX2/1001`` -> ``1001``; ``Local/1003@grp-member`` -> ``1003``."""
    res = device.split("/", 1)[-1]
    return res.split("@", 1)[0]
