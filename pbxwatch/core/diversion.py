"""Diversion (hänvisning) per extension, kept as intervals.

A municipality's PBX diverts a person's calls in one of three ways, and
pbxwatch follows all of them as far as the PBX tells:

* **presence** — away / xa / dnd with a subtype and a free-text message
  ("Lunch till 13:00").  ``PresenceStateChange`` names the presentity
  (``CustomPresence:1002``), ``PresenceStatus`` the hint (``1002@hints``);
  both arrive for one change and either suffices.
* **call forward** — a ``Custom:CF<ext>`` device state (set by the dialplan
  with ``DEVICE_STATE()``) or the AstDB key ``CF/<ext>`` read with
  ``DBGet`` (the answer arrives as ``DBGetResponse``; an empty ``Val`` means
  "not set").
* **do not disturb** — ``Custom:DND<ext>`` or AstDB ``DND/<ext>``.

Each source that diverts opens an interval (who, since when, why); a change
of reason closes it and opens the next, so reports can say who was diverted
when and why.  Closed intervals are returned as records; open ones are in
the snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pbxwatch.core.directory import Directory, DiversionSource
from pbxwatch.core.events import AmiEvent

Source = DiversionSource

_ACTIVE_DEVICE_STATES = frozenset({"INUSE", "BUSY", "ONHOLD", "RINGING", "RINGINUSE"})
_FALSE_VALUES = frozenset({"", "0", "no", "off", "false"})


@dataclass(frozen=True, slots=True)
class Presence:
    """Why an extension is (or is not) diverted, as one reason."""

    state: str
    subtype: str
    message: str
    since: float

    def describe(self) -> str:
        parts = [self.state, self.subtype, self.message]
        return " ".join(p for p in parts if p)


@dataclass(frozen=True, slots=True)
class DiversionInterval:
    """One stretch of time an extension was diverted for one reason."""

    extension: str
    unit: str | None
    source: Source
    state: str
    subtype: str
    message: str
    start: float
    end: float | None = None
    #: of its extension, source and start unless given (a store's ids are
    #: one PBX's: ``pbxwatch.stamp`` prefixes it like any record's id)
    interval_id: str = ""

    def __post_init__(self) -> None:
        if not self.interval_id:
            made = f"diversion:{self.extension}:{self.source}:{self.start:.3f}"
            object.__setattr__(self, "interval_id", made)

    def to_json(self, tz: ZoneInfo) -> dict[str, Any]:
        def iso(t: float | None) -> str | None:
            return None if t is None else datetime.fromtimestamp(t, tz).isoformat()

        return {
            "type": "diversion",
            "interval_id": self.interval_id,
            "extension": self.extension,
            "unit": self.unit,
            "source": self.source,
            "state": self.state,
            "subtype": self.subtype,
            "message": self.message,
            "start": iso(self.start),
            "end": iso(self.end),
            "seconds": None if self.end is None else round(self.end - self.start, 3),
        }


class DiversionBook:
    """Latest diversion state per extension, and the intervals it makes."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self._presence: dict[str, Presence] = {}
        self._other: dict[tuple[str, Source], Presence | None] = {}
        self._open: dict[tuple[str, Source], DiversionInterval] = {}

    # ------------------------------------------------------------ queries

    def get(self, extension: str) -> Presence | None:
        """The reason calls to ``extension`` divert now, or its latest
        (non-diverting) presence; ``None`` if the PBX never said."""
        p = self._presence.get(extension)
        if p is not None and self._presence_diverts(p):
            return p
        for source in ("call_forward", "dnd"):
            other = self._other.get((extension, source))
            if other is not None:
                return other
        return p

    def is_diverted(self, extension: str) -> bool | None:
        """``None`` when no source has reported on ``extension`` at all."""
        known = extension in self._presence or any(
            (extension, s) in self._other for s in ("call_forward", "dnd")
        )
        if not known:
            return None
        return any(ext == extension for ext, _ in self._open)

    def dump(self) -> dict[str, Any]:
        """For a checkpoint: what each source last said, and the open intervals."""
        return {
            "presence": {ext: asdict(p) for ext, p in self._presence.items()},
            "other": [
                [ext, src, asdict(p) if p else None] for (ext, src), p in self._other.items()
            ],
            "open": [asdict(i) for i in self._open.values()],
        }

    def load(self, state: Mapping[str, Any]) -> None:
        self._presence = {ext: Presence(**p) for ext, p in state["presence"].items()}
        self._other = {(ext, src): Presence(**p) if p else None for ext, src, p in state["other"]}
        self._open = {(i["extension"], i["source"]): DiversionInterval(**i)
                      for i in state["open"]}  # fmt: skip

    def open_intervals(self) -> list[DiversionInterval]:
        return sorted(self._open.values(), key=lambda i: (i.start, i.extension))

    # ------------------------------------------------------------ updates

    def apply(self, ev: AmiEvent, now: float) -> list[DiversionInterval]:
        """Apply a presence, device-state or AstDB event; return closed intervals."""
        if ev.name in ("PresenceStateChange", "PresenceStatus"):
            return self._apply_presence(ev, now)
        if ev.name == "DeviceStateChange":
            return self._apply_custom_device(ev.get("Device"), ev.get("State"), now)
        if ev.name == "DBGetResponse":
            return self._apply_astdb(ev.get("Family"), ev.get("Key"), ev.get("Val"), now)
        return []

    def _apply_presence(self, ev: AmiEvent, now: float) -> list[DiversionInterval]:
        if ev.name == "PresenceStateChange":
            ext = self._directory.presentities.get(ev.get("Presentity").lower())
        else:
            ext = ev.get("Exten") or None
        if ext is None:
            return []
        new = Presence(
            state=ev.get("Status").strip().lower(),
            subtype=ev.get("Subtype").strip(),
            message=ev.get("Message").strip(),
            since=now,
        )
        old = self._presence.get(ext)
        if old is not None and _same(old, new):
            return []  # the paired event of the same change: keep the first time
        self._presence[ext] = new
        return self._set(ext, "presence", new if self._presence_diverts(new) else None, now)

    def _apply_custom_device(self, device: str, state: str, now: float) -> list[DiversionInterval]:
        found = self._directory.diversion_device(device)
        if found is None:
            return []
        ext, source = found
        active = state.strip().upper() in _ACTIVE_DEVICE_STATES
        reason = Presence(state=_state_of(source), subtype=device, message="", since=now)
        return self._set_other(ext, source, reason if active else None, now)

    def _apply_astdb(self, family: str, key: str, val: str, now: float) -> list[DiversionInterval]:
        source = self._directory.astdb_families.get(family.strip().upper())
        ext = key.strip()
        if source is None or ext not in self._directory.people:
            return []
        active = val.strip().lower() not in _FALSE_VALUES
        message = val.strip() if source == "call_forward" else ""
        reason = Presence(state=_state_of(source), subtype=f"{family}/{ext}", message=message,
                          since=now)  # fmt: skip
        return self._set_other(ext, source, reason if active else None, now)

    def _set_other(
        self, ext: str, source: Source, reason: Presence | None, now: float
    ) -> list[DiversionInterval]:
        key = (ext, source)
        if key in self._other and _same(self._other[key], reason):
            return []  # no change (a repeated poll, a repeated device state)
        self._other[key] = reason
        return self._set(ext, source, reason, now)

    def _set(
        self, ext: str, source: Source, reason: Presence | None, now: float
    ) -> list[DiversionInterval]:
        key = (ext, source)
        closed: list[DiversionInterval] = []
        current = self._open.pop(key, None)
        if current is not None:
            closed.append(replace(current, end=now))
        if reason is not None:
            person = self._directory.people.get(ext)
            self._open[key] = DiversionInterval(
                extension=ext,
                unit=person.unit if person else None,
                source=source,
                state=reason.state,
                subtype=reason.subtype,
                message=reason.message,
                start=now,
            )
        return closed

    def _presence_diverts(self, p: Presence) -> bool:
        return p.state in self._directory.diverting_presence


def _same(a: Presence | None, b: Presence | None) -> bool:
    """Same reason (the time it was reported aside); ``None`` = no diversion."""
    if a is None or b is None:
        return a is b
    return (a.state, a.subtype, a.message) == (b.state, b.subtype, b.message)


def _state_of(source: Source) -> str:
    return "cf" if source == "call_forward" else "dnd"
