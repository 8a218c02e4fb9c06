"""The AMI wire codec: framing on bytes, tolerant decoding."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pbxwatch.ami.codec import FrameDecoder, encode_frame, iter_recording, parse_frame
from tests.conftest import FIXTURES

BANNER = b"Asterisk Call Manager/11.0.0\r\n"


def test_banner_then_frames() -> None:
    dec = FrameDecoder()
    frames = list(dec.feed(BANNER + b"Response: Success\r\nActionID: 1\r\n\r\nEvent: A\r\n\r\n"))
    assert dec.banner == "Asterisk Call Manager/11.0.0"
    assert frames == [{"Response": "Success", "ActionID": "1"}, {"Event": "A"}]


def test_frames_can_be_taken_a_few_at_a_time() -> None:
    dec = FrameDecoder()
    dec.push(BANNER + b"".join(b"Event: E\r\nSeq: %d\r\n\r\n" % i for i in range(10)) + b"Event")
    assert dec.take(0) == []
    firsts = dec.take(4)
    assert [f["Seq"] for f in firsts] == ["0", "1", "2", "3"]
    assert dec.pending
    assert [f["Seq"] for f in dec.take()] == [str(i) for i in range(4, 10)]
    assert not dec.pending  # "Event" waits for the rest of its frame
    dec.push(b": F\r\n\r\n")
    assert dec.take(4) == [{"Event": "F"}]


def test_multibyte_letter_split_between_reads_survives() -> None:
    data = "Event: Newchannel\r\nCallerIDName: Åsa Lindström\r\n\r\n".encode()
    cut = data.index("ö".encode()) + 1  # in the middle of the two bytes of ö
    dec = FrameDecoder()
    dec.banner = ""
    frames = list(dec.feed(data[:cut])) + list(dec.feed(data[cut:]))
    assert frames == [{"Event": "Newchannel", "CallerIDName": "Åsa Lindström"}]


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    frame = parse_frame(b"Event: PresenceStatus\r\nMessage: Tj\xe4nsteresa\xff")
    assert frame["Event"] == "PresenceStatus"
    assert frame["Message"].startswith("Tj")
    assert "\ufffd" in frame["Message"]


def test_empty_value_and_lines_without_colon() -> None:
    assert parse_frame(b"Event: X\r\nAccountCode: \r\ngarbage\r\nEmpty:") == {
        "Event": "X",
        "AccountCode": "",
        "Empty": "",
    }


def test_byte_at_a_time_equals_all_at_once() -> None:
    data = (FIXTURES / "answered_after_rings.ami").read_bytes()[:4000]
    whole = FrameDecoder()
    slow = FrameDecoder()
    got = [f for i in range(len(data)) for f in slow.feed(data[i : i + 1])]
    assert got == list(whole.feed(data))


def test_oversized_frame_is_dropped_and_counted() -> None:
    dec = FrameDecoder(max_frame=1024)
    dec.banner = ""
    assert list(dec.feed(b"Event: Big\r\nX: " + b"a" * 5000)) == []
    assert dec.oversized_frames == 1
    # the tail of the monster ends at the next blank line; later frames parse
    frames = list(dec.feed(b"aaa\r\n\r\nEvent: Next\r\n\r\n"))
    assert frames[-1] == {"Event": "Next"}


def test_the_cap_is_one_number_whatever_the_read_boundaries() -> None:
    """50 frames of 415 KB against a 256 KiB cap: every one dropped and
    counted once, whether they come in one read, 4 KiB reads or 300 KiB
    reads; the small frames between them all arrive."""
    big = b"Event: Big\r\nX: " + b"a" * 415_000 + b"\r\n\r\n"
    small = b"Event: Small\r\nN: 1\r\n\r\n"
    data = (big + small) * 50
    for size in (len(data), 4096, 300 * 1024, 1000):
        dec = FrameDecoder()
        dec.banner = ""
        frames = [f for i in range(0, len(data), size) for f in dec.feed(data[i : i + size])]
        assert dec.oversized_frames == 50, size
        assert frames == [{"Event": "Small", "N": "1"}] * 50, size


def test_frames_without_headers_are_counted() -> None:
    dec = FrameDecoder()
    dec.banner = ""
    frames = list(dec.feed(b"garbage\r\nmore\r\n\r\nEvent: A\r\n\r\n\xff\xfe\r\n\r\n"))
    assert frames == [{"Event": "A"}]
    assert dec.empty_frames == 2
    assert not dec.partial
    list(dec.feed(b"Event: Cut\r\nChan"))
    assert dec.partial


def test_encode_roundtrip() -> None:
    fields = {"Action": "Login", "Username": "pbxwatch", "Secret": "s3cret"}
    assert parse_frame(encode_frame(fields).rstrip(b"\r\n")) == fields


def test_every_recording_parses_to_its_event_count() -> None:
    # shared/ami-recordings/README.md, "Files": events per recording
    counts = {"answered_after_rings": 72, "mixed_load": 18600, "status_actions": 616}
    for stem, n in counts.items():
        frames = list(iter_recording((FIXTURES / f"{stem}.ami").read_bytes()))
        assert sum(1 for f in frames if "Event" in f) == n


def _parse_reference(raw: bytes) -> dict[str, str]:
    """The plain line-by-line parser ``parse_frame`` must equal."""
    fields: dict[str, str] = {}
    for line in raw.decode("utf-8", errors="replace").split("\r\n"):
        key, sep, value = line.partition(": ")
        if sep:
            if key and key not in fields:
                fields[key] = value
        elif line.endswith(":") and len(line) > 1 and line[:-1] not in fields:
            fields[line[:-1]] = ""
    return fields


_PIECES = [b"Event", b"Key", b": ", b":", b"\r\n", b"\r", b"\n", b" ", b"a", b"\xc3", b"\xa5",
           b"\xff"]  # fmt: skip


@given(st.lists(st.sampled_from(_PIECES), max_size=40))
def test_parse_frame_equals_the_line_by_line_parser(pieces: list[bytes]) -> None:
    raw = b"".join(pieces)
    assert parse_frame(raw) == _parse_reference(raw)
    assert list(parse_frame(raw)) == list(_parse_reference(raw))  # the same order
    assert parse_frame(bytearray(raw)) == _parse_reference(raw)


def test_parse_frame_edge_lines() -> None:
    for raw in (b": x\r\nA: 1", b"A: 1\r\nA: 2\r\nA:", b"A:\r\nA: 2", b":\r\n::", b"", b"\r\n"):
        assert parse_frame(raw) == _parse_reference(raw), raw


def test_blank_frames_between_frames_are_not_counted() -> None:
    dec = FrameDecoder()
    dec.banner = ""
    assert list(dec.feed(b"\r\n\r\n\r\n\r\nEvent: A\r\n\r\n\r\n\r\n")) == [{"Event": "A"}]
    assert dec.empty_frames == 0


def test_frames_the_core_only_counts_are_not_parsed_for_the_pipeline() -> None:
    """With ``skip_counted`` (the client, replay) a VarSet or RTCP frame is
    just its name; without it (a reader of whole frames) every header."""
    stream = (b"Event: VarSet\r\nChannel: PJSIP/1001-1\r\nVariable: RTPAUDIOQOS\r\n\r\n"
              b"Event: Newchannel\r\nUniqueid: 1.1\r\n\r\n"
              b"Event: RTCPSent\r\nTo: 127.0.0.1:4000\r\n\r\n"
              b"Event: VarSetX\r\nA: 1\r\n\r\n")  # fmt: skip
    whole = FrameDecoder()
    whole.banner = ""
    assert next(f.get("Variable") for f in whole.feed(stream)) == "RTPAUDIOQOS"
    counted = FrameDecoder(skip_counted=True)
    counted.banner = ""
    assert list(counted.feed(stream)) == [
        {"Event": "VarSet"},
        {"Event": "Newchannel", "Uniqueid": "1.1"},
        {"Event": "RTCPSent"},
        {"Event": "VarSetX", "A": "1"},  # a name that only begins the same: parsed
    ]
