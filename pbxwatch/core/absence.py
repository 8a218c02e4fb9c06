"""Warn before calls are missed: a person's phone is unreachable during
phone hours and no diversion is set.

A device that reports ``UNAVAILABLE`` (unregistered, switched off) for
longer than the threshold while its owner's presence does not divert opens
an ``unforwarded_absence`` incident; it is resolved when the device is back
or a diversion is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from pbxwatch.core.calendar import WorkCalendar
from pbxwatch.core.directory import Directory
from pbxwatch.core.diversion import DiversionBook
from pbxwatch.core.events import AmiEvent, plausible_epoch
from pbxwatch.core.incidents import Incident

_UNREACHABLE = frozenset({"UNAVAILABLE", "INVALID"})
#: PJSIP's ContactStatus: the phone's registration gone or not answering
#: its qualify; the earliest sign that it is gone
_CONTACT_GONE = frozenset({"UNREACHABLE", "REMOVED"})
_CONTACT_BACK = frozenset({"REACHABLE", "CREATED", "UPDATED"})


@dataclass(slots=True)
class _Watch:
    #: None: learnt before pbxwatch knew the PBX's time (a state read at a
    #: start, before any event): counted from the first tick that knows it
    since: float | None
    open_id: str | None = None


class AbsenceWatch:
    def __init__(
        self,
        directory: Directory,
        calendar: WorkCalendar,
        presence: DiversionBook,
        threshold: float = 900.0,
    ) -> None:
        self.directory = directory
        self.calendar = calendar
        self.presence = presence
        self.threshold = threshold
        self._unreachable: dict[str, _Watch] = {}

    def apply(self, ev: AmiEvent, now: float) -> list[Incident]:
        """A device state, or a PJSIP contact's status, of a person's phone."""
        if ev.name == "ContactStatus":
            status = ev.get("ContactStatus").upper()
            ext = self.directory.extension_of_device(f"PJSIP/{ev.get('EndpointName')}")
            if ext is None or status not in _CONTACT_GONE | _CONTACT_BACK:
                return []
            return self._reachable(ext, status in _CONTACT_BACK, now)
        if ev.name != "DeviceStateChange":
            return []
        ext = self.directory.extension_of_device(ev.get("Device"))
        if ext is None:
            return []
        return self._reachable(ext, ev.get("State").upper() not in _UNREACHABLE, now)

    def _reachable(self, ext: str, reachable: bool, now: float) -> list[Incident]:
        if not reachable:
            self._unreachable.setdefault(ext, _Watch(since=now if plausible_epoch(now) else None))
            return []
        watch = self._unreachable.pop(ext, None)
        return [self._resolved(ext, watch, now)] if watch and watch.open_id else []

    def restore(self, ext: str, since: float, incident_id: str) -> None:
        """Carry on an open warning loaded from the store after a restart:
        it resolves (with its original id) when the device comes back or a
        diversion is set, instead of opening a second one."""
        if ext in self.directory.people:
            self._unreachable[ext] = _Watch(since=since, open_id=incident_id)

    def dump(self) -> dict[str, Any]:
        """For a checkpoint: the devices unreachable, since when."""
        return {ext: asdict(w) for ext, w in self._unreachable.items()}

    def load(self, state: Mapping[str, Any]) -> None:
        self._unreachable = {ext: _Watch(**w) for ext, w in state.items()
                             if ext in self.directory.people}  # fmt: skip

    def tick(self, now: float) -> list[Incident]:
        out: list[Incident] = []
        for ext, watch in list(self._unreachable.items()):
            if watch.since is None:
                if plausible_epoch(now):
                    watch.since = now  # unreachable at least since pbxwatch has watched
                continue
            person = self.directory.people[ext]
            diverted = self.presence.is_diverted(ext) is True
            if watch.open_id is not None:
                if diverted:
                    out.append(self._resolved(ext, watch, now))
                    watch.open_id = None
                    watch.since = now
                continue
            hours = self.directory.unit(person.unit).phone_hours
            if (
                not diverted
                and now - watch.since >= self.threshold
                and self.calendar.in_phone_hours(now, hours)
            ):
                watch.open_id = f"unforwarded_absence:{ext}:{watch.since:.3f}"
                out.append(
                    Incident(
                        incident_id=watch.open_id,
                        kind="unforwarded_absence",
                        state="open",
                        started_at=watch.since,
                        unit=person.unit,
                        extension=ext,
                    )
                )
        return out

    def _resolved(self, ext: str, watch: _Watch, now: float) -> Incident:
        assert watch.open_id is not None
        return Incident(
            incident_id=watch.open_id,
            kind="unforwarded_absence",
            state="resolved",
            started_at=now if watch.since is None else watch.since,  # opened: since is known
            ended_at=now,
            unit=self.directory.people[ext].unit,
            extension=ext,
        )
