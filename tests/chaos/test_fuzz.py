"""100 000 generated AMI byte streams thrown at the decoder and the core.

Each stream is a few recorded frames, mutated the ways a broken network,
a buggy PBX module or a hostile peer would: flipped and inserted bytes,
non-UTF-8, missing blank lines, truncation, duplicated and reordered
frames, unknown events, oversized frames, header lines without values.
It is cut into random reads and fed to one ``FrameDecoder`` and one
``Engine`` per thousand streams.  Nothing may raise, no handler may fail,
and after a quiet period no call or channel may be left behind.

A second test puts garbage between the frames of the mixed-load recording
and requires the very same call records as without it: bad input never
corrupts other calls.
"""

from __future__ import annotations

import random
from collections import Counter
from zoneinfo import ZoneInfo

import pytest

from pbxwatch.ami.codec import EOM, FrameDecoder
from pbxwatch.ami.server import load_recording
from pbxwatch.core.calls import CallRules
from pbxwatch.core.engine import Engine
from pbxwatch.core.events import AmiEvent
from pbxwatch.core.records import CallRecord
from pbxwatch.pipeline import Pipeline, build_engine
from pbxwatch.settings import Settings, load_settings
from tests.conftest import FIXTURES, LAB_CONFIG

pytestmark = pytest.mark.chaos

STREAMS = 100_000
PER_ENGINE = 1_000
RULES = CallRules(idle_timeout=3600.0, max_duration=7200.0)
POOL = [f.raw for stem in ("mixed_load", "voicemail_callback", "group_number_abandoned",
                           "status_actions")
        for f in load_recording(FIXTURES / f"{stem}.ami")]  # fmt: skip
JUNK = [b"\xff\xfe\xfd", b"\xc3", b"\x00", b"\r", b"\n", b"\r\n", b": ", b"Event: ", b"Event",
        b"Uniqueid: ", b"Linkedid: 1", b"Timestamp: 1e308", b"Timestamp: nan",
        b"Timestamp: -1", "Kön: Bygglov ÅÄÖ".encode(), b"Event: Hangup", b"ActionID: x",
        b"Response: Success"]  # fmt: skip


def _mutate(rng: random.Random, frames: list[bytes]) -> bytes:
    frames = list(frames)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(11)
        i = rng.randrange(len(frames))
        f = frames[i]
        if op == 0 and f:  # flip a byte
            j = rng.randrange(len(f))
            frames[i] = f[:j] + bytes([rng.randrange(256)]) + f[j + 1 :]
        elif op == 1:  # insert junk
            j = rng.randrange(len(f) + 1)
            frames[i] = f[:j] + rng.choice(JUNK) + f[j:]
        elif op == 2 and f:  # cut a piece out
            j = rng.randrange(len(f))
            frames[i] = f[:j] + f[j + rng.randint(1, 40) :]
        elif op == 3:  # duplicate
            frames.insert(i, f)
        elif op == 4 and len(frames) > 1:  # reorder
            j = rng.randrange(len(frames))
            frames[i], frames[j] = frames[j], frames[i]
        elif op == 5:  # an unknown event
            frames.insert(i, b"Event: Fuzz%d\r\nUniqueid: %d\r\nLinkedid: %d" % (
                rng.randrange(99), rng.randrange(9), rng.randrange(9)))  # fmt: skip
        elif op == 6:  # random bytes
            frames.insert(i, rng.randbytes(rng.randint(1, 64)))
        elif op == 7 and i + 1 < len(frames):  # the blank line between two frames is lost
            frames[i : i + 2] = [f + b"\r\n" + frames[i + 1]]
        elif op == 8:  # oversized: no frame end for more than the decoder's limit
            frames.insert(i, b"Event: Huge\r\nData: " + b"x" * rng.randint(4096, 9000))
        elif op == 9:  # values dropped, headers only
            frames[i] = b"\r\n".join(line.split(b":")[0] + b":" for line in f.split(b"\r\n"))
        else:  # CR or LF alone
            frames[i] = f.replace(b"\r\n", rng.choice([b"\n", b"\r", b"\r\r\n"]))
    data = EOM.join(frames) + EOM
    if rng.random() < 0.2:
        data = data[: rng.randrange(len(data) + 1)]  # truncated
    return data


