"""Time faults made from real recordings: the same bytes, times moved.

``shift`` moves every clock a recording carries (the ``Timestamp`` header,
a ``Cdr``'s local ``StartTime``/``AnswerTime``/``EndTime`` and a ``Cel``'s
``EventTime``/``EventTV``) by whole seconds; ``join`` makes one stream of
several sessions, as a long recording over days would be; ``corrupt`` spoils
chosen ``Timestamp`` headers the way a broken PBX or an attacker would.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pbxwatch.core.engine import IGNORED_EVENTS

_TS = re.compile(rb"^(Timestamp|EventTV): ([0-9.]+)\r$", re.M)
_LOCAL = re.compile(
    rb"^(StartTime|AnswerTime|EndTime|EventTime): (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\r$", re.M
)
_BANNER = re.compile(rb"^Asterisk Call Manager/[^\r\n]*\r\n")


def shift(data: bytes, seconds: int) -> bytes:
    """The recording as if it had happened ``seconds`` later."""

    def epoch(m: re.Match[bytes]) -> bytes:
        value = m.group(2).decode()
        decimals = len(value.partition(".")[2])
        moved = f"{float(value) + seconds:.{decimals}f}"
        return m.group(1) + b": " + moved.encode() + b"\r"

    def local(m: re.Match[bytes]) -> bytes:
        t = dt.datetime.strptime(m.group(2).decode(), "%Y-%m-%d %H:%M:%S")
        moved = (t + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")
        return m.group(1) + b": " + moved.encode() + b"\r"

    return _LOCAL.sub(local, _TS.sub(epoch, data))


def join(parts: Iterable[bytes]) -> bytes:
    """One stream: the first part's banner, then every part's frames."""
    out = b""
    for i, part in enumerate(parts):
        out += part if i == 0 else _BANNER.sub(b"", part, count=1)
    return out


def _event_of(data: bytes, at: int) -> str:
    """The event name of the frame around ``at`` (its ``Event:`` line comes
    first).  Only the events the core applies are corrupted: the others
    (VarSet, RTCPSent, ...) are counted by name, their time never read."""
    start = data.rfind(b"\r\n\r\n", 0, at) + 4
    line = data[start : data.find(b"\r\n", start)]
    return line.partition(b": ")[2].decode() if line.startswith(b"Event: ") else ""


def corrupt(data: bytes, values: Sequence[str], every: int = 7) -> bytes:
    """Replace the ``Timestamp`` of every ``every``-th stamped event from the
    middle of the stream on with the next of ``values``; a value starting
    with ``+`` is added to the true time."""
    stamps = [m for m in re.finditer(rb"^Timestamp: ([0-9.]+)\r$", data, re.M)
              if _event_of(data, m.start()) not in IGNORED_EVENTS]  # fmt: skip
    start = len(stamps) // 3
    chosen = stamps[start : start + every * len(values) : every][: len(values)]
    out, last = b"", 0
    for m, value in zip(chosen, values, strict=True):
        bad = f"{float(m.group(1)) + float(value[1:]):.6f}" if value.startswith("+") else value
        out += data[last : m.start(1)] + bad.encode()
        last = m.end(1)
    return out + data[last:]


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
