"""Which PBX a record is of, outside the core.

The core is one PBX and knows nothing of others; its ids come from that
PBX's own identifiers (Linkedids, queue names, extensions), which another
PBX may use too.  A record of the PBX ``main`` (the single PBX of an
``ami:`` config, and every row an older pbxwatch stored) keeps its ids as
they are; a record of any other PBX has each id prefixed with ``<pbx>:``
(its call, its incidents, callbacks, alerts...), so that ids stay unique
in one store while ``main``'s data and the scorer's ids stay as they were.
Pure, like the core."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

from pbxwatch.core.alerts import Alert
from pbxwatch.core.callbacks import Callback, CallbackChange, CallbackEvent
from pbxwatch.core.clock import ClockStep
from pbxwatch.core.diversion import DiversionInterval
from pbxwatch.core.engine import Record
from pbxwatch.core.incidents import Incident
from pbxwatch.core.records import CallRecord
from pbxwatch.settings import DEFAULT_PBX

#: the id fields of each kind of record, prefixed for a PBX other than main
#: (an AMI gap's id names its source already)
ID_FIELDS: dict[type, tuple[str, ...]] = {
    CallRecord: ("call_id",),
    DiversionInterval: ("interval_id",),
    Incident: ("incident_id", "call_id"),
    Callback: ("callback_id", "call_id", "resolved_by_call"),
    ClockStep: ("step_id",),
    Alert: ("alert_id",),
}
#: ids in the JSON the core makes (``to_json``, a replay's snapshot)
JSON_IDS = frozenset(
    {"call_id", "callback_id", "incident_id", "alert_id", "interval_id", "gap_id", "step_id",
     "resolved_by_call"}
)  # fmt: skip
#: ids inside an alert's ``data`` (its MQTT payload)
_ALERT_DATA_IDS = ("call_id", "callback_id", "incident_id")

R = TypeVar("R")


class PbxStamp:
    """The ids of one PBX's records, as the store and the outputs have them."""

    def __init__(self, pbx: str = DEFAULT_PBX) -> None:
        self.pbx = pbx
        self.prefix = "" if pbx == DEFAULT_PBX else f"{pbx}:"

    def id(self, value: str) -> str:
        return self.prefix + value

    def strip(self, value: str) -> str:
        """A stored id back to the core's own (restart recovery)."""
        return value.removeprefix(self.prefix) if self.prefix else value

    def record(self, rec: Record) -> Record:
        """``rec`` with its ids this PBX's; ``main``'s records unchanged
        (no copy: the single-PBX path costs nothing)."""
        if not self.prefix:
            return rec
        if isinstance(rec, CallbackEvent | CallbackChange):
            return dataclasses.replace(rec, callback=self._ids(rec.callback))
        if isinstance(rec, Alert):
            data = self._data(rec.data)
            return dataclasses.replace(self._ids(rec), data={**data, "pbx": self.pbx})
        return self._ids(rec)

    def _data(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """An alert's data with this PBX's ids, also in its lists (a digest's
        ``misses``), so that every id in it finds its row in the store."""

        def stamped(key: str, value: Any) -> Any:
            if isinstance(value, str):
                return self.id(value) if key in _ALERT_DATA_IDS else value
            if isinstance(value, Mapping):
                return self._data(value)
            if isinstance(value, list | tuple):
                return [stamped(key, v) for v in value]
            return value

        return {k: stamped(k, v) for k, v in data.items()}

    def json(self, obj: Mapping[str, object]) -> Mapping[str, object]:
        """Core-made JSON with this PBX's ids."""
        if not self.prefix:
            return obj
        return {k: (self.id(v) if k in JSON_IDS and isinstance(v, str) else v)
                for k, v in obj.items()}  # fmt: skip

    def unstamp(self, obj: R) -> R:
        """A stored record (a callback, an incident) with the core's ids."""
        if not self.prefix:
            return obj
        names = ID_FIELDS.get(type(obj), ())
        values: dict[str, Any] = {}
        for name in names:
            value = getattr(obj, name)
            if isinstance(value, str):
                values[name] = self.strip(value)
        return dataclasses.replace(obj, **values)  # type: ignore[type-var]

    def _ids(self, obj: R) -> R:
        names = ID_FIELDS.get(type(obj), ())
        values = {n: self.id(v) for n in names if isinstance(v := getattr(obj, n), str)}
        return dataclasses.replace(obj, **values) if values else obj  # type: ignore[type-var]
