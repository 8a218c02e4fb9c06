"""A parsed AMI message: the header fields of one frame plus its time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event (``Event:`` frame).

    ``time`` is the PBX's own ``Timestamp`` header (epoch seconds) when the
    frame carries one; list items of status actions and ``FullyBooted`` have
    none, and the core then uses the last time it has seen.  ``fields`` keep
    the original header names; look-ups are case-sensitive, as Asterisk is
    consistent in its spelling.
    """

    name: str
    fields: Mapping[str, str]
    time: float | None = None

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)

    @property
    def action_id(self) -> str | None:
        return self.fields.get("ActionID")

    @classmethod
    def from_fields(cls, fields: Mapping[str, str]) -> AmiEvent | None:
        """Build from a header dict; ``None`` for frames that are not events."""
        name = fields.get("Event")
        if not name:
            return None
        return cls(name=name, fields=fields, time=parse_timestamp(fields.get("Timestamp")))


def parse_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def parse_timestamp(value: str | None) -> float | None:
    if not value:
        return None
    try:
        t = float(value)
    except ValueError:
        return None
    return t if 0 < t < 1e11 else None  # NaN, inf and nonsense fail the range test
