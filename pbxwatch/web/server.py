"""Serving the console on pbxwatch's own asyncio loop.

uvicorn's ``Server`` runs as a task beside the AMI reader; it installs no
signal handlers (``run`` owns SIGINT/SIGTERM and stops it at shutdown) and
listens on a socket bound here, so an address in use is a configuration
error naming ``web.listen`` rather than an exit from inside a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Iterator

import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.settings import ConfigError, Settings
from pbxwatch.web.app import asgi_app, create_app
from pbxwatch.web.console import Console
from pbxwatch.web.live import LiveView
from pbxwatch.web.streams import EventStreams

log = logging.getLogger(__name__)

#: SSE streams are ended by the console; what is left is cut after this
GRACEFUL_SECONDS = 2


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # the host process owns the signals
        yield


class WebConsole:
    """The console's server: ``start()`` on the running loop, ``stop()``."""

    def __init__(self, settings: Settings, view: LiveView, store: AsyncEngine | None) -> None:
        self.settings = settings
        self.app = create_app(settings, view, store)
        self.console: Console = self.app.state.console
        self.view = view
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._streams: EventStreams | None = None
        self.port = settings.web.port

    async def start(self) -> None:
        web = self.settings.web
        family = socket.AF_INET6 if ":" in web.host else socket.AF_INET
        try:
            sock = socket.create_server((web.host, web.port), family=family, backlog=256)
        except OSError as exc:
            raise ConfigError(f"web.listen: cannot listen on {web.listen}: {exc}") from exc
        sock.setblocking(False)
        self.port = int(sock.getsockname()[1])
        self._streams = asgi_app(self.app)
        config = uvicorn.Config(
            self._streams,
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SECONDS,
            timeout_keep_alive=5,
        )
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)  # not its start/stop chatter
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="web-console")
        self._sampler = asyncio.create_task(self._sample(), name="web-console-day")
        for _ in range(100):  # until it accepts (or failed)
            if self._server.started or self._task.done():
                break
            await asyncio.sleep(0.02)
        if self._task.done():
            self._task.result()
        shown = f"[{web.host}]" if ":" in web.host else web.host
        log.info("console on http://%s:%d/ (login: %s)", shown, self.port, web.auth.mode)

    async def _sample(self) -> None:
        """The day's baseline of the queue counters, taken near midnight even
        when nobody looks at the wallboard."""
        while True:
            self.view.sample()
            await asyncio.sleep(5.0)

    async def stop(self) -> None:
        self.console.stopping = True  # SSE streams end at their next look
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
        if self._server is None or self._task is None:
            return
        self._server.should_exit = True
        try:
            await asyncio.wait_for(self._task, GRACEFUL_SECONDS + 3.0)
        except (TimeoutError, asyncio.CancelledError):
            self._task.cancel()
        except Exception:  # the console failing must not stop the shutdown
            log.exception("the web console failed")
        if self._streams is not None:
            await self._streams.close()
