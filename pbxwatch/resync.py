"""Ask the PBX for its state after every (re)connect.

Events say what *changes*; a client that was not connected when a queue
member paused or a hänvisning was set would not know it.  So after each
login ``run`` asks ``QueueStatus`` (every member, paused or not, and the
callers waiting) and ``PresenceStateList`` (every presentity) and hands the
list items to the core, which treats items that carry an ``ActionID`` as
state, never as news of a call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from pbxwatch.ami.client import AmiSource, messages_of

log = logging.getLogger(__name__)

ACTIONS = ("QueueStatus", "PresenceStateList")


def list_items(result: Any) -> list[Mapping[str, str]]:
    """The list events of an answer, without the closing ``...Complete``."""
    return [
        dict(m) for m in messages_of(result)
        if m.get("Event") and not str(m.get("Event")).endswith("Complete")
    ]  # fmt: skip


async def resync_once(source: AmiSource, feed: Callable[[Mapping[str, str]], None]) -> int:
    fed = 0
    for action in ACTIONS:
        for item in list_items(await source.send_action({"Action": action})):
            feed(item)
            fed += 1
    return fed


async def resync_forever(
    source: AmiSource, feed: Callable[[Mapping[str, str]], None], connected: asyncio.Event
) -> None:
    while True:
        await connected.wait()
        connected.clear()
        try:
            n = await resync_once(source, feed)
            log.info("state read after connect: %d items (%s)", n, ", ".join(ACTIONS))
        except (ConnectionError, TimeoutError) as exc:
            log.info("state read interrupted: %s", exc or type(exc).__name__)
