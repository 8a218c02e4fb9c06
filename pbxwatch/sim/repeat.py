"""A recording played again and again as one long stream, for long runs
and benchmarks: each repetition is moved later in time, and so are its
Uniqueids and Linkedids (an Asterisk id is the epoch second the channel was
made, a dot, a sequence number), so that every repetition is new calls."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence

from pbxwatch.ami.server import RecordedFrame

#: a header whose value is an epoch time or an Asterisk id: Timestamp,
#: Uniqueid, Linkedid, DestUniqueid, LocalOneLinkedid ...
_EPOCH = re.compile(rb"^([A-Za-z]+: )(\d{10})(\.\d+)(?=\r|$)", re.MULTILINE)


def shifted(raw: bytes, seconds: int, *, times: bool = True) -> bytes:
    """``raw`` with every channel id, and (``times``) epoch time, ``seconds``
    later; ``times=False`` makes new calls at the same moment."""
    if not seconds:
        return raw

    def later(m: re.Match[bytes]) -> bytes:
        if not times and m[1] == b"Timestamp: ":
            return m[0]
        return m[1] + str(int(m[2]) + seconds).encode() + m[3]

    return _EPOCH.sub(later, raw)


def repeated(frames: Sequence[RecordedFrame], times: int, pause: float = 60.0) -> Iterator[bytes]:
    """The frames ``times`` over, each repetition after the last one ended
    plus ``pause`` seconds (whole seconds, so ids keep their form)."""
    stamps = [f.time for f in frames if f.time is not None]
    span = math.ceil(max(stamps) - min(stamps) + pause) if stamps else 0
    for k in range(times):
        for frame in frames:
            yield shifted(frame.raw, k * span)
