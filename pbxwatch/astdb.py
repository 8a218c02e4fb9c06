"""Read call-forward and do-not-disturb flags that live in the AstDB.

Many dialplans keep call forwarding in the AstDB (``CF/<ext>`` holds the
number, ``DND/<ext>`` a flag) and tell nobody when it changes: no AMI event
announces a ``DB()`` write.  The only way to know is to ask with ``DBGet``,
so ``run`` does that for every person after each (re)connect and then
every ``diversion.astdb_poll_minutes``.  Each answer is handed to the core as
a ``DBGetResponse`` state event (an absent key as an empty ``Val``), where it
opens or closes a diversion interval like any other source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pbxwatch.ami.client import AmiSource, messages_of

log = logging.getLogger(__name__)

ACTION_ID_PREFIX = "pbxwatch-dbget"


def dbget_value(result: Any) -> str:
    """The ``Val`` of a DBGet answer; ``""`` for "Database entry not found"."""
    for msg in messages_of(result):
        if msg.get("Event") == "DBGetResponse":
            return str(msg.get("Val", ""))
    return ""


async def poll_once(
    source: AmiSource,
    families: Iterable[str],
    extensions: Iterable[str],
    feed: Callable[[Mapping[str, str]], None],
) -> int:
    """Ask for every (family, extension); return how many answers were fed."""
    fed = 0
    for family in families:
        for ext in extensions:
            result = await source.send_action({"Action": "DBGet", "Family": family, "Key": ext})
            feed(
                {
                    "Event": "DBGetResponse",
                    "ActionID": ACTION_ID_PREFIX,
                    "Family": family,
                    "Key": ext,
                    "Val": dbget_value(result),
                }
            )
            fed += 1
    return fed


async def poll_forever(
    source: AmiSource,
    families: list[str],
    extensions: list[str],
    feed: Callable[[Mapping[str, str]], None],
    interval: float,
    connected: asyncio.Event,
) -> None:
    """Poll after every (re)connect and every ``interval`` seconds while up."""
    while True:
        await connected.wait()
        connected.clear()
        try:
            n = await poll_once(source, families, extensions, feed)
            log.debug("AstDB: %d keys read", n)
        except (ConnectionError, TimeoutError) as exc:
            log.info("AstDB poll interrupted: %s", exc or type(exc).__name__)
        with contextlib.suppress(TimeoutError):  # a reconnect or the interval, what comes first
            await asyncio.wait_for(connected.wait(), interval)
        if source.connected:
            connected.set()
