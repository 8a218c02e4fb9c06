"""Builders for synthetic AMI events in unit tests."""

from __future__ import annotations

from pbxwatch.ami.codec import iter_recording
from pbxwatch.core.events import AmiEvent
from tests.conftest import FIXTURES


def ev(name: str, t: float | None = None, **fields: str) -> AmiEvent:
    return AmiEvent(name=name, fields={"Event": name, **fields}, time=t)


def chan(name: str, uid: str, linked: str, **more: str) -> dict[str, str]:
    return {"Channel": name, "Uniqueid": uid, "Linkedid": linked, **more}


def recording_events(stem: str) -> list[AmiEvent]:
    data = (FIXTURES / f"{stem}.ami").read_bytes()
    out = []
    for fields in iter_recording(data):
        e = AmiEvent.from_fields(fields)
        if e is not None:
            out.append(e)
    return out
