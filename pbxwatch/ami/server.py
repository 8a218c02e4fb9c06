"""The project's own AMI server.

It speaks the manager protocol the way Asterisk 22 does in the shared
recordings: a one-line banner without a blank line after it, ``Login``
answered with ``Response: Success`` / ``Message: Authentication accepted``
(or ``Response: Error`` / ``Authentication failed`` and a closed socket),
``Ping`` answered with ``Ping: Pong`` and a ``Timestamp``, ``Logoff`` with
``Response: Goodbye``; ``DBGet`` answered from a dictionary; status list
actions answered from a ``PbxState`` when there is one (the simulator),
else with an empty list; anything else with ``Invalid/unknown command``.

Events come either from a recording, replayed to each client from its
start byte-for-byte as Asterisk sent them, or are *published* live to
every logged-in client (the simulator), as a real PBX does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from ssl import SSLContext
from typing import TYPE_CHECKING

from pbxwatch.ami.codec import EOM, FrameDecoder, encode_frame, parse_frame
from pbxwatch.ami.transcript import RecordedAnswer, Transcript
from pbxwatch.core.events import parse_timestamp

if TYPE_CHECKING:
    from pbxwatch.sim.state import PbxState

log = logging.getLogger(__name__)

BANNER = b"Asterisk Call Manager/11.0.0\r\n"

#: list items that carry their ActionID last (the others carry it after Event)
_ACTION_ID_LAST = frozenset({"QueueParams", "QueueMember", "QueueEntry", "QueueSummary", "Status"})
FULLY_BOOTED = {"Event": "FullyBooted", "Privilege": "system,all", "Uptime": "1",
                "LastReload": "1", "Status": "Fully Booted"}  # fmt: skip

#: list actions: the message of their first response (Asterisk 22's, from
#: status_actions.transcript.json) and the event that closes the list
LIST_ACTIONS = {
    "coreshowchannels": ("Channels will follow", "CoreShowChannelsComplete"),
    "queuestatus": ("Queue status will follow", "QueueStatusComplete"),
    "queuesummary": ("Queue summary will follow", "QueueSummaryComplete"),
    "presencestatelist": ("Presence State Changes will follow", "PresenceStateListComplete"),
    "extensionstatelist": ("Extension Statuses will follow", "ExtensionStateListComplete"),
    "devicestatelist": ("Device State Changes will follow", "DeviceStateListComplete"),
    "voicemailuserslist": ("Voicemail user list will follow", "VoicemailUserEntryComplete"),
    "voicemailboxsummary": ("Voicemail box detail will follow", "VoicemailBoxDetailComplete"),
    "status": ("Channel status will follow", "StatusComplete"),
}


@dataclass(frozen=True, slots=True)
class RecordedFrame:
    raw: bytes  # the frame as received, without its terminating blank line
    time: float | None


def load_recording(path: str | Path, *, drop_answers: bool = False) -> list[RecordedFrame]:
    """The event frames of a recording, raw.  The recorder's own responses
    (to its Login and Logoff, or its status actions) are left out: a client
    of this server gets responses to *its* actions instead.  With
    ``drop_answers`` so are the list items answering the recorder's actions
    (they carry its ActionID): a transcript answers the client instead."""
    data = Path(path).read_bytes()
    if data.startswith(b"Asterisk Call Manager/"):
        data = data.split(b"\r\n", 1)[1] if b"\r\n" in data else b""
    frames: list[RecordedFrame] = []
    for chunk in data.split(EOM):
        raw = chunk.strip(b"\r\n")
        if not raw.startswith(b"Event:"):
            continue
        fields = parse_frame(raw)
        if drop_answers and "ActionID" in fields:
            continue
        frames.append(RecordedFrame(raw, parse_timestamp(fields.get("Timestamp"))))
    return frames


class AmiServer:
    """An AMI server that plays a list of recorded frames to each client
    that logs in, or (``frames`` None) is *live*: every client gets what is
    ``publish``ed from its login on, as from a running Asterisk.

    ``speed`` 0 sends as fast as the socket takes it; 1 keeps the recorded
    gaps between timestamps, 10 plays ten times faster.  With
    ``close_when_done`` the server hangs up after the last frame (as when
    Asterisk stops), which ends a one-shot replay client.
    """

    def __init__(
        self,
        frames: Sequence[RecordedFrame] | None,
        username: str,
        secret: str,
        *,
        speed: float = 0.0,
        close_when_done: bool = True,
        state: PbxState | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        self.frames = frames
        #: recorded answers to the state read after a login (a restart recording)
        self.transcript = transcript
        self.username = username
        self.secret = secret
        self.speed = speed
        self.close_when_done = close_when_done
        self._server: asyncio.Server | None = None
        self._clients: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self.logins = 0
        self.failed_logins = 0
        self.actions: list[str] = []
        #: the PBX clock when each action came in, beside ``actions``: a test
        #: at many PBX seconds per host second learns when a list was taken
        self.action_times: list[float] = []
        #: AstDB entries answered to DBGet, (family, key) -> value
        self.astdb: dict[tuple[str, str], str] = {}
        #: what status actions are answered from (None: empty lists)
        self.state = state
        self._live: set[_Session] = set()  # logged in with events on
        self._sessions: set[_Session] = set()  # every open connection
        #: the PBX's clock, as a Ping answer states it: a simulator sets its
        #: own; a recording's is the time of the frame last sent (the clock
        #: the recorded PBX had then), the wall clock only before any frame
        self.clock: Callable[[], float] = self._recording_clock
        self._last_frame_time: float | None = None

    def publish(self, raw: bytes) -> None:
        """Send one event frame (without its blank line) to every client
        that logged in with events on: the live mode of the simulator."""
        for session in list(self._live):
            if not session.stalled:
                session.writer.write(raw + EOM)

    async def drain(self, limit: int = 256 * 1024) -> None:
        """Wait for clients whose unsent output passed ``limit`` (a slow
        reader holds the publisher back instead of growing its buffer)."""
        for session in list(self._live):
            if session.writer.transport.get_write_buffer_size() > limit:
                with contextlib.suppress(ConnectionError):
                    await session.writer.drain()

    def _recording_clock(self) -> float:
        if self._last_frame_time is not None:
            return self._last_frame_time
        first = next((f.time for f in self.frames or () if f.time is not None), None)
        return first if first is not None else time.time()

    def stall(self) -> int:
        """Half-close every session now open: each keeps its socket but
        gets no more events or answers, as when a firewall drops a
        connection without a reset.  New sessions work.  Returns how many."""
        for session in self._sessions:
            session.stalled = True
        return len(self._sessions)

    @property
    def listeners(self) -> int:
        return len(self._live)

    async def start(
        self, host: str = "127.0.0.1", port: int = 0, ssl: SSLContext | None = None
    ) -> int:
        """Listen; with ``ssl``, AMI over TLS (Asterisk's ``tlsenable``)."""
        self._server = await asyncio.start_server(self._client, host, port, ssl=ssl)
        sock = self._server.sockets[0]
        return int(sock.getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._clients.values():  # hang up: each session reads EOF and ends
            writer.close()
        if self._clients:
            _, late = await asyncio.wait(list(self._clients), timeout=2)
            for task in late:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients[task] = writer
        session = _Session(self, reader, writer)
        self._sessions.add(session)
        try:
            await session.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._sessions.discard(session)
            self._clients.pop(task, None)
            with contextlib.suppress(Exception):
                writer.close()


class _Session:
    def __init__(
        self, server: AmiServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.server = server
        self.reader = reader
        self.writer = writer
        self.authenticated = False
        self.stalled = False
        self.streamer: asyncio.Task[None] | None = None

    async def run(self) -> None:
        self.writer.write(BANNER)
        decoder = FrameDecoder()
        decoder.banner = ""  # the client sends no banner
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    return
                for fields in decoder.feed(data):
                    if not await self._action(fields):
                        return
        finally:
            self.server._live.discard(self)
            if self.streamer is not None:
                self.streamer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.streamer

    def _send(self, fields: dict[str, str]) -> None:
        self.writer.write(encode_frame(fields))

    def _reply(self, action_id: str | None, response: str, **more: str) -> None:
        fields = {"Response": response}
        if action_id is not None:
            fields["ActionID"] = action_id
        fields.update(more)
        self._send(fields)

    async def _action(self, fields: dict[str, str]) -> bool:
        """Answer one action; False ends the session."""
        if self.stalled:
            return True
        lower = {k.lower(): v for k, v in fields.items()}
        name = lower.get("action", "").lower()
        aid = lower.get("actionid")
        self.server.actions.append(name)
        self.server.action_times.append(self.server.clock())
        if name == "login":
            return await self._login(lower, aid)
        if name == "logoff":
            self._reply(aid, "Goodbye", Message="Thanks for all the fish.")
            await self.writer.drain()
            return False
        recorded = self.server.transcript.take(fields) if self.server.transcript else None
        if not self.authenticated:
            self._reply(aid, "Error", Message="Authentication Required")
        elif recorded is not None:
            self._recorded(recorded, aid)
        elif name == "ping":
            self._reply(aid, "Success", Ping="Pong", Timestamp=f"{self.server.clock():.6f}")
        elif name == "voicemailboxsummary" and self.server.state is None:
            # a recording without state cannot say what a mailbox holds; an
            # empty list would claim every message deleted
            self._reply(aid, "Error", Message="Invalid/unknown command")
        elif name in LIST_ACTIONS:
            self._list(name, lower, aid)
        elif name in ("mailboxcount", "mailboxstatus") and self.server.state is not None:
            box, state = lower.get("mailbox", ""), self.server.state
            count = name == "mailboxcount"
            self._reply(aid, "Success", **(state.mailbox_count(box) if count
                                           else state.mailbox_status(box)))  # fmt: skip
        elif name == "dbget":
            self._dbget(lower.get("family", ""), lower.get("key", ""), aid)
        else:
            self._reply(aid, "Error", Message="Invalid/unknown command")
        await self.writer.drain()
        return True

    def _list(self, name: str, args: dict[str, str], aid: str | None) -> None:
        """A list action: ``Success``/``EventList: start``, the items, the
        ``...Complete`` event, each item carrying the ActionID where
        Asterisk puts it."""
        message, complete = LIST_ACTIONS[name]
        state = self.server.state
        items = state.answer(name, args) if state is not None else []
        self._reply(aid, "Success", EventList="start", Message=message)
        for item in items:
            if aid is None:
                self._send(item)
            elif item["Event"] in _ACTION_ID_LAST:
                self._send({**item, "ActionID": aid})
            else:
                self._send({"Event": item["Event"], "ActionID": aid, **item})
        done = {"Event": complete}
        if aid is not None:
            done["ActionID"] = aid
        done.update(EventList="Complete", ListItems=str(len(items)))
        if name == "status":  # manager.c repeats the count for old clients
            done["Items"] = str(len(items))
        self._send(done)

    def _recorded(self, answer: RecordedAnswer, aid: str | None) -> None:
        """A transcript's answer and its list items, under the client's ActionID."""
        for frame in (answer.response, *answer.list_events):
            self._send(_with_id(frame, aid))

    def _dbget(self, family: str, key: str, aid: str | None) -> None:
        """As manager.c: a one-item list, or an error when the key is absent."""
        val = self.server.astdb.get((family, key))
        if val is None:
            self._reply(aid, "Error", Message="Database entry not found")
            return
        self._reply(aid, "Success", EventList="start", Message="Result will follow")
        tail = {"ActionID": aid} if aid is not None else {}
        self._send({"Event": "DBGetResponse", "Family": family, "Key": key, "Val": val, **tail})
        self._send({"Event": "DBGetComplete", **tail, "EventList": "Complete", "ListItems": "1"})

    async def _login(self, lower: dict[str, str], aid: str | None) -> bool:
        srv = self.server
        if lower.get("username") != srv.username or lower.get("secret") != srv.secret:
            srv.failed_logins += 1
            self._reply(aid, "Error", Message="Authentication failed")
            await self.writer.drain()
            return False
        srv.logins += 1
        self.authenticated = True
        self._reply(aid, "Success", Message="Authentication accepted")
        await self.writer.drain()
        if lower.get("events", "on").lower() == "off":
            return True
        if srv.frames is None:  # live: what happens from now on, as Asterisk does
            self._send(FULLY_BOOTED)
            srv._live.add(self)
        elif self.streamer is None:
            self.streamer = asyncio.create_task(self._stream())
        return True

    async def _stream(self) -> None:
        assert self.server.frames is not None
        speed = self.server.speed
        first_t: float | None = None
        start = time.monotonic()
        transcript = self.server.transcript
        hold_after = max((a.sent_at for a in transcript.answers), default=0.0) if transcript else 0
        for frame in self.server.frames:
            while self.stalled:
                await asyncio.sleep(0.05)
            if transcript is not None and frame.time is not None and frame.time > hold_after:
                await self.writer.drain()
                await transcript.wait_for_client()  # the answers describe the state before this
                transcript = None
                if speed > 0 and first_t is not None:  # the recorded pace from here on
                    start = time.monotonic() - (frame.time - first_t) / speed
            if speed > 0 and frame.time is not None:
                if first_t is None:
                    first_t = frame.time
                due = start + (frame.time - first_t) / speed
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            self.writer.write(frame.raw + EOM)
            if frame.time is not None:
                self.server._last_frame_time = frame.time
            if self.writer.transport.get_write_buffer_size() > 256 * 1024:
                await self.writer.drain()
        await self.writer.drain()
        if self.server.close_when_done:
            self.writer.close()


def _with_id(fields: dict[str, str], aid: str | None) -> dict[str, str]:
    """A recorded frame with the client's ActionID where the recorder's
    stood (none if the client sent none)."""
    out = {k: v for k, v in fields.items() if k != "ActionID" or aid is not None}
    if aid is not None:
        out["ActionID"] = aid  # replaces in place: a dict keeps the key's position
    return out


async def serve_forever(
    recording: str | Path,
    host: str,
    port: int,
    username: str,
    secret: str,
    speed: float,
    transcript: str | Path | None = None,
) -> None:
    """``pbxwatch serve-recording``: play a recording to every client that
    logs in; with a transcript, its state read is answered from it."""
    server = AmiServer(
        load_recording(recording, drop_answers=transcript is not None),
        username,
        secret,
        speed=speed,
        close_when_done=False,
        transcript=Transcript.load(transcript) if transcript else None,
    )
    bound = await server.start(host, port)
    log.info("serving %s on %s:%d (speed %s)", recording, host, bound, speed or "max")
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