def _chunks(rng: random.Random, data: bytes) -> list[bytes]:
    out, i = [], 0
    while i < len(data):
        n = rng.choice((1, 7, 64, 512, 4096))
        out.append(data[i : i + n])
        i += n
    return out


def _healthy(engine: Engine) -> None:
    errors = {k: n for k, n in engine.stats.items() if k.startswith("handler_error")}
    assert not errors, errors
    engine.tick(engine.now + RULES.max_duration + 120)
    engine.tick(engine.now + 120)
    assert engine.tracked_calls == 0
    assert engine.tracked_channels == 0


def test_a_hundred_thousand_mutated_streams(lab_settings: Settings) -> None:
    rng = random.Random(20261123)
    directory = load_settings(LAB_CONFIG).directory_model()
    totals: Counter[str] = Counter()
    for _ in range(STREAMS // PER_ENGINE):
        engine = Engine(directory, RULES)
        for _ in range(PER_ENGINE):
            start = rng.randrange(len(POOL))
            stream = _mutate(rng, POOL[start : start + rng.randint(1, 6)])
            decoder = FrameDecoder(max_frame=4096)
            for chunk in _chunks(rng, stream):
                for fields in decoder.feed(chunk):
                    ev = AmiEvent.from_fields(fields)
                    if ev is not None:
                        engine.process(ev)
                        totals["events"] += 1
            totals["oversized"] += decoder.oversized_frames
            totals["bytes"] += len(stream)
        _healthy(engine)
        totals["other"] += engine.events_by_name["other"]
        totals.update({k: n for k, n in engine.calls.stats.items() if "unknown" in k})
    print(f"{STREAMS} streams, {totals['bytes']} bytes, {dict(totals)}")
    assert totals["oversized"] > 1000
    assert totals["other"] > 1000


def _records(settings: Settings, data: bytes) -> list[dict[str, object]]:
    pipeline = Pipeline(build_engine(settings))
    tz = ZoneInfo(settings.timezone)
    out: list[dict[str, object]] = []
    pipeline.sinks.append(
        lambda r: out.append(r.to_json(tz)) if isinstance(r, CallRecord) else None
    )
    decoder = FrameDecoder(max_frame=4096)
    for fields in decoder.feed(data):
        pipeline.feed_fields(fields)
    pipeline.finish()
    return out


def test_garbage_between_frames_leaves_the_other_calls_alone(lab_settings: Settings) -> None:
    rng = random.Random(7)
    frames = [f.raw for f in load_recording(FIXTURES / "mixed_load.ami")]
    clean = EOM.join(frames) + EOM
    dirty: list[bytes] = []
    for f in frames:
        dirty.append(f)
        if rng.random() < 0.3:
            junk = rng.choice([
                rng.randbytes(rng.randint(1, 80)).replace(b"\r\n\r\n", b""),
                b"Event: Unknown%d\r\nUniqueid: 999.%d\r\nLinkedid: 999.%d" % (
                    rng.randrange(9), rng.randrange(9), rng.randrange(9)),
                b"Event: Hangup\r\nUniqueid: 424242.1\r\nLinkedid: 424242.1\r\nCause: 16",
                "Event: PresenceStateChange\r\nPresentity: ÅÄÖ\xff".encode("utf-8", "replace"),
                b"\xff\xfe" * 20,
                b"Event: Huge\r\nData: " + b"y" * 5000,
            ])  # fmt: skip
            dirty.append(junk)
    got = _records(lab_settings, EOM.join(dirty) + EOM)
    want = _records(lab_settings, clean)
    assert len(want) > 20
    assert got == want
