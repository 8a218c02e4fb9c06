"""Garbage-collector settings for a process that must answer in milliseconds.

CPython's full (generation 2) collection walks every container object the
process holds.  After start-up that is some 100 000 objects of imported
modules (SQLAlchemy, pydantic, the settings, the directory) that live as long
as the process; walking them takes 50–100 ms on a small server, and the walk
can land in the middle of an AMI read.  ``gc.freeze()`` moves them to a
generation the collector never walks.  What is created later (calls,
channels, callbacks) is collected as usual: freezing frees nothing and leaks
nothing that start-up did not already keep.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Sequence
from typing import Any


def settle() -> int:
    """Collect start-up garbage, then freeze what survives.  Call once, when
    the process is built and before it starts reading.  The number of objects
    frozen is returned for the log."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


async def settle_when_read(followers: Sequence[Any], *, timeout: float = 60.0,
                           after: float = 2.5) -> int:  # fmt: skip
    """Settle again once every follower's first state read is done (or
    ``timeout`` passed), ``after`` seconds on so that the metrics' first
    refresh has built its families.

    What the first login builds lives as long as the session: each PBX's
    queues, members and presence, and the metrics' series of every PBX
    (some 800 a PBX).  With many PBXs that is most of what a full
    collection would otherwise walk (34 ms at 50 PBXs, bench/scale.py);
    frozen, it is walked no more.  The one collection here costs that
    once, at start.  Calls in progress then are frozen with it and freed by
    reference counting when they end, like everything created later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not all(f.state_read for f in followers) and loop.time() < deadline:
        await asyncio.sleep(0.2)
    await asyncio.sleep(after)
    return settle()
