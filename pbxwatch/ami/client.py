"""The AMI source: panoramisk, with what pbxwatch needs on top.

panoramisk gives us the connection, action/response matching and list
actions.  Four things it does not do well enough for a processor that must
not lose or reorder events, and which this module adds:

* **Ordering.**  panoramisk wraps coroutine handlers in ``ensure_future``,
  so their order is up to the scheduler.  Here events never reach
  ``dispatch``: the protocol hands each frame to one synchronous callback,
  in arrival order.
* **Decoding.**  panoramisk decodes each TCP read with ``errors="ignore"``;
  a multi-byte letter split between reads is lost.  Frames are split on
  bytes and decoded whole (see :mod:`pbxwatch.ami.codec`).
* **Liveness.**  panoramisk sends pings but never checks the replies.  The
  watchdog here sends ``Ping`` every ``ping_interval`` and drops the
  connection when no reply comes within ``ping_timeout``.
* **Reconnect.**  capped exponential backoff with jitter instead of a fixed
  delay; a wrong secret is fatal (:class:`AmiAuthError`), not retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

from panoramisk import Manager
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from pydantic import SecretStr

from pbxwatch.ami.codec import FrameDecoder
from pbxwatch.backoff import backoff_delay
from pbxwatch.settings import AmiSettings

log = logging.getLogger(__name__)

FrameCallback = Callable[[Mapping[str, str]], None]


def messages_of(result: Any) -> list[Any]:
    """The messages of an action's answer: panoramisk returns a list for an
    action whose answer is a list (``EventList: start``), else one message."""
    return result if isinstance(result, list) else [result]


class AmiAuthError(Exception):
    """The PBX refused our credentials: a configuration error, not a glitch."""


#: frames handled per turn of the event loop.  One socket read can hold
#: 256 KiB, some 600 frames; handled in one go, they would keep timers, the
#: watchdog's Ping answer and the store's commits waiting for milliseconds
#: (more behind a slow sink).  Between turns the transport is paused, so
#: frames stay in order and the kernel's buffer, not ours, holds the rest.
FRAMES_PER_TURN = 64

#: what the source drops before a frame becomes an event (counted in bad_input)
FRAME_FAULTS = ("oversized_frame", "frame_without_event", "truncated_frame")


class _Protocol(AMIProtocol):  # type: ignore[misc]
    """panoramisk's protocol with byte-level framing and ordered delivery,
    a few frames per turn of the event loop, none while ``busy``."""

    on_frame: FrameCallback | None = None
    #: true while what the last frames caused is still being handled (the
    #: pipeline's sinks catching up): the next frame waits for it
    busy: Callable[[], bool] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.decoder = FrameDecoder(skip_counted=True)  # into the pipeline
        self.received_at = time.time()
        self._ready: list[dict[str, str]] = []  # decoded, not handed over yet
        self._turn: asyncio.Handle | None = None
        self._paused = False

    def data_received(self, data: bytes) -> None:
        # the frames in these bytes arrived now: the clock model's receipt time
        # (frames waiting while reading is paused came in no later than this)
        self.received_at = time.time()
        self.decoder.push(data)
        if self.decoder.banner and not getattr(self, "version", None):
            self.version = self.decoder.banner.partition("/")[2].strip()
        if self.factory is not None:
            self.factory.bytes_received += len(data)
        if self._turn is None:
            self._handle_some()

    def connection_lost(self, exc: BaseException | None) -> None:
        # what arrived before the loss is handled before the loss is
        if self._turn is not None:
            self._turn.cancel()
            self._turn = None
        frames, self._ready = self._ready, []
        for fields in frames + self._take(None):
            self._route(fields)
        if self.decoder.partial:
            self._fault("truncated_frame")  # the rest of it never came
        super().connection_lost(exc)

    def _handle_some(self) -> None:
        self._turn = None
        self._handle(FRAMES_PER_TURN)
        if self._ready or self.decoder.pending:
            if not self._paused:
                self._paused = True
                self.transport.pause_reading()
            self._turn = asyncio.get_running_loop().call_soon(self._handle_some)
        elif self._paused:
            self._paused = False
            self.transport.resume_reading()

    def _handle(self, limit: int) -> None:
        busy = self.busy
        if busy is not None and busy():
            return
        frames = self._ready or self._take(limit)
        self._ready = []
        for i, fields in enumerate(frames):
            self._route(fields)
            if busy is not None and busy():
                self._ready = frames[i + 1 :]
                return

    def _take(self, limit: int | None) -> list[dict[str, str]]:
        dec = self.decoder
        oversized, empty = dec.oversized_frames, dec.empty_frames
        frames = dec.take(limit)
        if dec.oversized_frames != oversized:
            self._fault("oversized_frame", dec.oversized_frames - oversized)
        if dec.empty_frames != empty:
            self._fault("frame_without_event", dec.empty_frames - empty)
        return frames

    def _fault(self, kind: str, n: int = 1) -> None:
        if self.factory is not None:
            self.factory.faults[kind] += n

    def _route(self, fields: dict[str, str]) -> None:
        if "Event" not in fields and "Response" not in fields:
            self._fault("frame_without_event")  # garbage, or a frame cut in two
            return
        action_id = fields.get("ActionID")
        if "Event" in fields and (action_id is None or action_id not in self.responses):
            if self.on_frame is not None:
                self.on_frame(fields)
            return
        message = Message(fields)
        if "Response" in fields or "Event" in fields:
            self.handle_message(message)


class _Manager(Manager):  # type: ignore[misc]
    """A panoramisk Manager whose connection life is driven by AmiSource."""

    def __init__(self, **config: Any) -> None:
        super().__init__(**config)
        self.bytes_received = 0
        #: frames dropped, by kind (oversized_frame, frame_without_event, truncated_frame)
        self.faults: Counter[str] = Counter()
        self.lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def ping(self) -> None:
        """Disabled: AmiSource runs a watchdog that checks the reply."""

    def connection_lost(self, exc: BaseException | None) -> None:
        self._connected = False
        pinger: asyncio.TimerHandle | None = getattr(self, "pinger", None)
        if pinger is not None:
            pinger.cancel()
        self.pinger = None
        if not self.lost.done():
            self.lost.set_result(None)


class AmiSource:
    """Keeps one AMI session alive and feeds every event frame, in order, to
    ``on_frame``.  ``run()`` returns only when ``stop()`` is called, or, with
    ``reconnect=False``, when the first session ends."""

    def __init__(
        self,
        settings: AmiSettings,
        secret: SecretStr,
        on_frame: FrameCallback,
        *,
        reconnect: bool = True,
        on_state: Callable[[bool], None] | None = None,
        busy: Callable[[], bool] | None = None,
    ) -> None:
        self.settings = settings
        self.busy = busy
        self._secret = secret
        self.on_frame = on_frame
        self.reconnect = reconnect
        self.on_state = on_state
        self.connected = False
        self.sessions = 0
        self.reconnects = 0
        self.frames = 0
        self.last_frame_monotonic: float | None = None
        self.ping_failures = 0
        self.loss_reason = ""  # why the last session ended, for the gap record
        self._faults_before: Counter[str] = Counter()  # of sessions that ended
        self._stop = asyncio.Event()
        self._manager: _Manager | None = None
        self._proto: _Protocol | None = None
        self._logoff_task: asyncio.Task[None] | None = None

    # -------------------------------------------------------------- public

    async def run(self) -> None:
        attempt = 0
        down_logged = False
        while not self._stop.is_set():
            try:
                established = await self._session()
            except AmiAuthError:
                raise
            except (OSError, TimeoutError) as exc:
                established = False
                if not down_logged:
                    log.warning(
                        "AMI %s:%d unreachable: %s",
                        self.settings.host,
                        self.settings.port,
                        exc or type(exc).__name__,
                    )
                    down_logged = True
            if established:
                attempt = 0
                down_logged = False
            if not self.reconnect or self._stop.is_set():
                return
            delay = self._backoff(attempt)
            attempt += 1
            self.reconnects += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    @property
    def frame_faults(self) -> dict[str, int]:
        """Frames dropped before they were events, by kind, over all sessions."""
        manager = self._manager
        total = self._faults_before + (manager.faults if manager else Counter())
        return {k: total[k] for k in FRAME_FAULTS}

    @property
    def oversized_frames(self) -> int:
        """Frames dropped for exceeding the size limit, over all sessions."""
        return self.frame_faults["oversized_frame"]

    @property
    def received_at(self) -> float:
        """Host time the frame being delivered came off the socket."""
        return self._proto.received_at if self._proto is not None else time.time()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """End the session politely (``Logoff``, so Asterisk logs a clean
        logout rather than a dropped connection) and return from ``run``."""
        self._stop.set()
        manager = self._manager
        if manager is None or manager.protocol is None:
            return
        if self.connected:
            self._logoff_task = asyncio.get_running_loop().create_task(self._logoff(manager))
        else:
            manager.protocol.transport.close()

    async def _logoff(self, manager: _Manager) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(manager.send_action({"Action": "Logoff"}), 2.0)
            log.info("AMI logged off")
        if manager.protocol is not None:
            manager.protocol.transport.close()

    async def send_action(self, action: dict[str, str], timeout: float = 10.0) -> Any:
        """Send an action on the current session and await its response."""
        manager = self._manager
        if manager is None or not self.connected:
            raise ConnectionError("AMI not connected")
        return await asyncio.wait_for(manager.send_action(action), timeout)

    # ------------------------------------------------------------- internals

    def _backoff(self, attempt: int) -> float:
        s = self.settings
        return backoff_delay(attempt, s.reconnect_initial_seconds, s.reconnect_max_seconds)

    def _ssl(self) -> ssl.SSLContext | bool:
        if not self.settings.tls:
            return False
        cafile = str(self.settings.tls_ca_file) if self.settings.tls_ca_file else None
        return ssl.create_default_context(cafile=cafile)

    def _deliver(self, fields: Mapping[str, str]) -> None:
        self.frames += 1
        self.last_frame_monotonic = time.monotonic()
        self.on_frame(fields)

    async def _session(self) -> bool:
        """One connection: connect, log in, watch.  True if it logged in."""
        s = self.settings
        loop = asyncio.get_running_loop()
        manager = _Manager(host=s.host, port=s.port, ssl=self._ssl(), loop=loop, ping_delay=10**9)

        def factory() -> _Protocol:
            proto = _Protocol()
            proto.on_frame = self._deliver
            proto.busy = self.busy
            self._proto = proto
            return proto

        transport, protocol = await asyncio.wait_for(
            loop.create_connection(factory, s.host, s.port, ssl=self._ssl()),
            s.connect_timeout_seconds,
        )
        done: asyncio.Future[tuple[Any, Any]] = loop.create_future()
        done.set_result((transport, protocol))
        manager.connection_made(done)
        self._manager = manager
        try:
            resp = await asyncio.wait_for(
                manager.send_action(
                    {
                        "Action": "Login",
                        "Username": s.username,
                        "Secret": self._secret.get_secret_value(),
                        "Events": "on",
                    }
                ),
                s.connect_timeout_seconds,
            )
            if not resp.success:
                raise AmiAuthError(
                    f"AMI login as {s.username!r} refused: {resp.get('Message', 'no reason')}"
                )
            self.sessions += 1
            self.loss_reason = ""
            self._set_connected(True)
            log.info("AMI connected to %s:%d as %s", s.host, s.port, s.username)
            watchdog = asyncio.create_task(self._watchdog(manager))
            try:
                await manager.lost
            finally:
                watchdog.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watchdog
            if self._stop.is_set() or not self.reconnect:
                log.info("AMI session with %s:%d ended", s.host, s.port)
            else:
                if not self.loss_reason:
                    self.loss_reason = "connection closed by the PBX or the network"
                log.warning("AMI connection to %s:%d lost: %s", s.host, s.port, self.loss_reason)
            return True
        finally:
            self._set_connected(False)
            manager.close()
            self._faults_before.update(manager.faults)
            self._manager = None

    async def _watchdog(self, manager: _Manager) -> None:
        s = self.settings
        while True:
            await asyncio.sleep(s.ping_interval_seconds)
            try:
                await asyncio.wait_for(
                    manager.send_action({"Action": "Ping"}), s.ping_timeout_seconds
                )
            except TimeoutError:
                self.ping_failures += 1
                self.loss_reason = f"no answer to Ping within {s.ping_timeout_seconds:g} s"
                log.warning("AMI ping unanswered for %.1f s: reconnecting", s.ping_timeout_seconds)
                if manager.protocol is not None:
                    manager.protocol.transport.abort()
                return

    def _set_connected(self, value: bool) -> None:
        if self.connected != value:
            self.connected = value
            if self.on_state is not None:
                self.on_state(value)
