"""The web console: wallboard, call search and timeline, incidents, audit
log and the JSON API (``/api/v1``), served by ``run`` and ``demo`` on their
own asyncio loop (see :mod:`pbxwatch.web.server`)."""

from pbxwatch.web.live import LiveView
from pbxwatch.web.server import WebConsole

__all__ = ["LiveView", "WebConsole"]
