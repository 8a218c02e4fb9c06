"""Presence per extension, as far as the PBX has told us.

Hänvisning (diversion) in the municipalities' PBXs is a presence state
(away / xa / dnd, with a subtype and a free-text message such as
"Lunch till 13:00").  ``PresenceStateChange`` names the presentity
(``CustomPresence:1002``), ``PresenceStatus`` the hint (``1002@hints``); both
arrive for one change and either suffices.
"""

from __future__ import annotations

from dataclasses import dataclass

from pbxwatch.core.directory import Directory
from pbxwatch.core.events import AmiEvent


@dataclass(frozen=True, slots=True)
class Presence:
    state: str
    subtype: str
    message: str
    since: float

    def describe(self) -> str:
        parts = [self.state, self.subtype, self.message]
        return " ".join(p for p in parts if p)


class PresenceBook:
    """Latest presence per extension; ``None`` means never reported."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory
        self._by_ext: dict[str, Presence] = {}

    def get(self, extension: str) -> Presence | None:
        return self._by_ext.get(extension)

    def is_diverted(self, extension: str) -> bool | None:
        p = self._by_ext.get(extension)
        if p is None:
            return None
        return p.state.lower() in self._directory.diverting_presence

    def apply(self, ev: AmiEvent, now: float) -> str | None:
        """Record a presence event; return the extension it concerned."""
        if ev.name == "PresenceStateChange":
            ext = self._directory.presentities.get(ev.get("Presentity").lower())
        elif ev.name == "PresenceStatus":
            ext = ev.get("Exten") or None
        else:
            return None
        if ext is None:
            return None
        new = Presence(
            state=ev.get("Status").strip().lower(),
            subtype=ev.get("Subtype").strip(),
            message=ev.get("Message").strip(),
            since=now,
        )
        old = self._by_ext.get(ext)
        if old is not None and (old.state, old.subtype, old.message) == (
            new.state,
            new.subtype,
            new.message,
        ):
            return ext  # the paired event of the same change: keep the first time
        self._by_ext[ext] = new
        return ext
