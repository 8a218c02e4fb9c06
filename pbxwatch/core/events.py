"""A parsed AMI message: the header fields of one frame plus its time."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """One AMI event (``Event:`` frame).

    ``time`` is the PBX's own ``Timestamp`` header (epoch seconds) when the
    frame carries one, as sent: NaN, inf or a year 5138 are the clock
    model's to judge (:mod:`pbxwatch.core.clock`), and a value that is no
    number at all is NaN.  List items of status actions and ``FullyBooted``
    have none, and the core then uses the last time it has seen.  ``fields`` keep
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
        return cls(name=name, fields=fields, time=raw_timestamp(fields.get("Timestamp")))


def parse_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def raw_timestamp(value: str | None) -> float | None:
    """A ``Timestamp`` header as a number, whatever it says (NaN if no number)."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return math.nan


#: plausible epoch seconds: after 1970 (a PBX whose clock battery died boots
#: there, and its events agree with each other) and before 2200
MIN_EPOCH = 0.0
MAX_EPOCH = 7_258_118_400.0


def plausible_epoch(t: float | None) -> bool:
    return t is not None and MIN_EPOCH < t < MAX_EPOCH  # NaN fails every comparison


def parse_timestamp(value: str | None) -> float | None:
    """A ``Timestamp`` header if it is a plausible epoch time, else None."""
    t = raw_timestamp(value)
    return t if plausible_epoch(t) else None
