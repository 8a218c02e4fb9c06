"""Server-Sent Events served beside the application, not through it.

An SSE client holds its request open for hours.  Served by a FastAPI
route, each open stream kept the whole ASGI stack suspended: about 30
coroutines (the routers, the exception and exit-stack middlewares, the
route's handler, ``StreamingResponse`` with its task group of two tasks)
and 210 objects the garbage collector tracks.  With 100 wallboards open
that is 21 000 objects every full collection walks on the loop the AMI
reader runs on (``bench/console.py live``: 29-39 ms collections against
10-16 ms without clients).

So the two stream paths are answered by :class:`EventStreams` in front of
the application: the same security layers (trusted peers, the strict
headers, the session cookie), then one small coroutine per client that
polls the console's shared snapshot, waits on the client's disconnect at
the same time, and writes frames straight to the server.  About ten
coroutines a stream.  Everything else goes to the application unchanged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from pbxwatch.web.auth import Forbidden, NotLoggedIn
from pbxwatch.web.console import Console
from pbxwatch.web.roles import Principal

log = logging.getLogger(__name__)

#: how often an SSE client's view is looked at (an event shows within 1 s;
#: the snapshot is built at most once per ``live.CACHE_SECONDS`` for all)
SSE_POLL_SECONDS = 0.5
#: a comment this often keeps proxies from closing an idle stream
SSE_HEARTBEAT_SECONDS = 15.0
#: the incidents feed's look (the store is read at most every 2 s for all)
SSE_INCIDENTS_POLL_SECONDS = 1.0
#: how often an open stream looks again whether its session is still good
SSE_SESSION_CHECK_SECONDS = 30.0

Layer = Callable[[ASGIApp], ASGIApp]
Build = Callable[[], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Feed:
    """What one stream sends: the SSE event name, how its data is built,
    how often it is looked at."""

    event: str
    build: Build
    poll: float


def wallboard_feed(console: Console, who: Principal) -> Feed:
    if not who.any_role:
        raise Forbidden("no console role")

    async def build() -> Any:
        return await console.wallboard(who)

    return Feed("wallboard", build, SSE_POLL_SECONDS)


def incidents_feed(console: Console, who: Principal) -> Feed:
    if not who.sees_calls:
        raise Forbidden("incidents are for operations and the units' own roles")
    units = who.call_units()

    async def build() -> Any:
        return await console.incidents_feed(units)

    return Feed("incidents", build, SSE_INCIDENTS_POLL_SECONDS)


FEEDS: dict[str, Callable[[Console, Principal], Feed]] = {
    "/events": wallboard_feed,
    "/events/incidents": incidents_feed,
}


class _Channel:
    """One feed for one set of roles, built once per look for all the
    clients that share it: each client only sends the frame when its
    ``version`` moved (no JSON made per client, no wake-up per client and
    look)."""

    def __init__(self, console: Console, feed: Feed) -> None:
        self.console = console
        self.feed = feed
        self.frame = b""  # the newest event frame (empty until the first build)
        self.version = 0
        self.closed = False  # the console stops: the streams end
        self.clients = 0
        self.changed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        last = ""
        while self.clients and not self.console.stopping:
            try:
                body = json.dumps(await self.feed.build(), ensure_ascii=False)
            except Exception:  # a bad look must not end every stream
                log.exception("console: building the %s stream failed", self.feed.event)
                body = last
            if body != last:
                last = body
                self.frame = f"event: {self.feed.event}\ndata: {body}\n\n".encode()
                self.version += 1
                self._wake()
            await asyncio.sleep(self.feed.poll)
        self.closed = self.console.stopping
        self._wake()

    def _wake(self) -> None:
        self.changed.set_result(None)
        self.changed = asyncio.get_running_loop().create_future()


class EventStreams:
    """ASGI: ``GET`` of a path in :data:`FEEDS` is a stream served here,
    behind ``layers`` (outermost last, as ``add_middleware`` applies them);
    any other request goes to ``app``."""

    def __init__(self, app: FastAPI, layers: list[Layer]) -> None:
        self.app = app
        inner: ASGIApp = self._stream
        for layer in layers:
            inner = layer(inner)
        self._served = inner
        self._channels: dict[tuple[str, frozenset[str]], _Channel] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") == "GET" and scope["path"] in FEEDS:
            scope["app"] = self.app  # Request.app: the console and its templates
            await self._served(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        console: Console = self.app.state.console
        try:
            who = console.auth.viewer(request)
            feed = FEEDS[scope["path"]](console, who)
        except (NotLoggedIn, Forbidden) as exc:
            from pbxwatch.web.pages import refused

            status = 401 if isinstance(exc, NotLoggedIn) else 403
            await refused(request, exc, status)(scope, receive, send)
            return
        session = dict(request.session)  # as it is now; the stream sees no newer cookie
        channel = self._join((scope["path"], who.roles), console, feed)
        try:
            await serve_channel(console, session, channel, receive, send)
        finally:
            channel.clients -= 1

    async def close(self) -> None:
        """End the channels' tasks (the console stops): a channel asleep
        between two looks would otherwise outlive the loop."""
        tasks = [c.task for c in self._channels.values() if c.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._channels.clear()

    def _join(self, key: tuple[str, frozenset[str]], console: Console, feed: Feed) -> _Channel:
        channel = self._channels.get(key)
        if channel is None or channel.task is None or channel.task.done():
            channel = self._channels[key] = _Channel(console, feed)
        channel.clients += 1
        if channel.task is None:
            channel.task = asyncio.create_task(channel.run(), name=f"sse-{feed.event}")
        return channel


async def serve_channel(
    console: Console, session: dict[str, Any], channel: _Channel, receive: Receive, send: Send
) -> None:
    """The stream: the channel's frame whenever it changed, a comment as
    heartbeat, and an end when the session is logged out or idle too long
    (the browser reconnects with its cookie as it is now, and is asked to
    log in), when the console stops, or when the client goes."""
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-store"),
        (b"x-accel-buffering", b"no"),
    ]})  # fmt: skip
    gone = asyncio.ensure_future(_disconnect(receive))
    try:
        await _frame(send, b"retry: 2000\n\n")
        seen, sent = 0, time.monotonic()
        checked = sent
        while not channel.closed and not console.stopping and not gone.done():
            now = time.monotonic()
            if now - checked >= SSE_SESSION_CHECK_SECONDS:
                checked = now
                if not console.auth.still_valid(session):
                    await _frame(send, b"event: session\ndata: ended\n\n")
                    break
            if channel.version != seen:
                seen, sent = channel.version, now
                await _frame(send, channel.frame)
                continue
            if now - sent > SSE_HEARTBEAT_SECONDS:
                sent = now
                await _frame(send, b": ping\n\n")
            wait = min(SSE_HEARTBEAT_SECONDS - (now - sent), SSE_SESSION_CHECK_SECONDS)
            await asyncio.wait((gone, channel.changed), timeout=max(0.05, wait),
                               return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if not gone.done():
            await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        gone.cancel()


async def _frame(send: Send, data: bytes) -> None:
    await send({"type": "http.response.body", "body": data, "more_body": True})


async def _disconnect(receive: Receive) -> None:
    """Returns when the client has gone (a GET has no body to read)."""
    while (await receive())["type"] != "http.disconnect":
        pass
