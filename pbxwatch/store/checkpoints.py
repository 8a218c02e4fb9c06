"""Checkpoints of the core's live state in the store.

A checkpoint is the JSON of :func:`pbxwatch.core.checkpoint.dump`,
compressed (zlib) and base64-encoded into one text column, one row per
source, replaced each time.  Encoding happens in a worker thread: it is
the one part that grows with the calls in progress, and it must not hold
the AMI reader.  The row goes through the store writer's queue like any
other, so it is committed after every record submitted before it; a call
that finished after a checkpoint was taken is in the store when the
checkpoint is loaded, and is dropped from it (``reported_calls``).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.store import models
from pbxwatch.store.rows import Row


def encode(state: dict[str, Any]) -> str:
    raw = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 1)).decode("ascii")


def decode(text: str) -> dict[str, Any]:
    value = json.loads(zlib.decompress(base64.b64decode(text)))
    if not isinstance(value, dict):
        raise ValueError("a checkpoint is a JSON object")
    return value


def checkpoint_row(source: str, state: dict[str, Any], text: str, saved_at: float) -> Row:
    return (
        "checkpoints",
        {
            "source": source,
            "version": int(state["version"]),
            "saved_at": saved_at,
            "event_time": state.get("last_event_time"),
            "calls": len(state["calls"]["calls"]),
            "state": text,
        },
    )


async def load_checkpoint(engine: AsyncEngine, source: str) -> dict[str, Any] | None:
    """The source's last checkpoint, decoded (None if it has none).  A
    checkpoint that does not decode raises ``ValueError``."""
    t = models.Checkpoint
    async with engine.connect() as conn:
        row = (await conn.execute(select(t.state, t.saved_at).where(t.source == source))).first()
    if row is None:
        return None
    state = decode(row.state)
    state.setdefault("saved_at", row.saved_at)
    return state


async def reported_calls(engine: AsyncEngine, call_ids: Iterable[str]) -> set[str]:
    """Which of these calls the store holds already."""
    ids = list(call_ids)
    found: set[str] = set()
    t = models.Call
    async with engine.connect() as conn:
        for i in range(0, len(ids), 500):
            q = select(t.call_id).where(t.call_id.in_(ids[i : i + 500]))
            found.update((await conn.scalars(q)).all())
    return found
