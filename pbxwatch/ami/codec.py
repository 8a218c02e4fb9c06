"""AMI wire format, sans I/O.

Asterisk sends ``Key: Value`` lines ending in CRLF, a message ending with an
empty line.  The decoder works on bytes and decodes each *frame* as UTF-8
with replacement: panoramisk decodes every TCP read on its own with
``errors="ignore"``, which silently drops a Swedish letter whose two bytes
straddle two reads, and Asterisk can emit invalid UTF-8 in presence
messages.  Frames are capped in size so a peer that never sends the blank
line cannot make us buffer without bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pbxwatch.core.engine import IGNORED_EVENTS

EOL = b"\r\n"
EOM = b"\r\n\r\n"
BANNER_PREFIX = b"Asterisk Call Manager/"
MAX_FRAME_BYTES = 256 * 1024


def parse_frame(raw: bytes) -> dict[str, str]:
    """Header lines of one frame; lines without ``": "`` are ignored.

    A header repeated within a frame keeps its first value (Asterisk does not
    repeat headers in events pbxwatch uses; ``ChanVariable`` lists are not
    needed)."""
    fields: dict[str, str] = {}
    for line in raw.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            if key and key not in fields:
                fields[key] = value
        elif line.endswith(":") and len(line) > 1 and line[:-1] not in fields:
            fields[line[:-1]] = ""  # "AccountCode:" with nothing after the colon
    return fields


#: events the core only counts (``IGNORED_EVENTS``: VarSet, PJSIP's RTCP
#: reports, the security events): their frames are not parsed, each becomes
#: a frame of just its name
_SKIPPED = {f"Event: {name}\r\n".encode(): name for name in sorted(IGNORED_EVENTS)}
_SKIPPED_PREFIXES = tuple(_SKIPPED)


def _skipped(buf: bytearray, start: int) -> str | None:
    """The name of an event only counted whose frame begins at ``start``."""
    if not buf.startswith(_SKIPPED_PREFIXES, start):
        return None
    return _SKIPPED.get(bytes(buf[start : buf.find(EOL, start) + 2]))


class FrameDecoder:
    """Feed bytes, get header dicts out, in order.

    A frame is at most ``max_frame`` bytes (without its blank line),
    whatever the read boundaries: a longer one is dropped whole, up to its
    end, and counted once in ``oversized_frames``.  A frame with no header
    line at all (garbage between frames) is counted in ``empty_frames`` and
    dropped."""

    def __init__(self, max_frame: int = MAX_FRAME_BYTES, *, skip_counted: bool = False) -> None:
        self._buf = bytearray()
        self._max = max_frame
        #: frames of the events the core only counts become just their name
        #: (for the pipeline; a reader of whole frames leaves it off)
        self._skip_counted = skip_counted
        self._discarding = False  # inside an oversized frame: drop up to its end
        self._scanned = 0  # a long frame arriving in pieces is searched once
        self.banner: str | None = None
        self.oversized_frames = 0
        self.empty_frames = 0

    def feed(self, data: bytes) -> Iterator[dict[str, str]]:
        """Every complete frame, once ``data`` is added.  Parsed a few at a
        time as they are consumed: a whole recording parsed up front would
        keep every frame alive at once (and the collector busy)."""
        self.push(data)
        while frames := self.take(256):
            yield from frames

    def push(self, data: bytes) -> None:
        """Add bytes as they came off the socket; frames wait for ``take``."""
        self._buf += data
        if self.banner is None and self._buf.startswith(BANNER_PREFIX[: len(self._buf)]):
            nl = self._buf.find(EOL)
            if nl >= 0:
                self.banner = self._buf[:nl].decode("utf-8", "replace")
                del self._buf[: nl + 2]
        elif self.banner is None:
            self.banner = ""

    def take(self, limit: int | None = None) -> list[dict[str, str]]:
        """Up to ``limit`` complete frames (all of them with None), in order.

        A reader that takes a few at a time can hand the event loop back
        between them instead of parsing a whole 256 KiB read in one go."""
        frames: list[dict[str, str]] = []
        if self.banner is None:
            return frames  # the banner's line is not complete yet
        buf = self._buf
        start = 0
        end = 0
        scan = self._scanned  # bytes of the frame under way known to hold no EOM
        while limit is None or len(frames) < limit:
            end = buf.find(EOM, max(start, scan))
            scan = 0
            if end < 0:
                break
            raw_start, start = start, end + 4
            if self._discarding:  # the end of a frame already counted
                self._discarding = False
                continue
            if end - raw_start > self._max:
                self.oversized_frames += 1
                continue
            skipped = _skipped(buf, raw_start) if self._skip_counted else None
            if skipped is not None:
                frames.append({"Event": skipped})
                continue
            raw = bytes(buf[raw_start:end]).strip(b"\r\n")
            if not raw:
                continue
            fields = parse_frame(raw)
            if fields:
                frames.append(fields)
            else:
                self.empty_frames += 1
        del buf[:start]
        self._scanned = max(0, len(buf) - len(EOM) + 1) if end < 0 else 0
        if end < 0 and len(buf) > self._max:
            # No frame end within the cap: count the frame once, drop it up to
            # its end (keeping a tail in case the blank line is split).
            if not self._discarding:
                self.oversized_frames += 1
                self._discarding = True
            del buf[: len(buf) - len(EOM) + 1]
            self._scanned = 0
        return frames

    @property
    def pending(self) -> bool:
        """Whether a complete frame is waiting to be taken."""
        return self.banner is not None and self._buf.find(EOM) >= 0

    @property
    def partial(self) -> bool:
        """Whether bytes of an unfinished frame are buffered (a connection
        lost now cuts a frame off)."""
        return not self._discarding and bool(bytes(self._buf).strip(b"\r\n"))


def encode_frame(fields: Mapping[str, str]) -> bytes:
    lines = "".join(f"{k}: {v}\r\n" for k, v in fields.items())
    return (lines + "\r\n").encode("utf-8")


def iter_recording(data: bytes, *, skip_counted: bool = False) -> Iterator[dict[str, str]]:
    """All frames of a recorded ``.ami`` stream (banner skipped); with
    ``skip_counted``, as the pipeline takes them (see :class:`FrameDecoder`)."""
    decoder = FrameDecoder(max_frame=max(MAX_FRAME_BYTES, len(data) + 1),
                           skip_counted=skip_counted)  # fmt: skip
    yield from decoder.feed(data)
    tail = bytes(decoder._buf).strip(b"\r\n")
    if tail:
        yield parse_frame(tail)
