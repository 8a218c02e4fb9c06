"""The panoramisk-based AmiSource against the project's AMI server over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import ssl
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from pbxwatch.ami.client import FRAMES_PER_TURN, AmiAuthError, AmiSource
from pbxwatch.ami.server import AmiServer, RecordedFrame, load_recording
from pbxwatch.settings import AmiSettings
from tests.conftest import FIXTURES

SECRET = "test-secret"


def _settings(port: int, **more: float) -> AmiSettings:
    base: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "username": "pbxwatch",
        "ping_interval_seconds": 0.3,
        "ping_timeout_seconds": 0.2,
        "reconnect_initial_seconds": 0.05,
        "reconnect_max_seconds": 0.2,
        "connect_timeout_seconds": 2.0,
    }
    base.update(more)
    return AmiSettings.model_validate(base)


def _numbered(n: int) -> list[RecordedFrame]:
    return [
        RecordedFrame(f"Event: UserEvent\r\nSeq: {i}\r\nTimestamp: {1000 + i}.5".encode(), None)
        for i in range(n)
    ]


class Collector:
    def __init__(self) -> None:
        self.frames: list[Mapping[str, str]] = []
        self.changed = asyncio.Event()

    def __call__(self, fields: Mapping[str, str]) -> None:
        self.frames.append(fields)
        self.changed.set()

    async def wait_for(self, n: int, timeout: float = 10.0) -> None:
        async def _wait() -> None:
            while len(self.frames) < n:
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(_wait(), timeout)


async def _until(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    async def _poll() -> None:
        while not predicate():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(_poll(), timeout)


async def test_events_arrive_in_order_and_intact() -> None:
    frames = _numbered(5000) + load_recording(FIXTURES / "group_number_answered.ami")
    server = AmiServer(frames, "pbxwatch", SECRET)
    port = await server.start()
    got = Collector()
    source = AmiSource(_settings(port), SecretStr(SECRET), got, reconnect=False)
    await asyncio.wait_for(source.run(), 30)
    await server.close()
    assert [f["Seq"] for f in got.frames[:5000]] == [str(i) for i in range(5000)]
    assert len(got.frames) == len(frames)
    names = {f.get("MemberName") for f in got.frames if f.get("Event") == "AgentCalled"}
    assert names == {"Maria Nilsson", "Johan Berg"}


async def test_a_backlog_is_read_a_few_frames_per_turn_of_the_loop() -> None:
    """A PBX far ahead (a replay, a reconnect) fills each socket read with
    hundreds of frames; the reader hands the loop back every
    ``FRAMES_PER_TURN`` of them, so timers and other tasks keep running,
    and the frames still come in order."""
    server = AmiServer(_numbered(20_000), "pbxwatch", SECRET)
    port = await server.start()
    got = Collector()
    source = AmiSource(_settings(port), SecretStr(SECRET), got, reconnect=False)
    seen: list[int] = []

    async def sample_every_turn() -> None:
        while True:
            seen.append(len(got.frames))
            await asyncio.sleep(0)

    sampler = asyncio.create_task(sample_every_turn())
    await asyncio.wait_for(source.run(), 30)
    sampler.cancel()
    await server.close()
    assert [f["Seq"] for f in got.frames] == [str(i) for i in range(20_000)]
    steps = [b - a for a, b in itertools.pairwise(seen)]
    assert max(steps) <= 2 * FRAMES_PER_TURN, max(steps)


async def test_no_frame_is_handed_over_while_the_sinks_catch_up() -> None:
    """While ``busy`` (the pipeline's sinks still taking the records of an
    earlier frame) the reader hands over nothing, then carries on in order."""
    loop = asyncio.get_running_loop()
    server = AmiServer(_numbered(1000), "pbxwatch", SECRET)
    port = await server.start()
    got: list[Mapping[str, str]] = []
    state: dict[str, Any] = {"busy": False}

    def release() -> None:
        state["at_release"] = len(got)
        state["busy"] = False

    def on_frame(fields: Mapping[str, str]) -> None:
        got.append(fields)
        if len(got) == 100:
            state["busy"] = True
            loop.call_later(0.2, release)

    source = AmiSource(_settings(port), SecretStr(SECRET), on_frame, reconnect=False,
                       busy=lambda: state["busy"])  # fmt: skip
    await asyncio.wait_for(source.run(), 30)
    await server.close()
    assert state["at_release"] == 100
    assert [f["Seq"] for f in got] == [str(i) for i in range(1000)]


async def test_wrong_secret_is_fatal_and_not_retried() -> None:
    server = AmiServer([], "pbxwatch", SECRET)
    port = await server.start()
    source = AmiSource(_settings(port), SecretStr("wrong"), Collector())
    with pytest.raises(AmiAuthError, match="Authentication failed"):
        await asyncio.wait_for(source.run(), 10)
    await server.close()
    assert server.failed_logins == 1
    assert server.logins == 0


async def test_silent_server_is_detected_by_the_ping_watchdog() -> None:
    """A half-open connection (no answers, no events) is dropped after one
    unanswered ping and the source logs in again: within two ping intervals
    plus the ping timeout and the first backoff step."""
    server = AmiServer(_numbered(3), "pbxwatch", SECRET, close_when_done=False)
    port = await server.start()
    got = Collector()
    settings = _settings(port)
    source = AmiSource(settings, SecretStr(SECRET), got)
    task = asyncio.create_task(source.run())
    await got.wait_for(3)
    assert server.stall() == 1  # no reset, no more bytes; a new connection works
    loop = asyncio.get_running_loop()
    went_silent = loop.time()
    await _until(lambda: source.ping_failures >= 1)
    await _until(lambda: server.logins >= 2)
    reconnected_after = loop.time() - went_silent
    bound = 2 * settings.ping_interval_seconds + settings.ping_timeout_seconds + 0.2
    assert reconnected_after <= bound, (reconnected_after, bound)
    await got.wait_for(6)  # the new session streams again
    source.stop()
    await asyncio.wait_for(task, 5)
    await server.close()


async def test_reconnects_with_backoff_when_the_server_hangs_up() -> None:
    server = AmiServer(_numbered(10), "pbxwatch", SECRET, close_when_done=True)
    port = await server.start()
    got = Collector()
    states: list[bool] = []
    source = AmiSource(_settings(port), SecretStr(SECRET), got, on_state=states.append)
    task = asyncio.create_task(source.run())
    await got.wait_for(30)  # three sessions' worth
    source.stop()
    await asyncio.wait_for(task, 5)
    await server.close()
    assert server.logins >= 3
    assert states[:4] == [True, False, True, False]
    assert source.reconnects >= 2


async def test_waits_for_a_pbx_that_is_not_up_yet() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    got = Collector()
    source = AmiSource(_settings(port), SecretStr(SECRET), got)
    task = asyncio.create_task(source.run())
    await asyncio.sleep(0.5)  # several refused connection attempts
    assert not source.connected
    assert source.reconnects >= 2
    server = AmiServer(_numbered(2), "pbxwatch", SECRET, close_when_done=False)
    await server.start(port=port)
    await got.wait_for(2)
    assert source.connected
    source.stop()
    await asyncio.wait_for(task, 5)
    await server.close()


def test_backoff_is_capped_and_jittered() -> None:
    source = AmiSource(
        _settings(1, reconnect_initial_seconds=1.0, reconnect_max_seconds=30.0),
        SecretStr(SECRET),
        Collector(),
    )
    delays = [source._backoff(a) for a in range(12)]
    assert all(0.5 <= d <= 1.0 for d in delays[:1])
    assert all(d <= 30.0 for d in delays)
    assert max(delays[6:]) >= 15.0  # reaches the cap region


async def test_actions_get_responses_while_events_flow() -> None:
    server = AmiServer(_numbered(1000), "pbxwatch", SECRET, close_when_done=False)
    port = await server.start()
    got = Collector()
    source = AmiSource(_settings(port, ping_interval_seconds=60), SecretStr(SECRET), got)
    task = asyncio.create_task(source.run())
    await _until(lambda: source.connected)
    resp = await source.send_action({"Action": "Ping"})
    assert resp.get("Ping") == "Pong"
    bad = await source.send_action({"Action": "Originate"})
    assert bad.get("Response") == "Error"
    await got.wait_for(1000)
    source.stop()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    await server.close()


async def test_astdb_poll_reads_forward_and_absent_keys() -> None:
    """DBGet through panoramisk: a present key gives its value, an absent
    one ("Database entry not found") an empty Val; both reach the feed as
    DBGetResponse state events."""
    from pbxwatch.astdb import poll_once

    server = AmiServer([], "pbxwatch", SECRET, close_when_done=False)
    server.astdb[("CF", "1002")] = "0701234567"
    port = await server.start()
    up = asyncio.Event()
    source = AmiSource(_settings(port), SecretStr(SECRET), Collector(),
                       on_state=lambda ok: up.set() if ok else None)  # fmt: skip
    runner = asyncio.create_task(source.run())
    await asyncio.wait_for(up.wait(), 10)
    fed: list[Mapping[str, str]] = []
    assert await poll_once(source, ["CF", "DND"], ["1001", "1002"], fed.append) == 4
    source.stop()
    await asyncio.wait_for(runner, 10)
    await server.close()
    got = {(f["Family"], f["Key"]): f["Val"] for f in fed}
    assert got == {("CF", "1001"): "", ("CF", "1002"): "0701234567",
                   ("DND", "1001"): "", ("DND", "1002"): ""}  # fmt: skip
    assert all(f["Event"] == "DBGetResponse" and f["ActionID"] for f in fed)


def _certificate(tmp: Path) -> tuple[Path, Path]:
    cert, key = tmp / "ami.crt", tmp / "ami.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True,
                   capture_output=True)  # fmt: skip
    return cert, key


async def test_ami_over_tls_checks_the_certificate(tmp_path: Path) -> None:
    cert, key = _certificate(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    server = AmiServer(_numbered(5), "pbxwatch", SECRET, close_when_done=False)
    port = await server.start(ssl=ctx)
    got = Collector()
    trusted = AmiSource(_settings(port, tls=True, tls_ca_file=str(cert)), SecretStr(SECRET), got)
    task = asyncio.create_task(trusted.run())
    await got.wait_for(5)
    trusted.stop()
    await asyncio.wait_for(task, 5)

    # a server whose certificate the configured CA did not sign is refused
    (tmp_path / "other").mkdir()
    other, _ = _certificate(tmp_path / "other")
    untrusted = AmiSource(_settings(port, tls=True, tls_ca_file=str(other)), SecretStr(SECRET),
                          Collector())  # fmt: skip
    task = asyncio.create_task(untrusted.run())
    await asyncio.sleep(0.5)
    assert not untrusted.connected
    assert server.logins == 1
    untrusted.stop()
    await asyncio.wait_for(task, 5)
    await server.close()


async def test_garbage_and_a_frame_cut_by_the_disconnect_are_counted() -> None:
    """A broken peer: after the login, a frame of garbage, an event, a frame
    with no Event header, then half a frame and the connection closes."""

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        login = (await reader.readuntil(b"\r\n\r\n")).decode()
        action_id = next(line.split(": ", 1)[1] for line in login.split("\r\n")
                         if line.startswith("ActionID"))  # fmt: skip
        writer.write(f"Response: Success\r\nActionID: {action_id}\r\n\r\n".encode())
        writer.write(b"\xff\xfe garbage\r\nno colon here\r\n\r\n")
        writer.write(b"Event: UserEvent\r\nTimestamp: 1000.5\r\n\r\n")
        writer.write(b"Channel: PJSIP/1001-1\r\nUniqueid: 1.1\r\n\r\n")
        writer.write(b"Event: Hangup\r\nChannel: PJSIP/10")
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    got = Collector()
    source = AmiSource(_settings(port), SecretStr(SECRET), got, reconnect=False)
    await asyncio.wait_for(source.run(), 10)
    server.close()
    assert [f["Event"] for f in got.frames] == ["UserEvent"]
    assert source.frame_faults == {"oversized_frame": 0, "frame_without_event": 2,
                                   "truncated_frame": 1}  # fmt: skip
