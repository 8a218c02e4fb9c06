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
        """Build from a header dict; ``None`` for frames that are not events.

        Once a frame, so built without the frozen ``__init__`` (which sets
        each field through ``object.__setattr__``): the slots are filled
        directly, a third faster; the event is as frozen as ever."""
        name = fields.get("Event")
        if not name:
            return None
        ev = _new(cls)
        _set_name(ev, name)
        _set_fields(ev, fields)
        stamp = fields.get("Timestamp")
        if not stamp:
            _set_time(ev, None)
            return ev
        try:
            _set_time(ev, float(stamp))
        except ValueError:
            _set_time(ev, math.nan)
        return ev


_new = object.__new__
#: the slots' own setters (``AmiEvent.from_fields``)
_set_name, _set_fields, _set_time = (
    getattr(AmiEvent, n).__set__ for n in ("name", "fields", "time")
)


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
