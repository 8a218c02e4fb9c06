"""Checkpoints of the core's live state in the store.

A checkpoint is the JSON of :func:`pbxwatch.core.checkpoint.dump`,
compressed (zlib) and base64-encoded into one text column, one row per
source, replaced each time.  The row goes through the store writer's queue
like any other, so it is committed after every record submitted before it;
a call that finished after a checkpoint was taken is in the store when the
checkpoint is loaded, and is dropped from it (``reported_calls``).

``pbxwatch run`` saves one every ``storage.checkpoint_seconds``.  The part
that grows with the calls in progress (a thousand calls are some megabytes
of JSON) must not hold the AMI reader: the calls are copied and encoded on
the event loop a slice at a time (``SLICE_SECONDS``), letting the reader in
between, and compressed in a worker thread (zlib lets go of the GIL, where
``json.dumps`` would hold it the whole time).  A checkpoint so taken spans
a few turns of the loop; a call that changes meanwhile is taken as it was
when its turn came, which is no worse than a checkpoint a moment older.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.core import checkpoint
from pbxwatch.core.checkpoint import CheckpointError, Loaded
from pbxwatch.core.engine import Engine
from pbxwatch.stamp import PbxStamp
from pbxwatch.store import models
from pbxwatch.store.port import WriterPort
from pbxwatch.store.rows import Row
from pbxwatch.store.writer import StoreWriter

log = logging.getLogger(__name__)

#: the longest the event loop is held copying and encoding calls in one go
SLICE_SECONDS = 0.003
_SEP = (",", ":")
_CALLS = "\u0000calls\u0000"  # where the calls go in the encoded head


def pack(text: str) -> str:
    """JSON text to what the column holds (in a worker thread: zlib lets
    other threads run while it compresses)."""
    return base64.b64encode(zlib.compress(text.encode(), 1)).decode("ascii")


def encode(state: dict[str, Any]) -> str:
    """A whole state at once (``replay --cut``, shutdown, tests)."""
    return pack(json.dumps(state, ensure_ascii=False, separators=_SEP))


def decode(text: str) -> dict[str, Any]:
    value = json.loads(zlib.decompress(base64.b64decode(text)))
    if not isinstance(value, dict):
        raise ValueError("a checkpoint is a JSON object")
    return value


def checkpoint_row(
    source: str, state: dict[str, Any], text: str, saved_at: float, calls: int | None = None
) -> Row:
    return (
        "checkpoints",
        {
            "source": source,
            "version": int(state["version"]),
            "saved_at": saved_at,
            "event_time": state.get("last_event_time"),
            "calls": len(state["calls"]["calls"]) if calls is None else calls,
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


async def restore_checkpoint(
    store: AsyncEngine, core: Engine, source: str, stamp: PbxStamp | None = None
) -> Loaded | None:
    """Load the source's last checkpoint into a fresh core.  Calls that
    the store reported after it was taken are left out.  A checkpoint that
    does not load is logged and skipped: the restart is then only a gap."""
    try:
        state = await load_checkpoint(store, source)
        if state is None:
            return None
        stamp = stamp or PbxStamp()
        ids = {stamp.id(call_id): call_id for call_id in checkpoint.call_ids(state)}
        reported = {ids[i] for i in await reported_calls(store, ids)}
        loaded = checkpoint.load(core, state, reported)
    except (CheckpointError, ValueError, zlib.error) as exc:
        log.warning("checkpoint of %s not loaded (%s): starting without it", source, exc)
        return None
    age = f", {time.time() - loaded.saved_at:.0f} s old" if loaded.saved_at else ""
    log.info("checkpoint restored: %d calls in progress (%d channels)%s; %d reported since",
             loaded.calls, loaded.channels, age, loaded.dropped)  # fmt: skip
    return loaded


async def _after_the_others() -> None:
    """Give the loop a turn, and come back after what became ready meanwhile.

    ``asyncio.sleep(0)`` queues the task straight back, ahead of the timers
    and reads that fell due during the slice: their tasks then wait for the
    next slice as well (a 1 ms timer measured 8 ms late beside 3 ms slices).
    A timer due at once is handled with the others that are due, after the
    reads, so the task waiting on each of them runs first."""
    await asyncio.sleep(_ONE_TICK)


#: a delay that is due at once but still goes through the loop's timers
_ONE_TICK = 1e-9


class Checkpointer:
    """Saves the core's live state through the store writer."""

    def __init__(self, core: Engine, writer: StoreWriter | WriterPort, source: str) -> None:
        self.core = core
        self.writer = writer
        self.source = source
        self.saved = 0
        self.skipped = 0
        self.last_bytes = 0
        self.last_calls = 0
        self.last_loop_seconds = 0.0  # the event loop's time copying and encoding the last one
        self.last_slice_seconds = 0.0  # its longest slice: what the reader may have waited
        self.last_seconds = 0.0  # from its start until queued (threads and other tasks too)
        self._encoded: tuple[str, dict[str, Any], int] = ("", {}, 0)

    async def every(self, seconds: float) -> None:
        """Save every ``seconds`` (0: never; shutdown saves all the same).
        While the writer spills to disk (the database far behind), none is
        queued: the one at shutdown, or the next after it catches up, will do."""
        if seconds <= 0:
            return
        while True:
            await asyncio.sleep(seconds)
            if self.writer.spilling:
                self.skipped += 1
                continue
            await self.save()

    async def save(self) -> None:
        """Take a checkpoint, letting the reader in between slices, and queue it."""
        started, saved_at = time.perf_counter(), time.time()
        for _ in self._encode():
            await _after_the_others()
        text, state, calls = self._encoded
        self._queue(state, await asyncio.to_thread(pack, text), calls, saved_at)
        self.last_seconds = time.perf_counter() - started

    def save_now(self) -> None:
        """The same in one go (shutdown, the end of ``replay --cut``): the
        reader has stopped."""
        started, saved_at = time.perf_counter(), time.time()
        for _ in self._encode():
            pass
        text, state, calls = self._encoded
        self._queue(state, pack(text), calls, saved_at)
        self.last_seconds = time.perf_counter() - started

    def _encode(self) -> Iterator[None]:
        """The checkpoint's JSON, the calls one by one, pausing (``yield``)
        each ``SLICE_SECONDS``; leaves (text, head state, calls) in
        ``_encoded``.  Counts the loop time it took and its longest slice."""
        parts: list[str] = []
        self.last_loop_seconds = self.last_slice_seconds = 0.0
        turn = time.perf_counter()
        for call in list(self.core.calls.calls.values()):
            parts.append(json.dumps(checkpoint.dump_call(call), ensure_ascii=False,
                                    separators=_SEP))  # fmt: skip
            if time.perf_counter() - turn >= SLICE_SECONDS:
                self._took(turn)
                yield
                turn = time.perf_counter()
        if parts:  # the head and the join get a slice of their own
            self._took(turn)
            yield
            turn = time.perf_counter()
        text, state = self._assemble(parts)
        self._took(turn)
        self._encoded = (text, state, len(parts))

    def _took(self, since: float) -> None:
        spent = time.perf_counter() - since
        self.last_loop_seconds += spent
        self.last_slice_seconds = max(self.last_slice_seconds, spent)

    def _assemble(self, parts: list[str]) -> tuple[str, dict[str, Any]]:
        """The head (everything but the calls, taken now: small) with the
        encoded calls put in."""
        state = checkpoint.dump(self.core, calls=False)
        state["calls"]["calls"] = _CALLS
        head = json.dumps(state, ensure_ascii=False, separators=_SEP)
        text = head.replace(json.dumps(_CALLS), "[" + ",".join(parts) + "]", 1)
        return text, state

    def _queue(self, state: dict[str, Any], text: str, calls: int, saved_at: float) -> None:
        self.writer.note_checkpoint(checkpoint_row(self.source, state, text, saved_at, calls))
        self.saved += 1
        self.last_bytes = len(text)
        self.last_calls = calls
