"""Batched writes off the AMI read path.

``submit()`` is synchronous, never waits and never touches the disk: it
turns a record into rows and appends them to memory.  A background task
writes them in batches (by size or after ``max_delay``), one transaction
per batch, and retries a failed batch with backoff until the database is
back, so nothing is dropped while it is down.  Past ``capacity`` rows the
newer rows wait in an overflow list that the writer task (not the reader)
moves to a spill file in the data directory; once the in-memory queue has
drained, the file is read back in order, a chunk at a time.  Memory stays
bounded by ``capacity`` plus what arrives between two writer iterations.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.backoff import backoff_delay
from pbxwatch.core.alerts import Alert
from pbxwatch.core.engine import Record
from pbxwatch.store import models
from pbxwatch.store.db import write_rows
from pbxwatch.store.leases import Lease, fenced
from pbxwatch.store.rows import Row, rows_of

log = logging.getLogger(__name__)

#: the outbox rows an alert row is followed by (``pbxwatch.mail.MailRows``)
MAIL_TABLE = "mail_outbox"


class RowQueue:
    """Rows waiting, oldest first, as two parallel deques (table names and
    row dicts) instead of ``(name, row)`` tuples.

    A dict of plain values drops out of the garbage collector's lists; a
    tuple that holds a dict never does, and a full collection walks every
    object it tracks.  With 200 000 rows waiting for a database that is down
    that walk took ~80 ms, on the AMI read path; with this layout ~7 ms."""

    def __init__(self) -> None:
        self._names: deque[str] = deque()
        self._rows: deque[dict[str, Any]] = deque()

    def __len__(self) -> int:
        return len(self._names)

    def __iter__(self) -> Iterator[Row]:
        return zip(self._names, self._rows, strict=True)

    def append(self, row: Row) -> None:
        self._names.append(row[0])
        self._rows.append(row[1])

    def head(self, n: int) -> list[Row]:
        """The ``n`` oldest rows, left in the queue."""
        return list(itertools.islice(self, n))

    def drop(self, n: int) -> None:
        """Forget the ``n`` oldest rows (written)."""
        for _ in range(n):
            self._names.popleft()
            self._rows.popleft()

    def batch_end(self, limit: int) -> int:
        """How many of the oldest rows make a batch of about ``limit``: the
        mail rows after an alert row travel with it (one transaction: an
        alert is never committed without its mail, nor its mail without it)."""
        n = min(len(self._names), limit)
        while n < len(self._names) and self._names[n] == MAIL_TABLE:
            n += 1
        return n

    def last_name(self) -> str | None:
        return self._names[-1] if self._names else None

    def last_source(self) -> str | None:
        """The ``source`` of the newest row (a stream position's)."""
        return self._rows[-1].get("source") if self._rows else None

    def replace_last(self, row: Row) -> None:
        self._names[-1], self._rows[-1] = row

    def clear(self) -> None:
        self._names.clear()
        self._rows.clear()


@dataclass
class WriterStats:
    rows_written: int = 0
    batches: int = 0
    write_errors: int = 0
    spilled_rows: int = 0
    #: rows left out because their PBX's lease was lost (``pbxwatch.store.leases``)
    fenced_rows: int = 0
    last_batch_seconds: float = 0.0
    max_batch_seconds: float = 0.0


class StoreWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        source: str = "ami",
        pbx: str = models.DEFAULT_PBX,
        max_batch: int = 1000,
        max_delay: float = 0.25,
        capacity: int = 200_000,
        spill_path: Path | None = None,
        pseudonym: Callable[[str], str] | None = None,
    ) -> None:
        self.engine = engine
        self.pseudonym = pseudonym
        #: called after a batch holding alerts committed (wakes the MQTT relay)
        self.on_alerts_committed: Callable[[], None] | None = None
        #: set (e.g. "replay") when this writer's alerts must never be published
        self.withhold_alerts: str | None = None
        #: the mail outbox rows of an alert (``pbxwatch.mail.MailRows``), written with it
        self.mail_rows: Callable[[Alert], list[Row]] | None = None
        self.source = source
        self.pbx = pbx
        self.max_batch = max_batch
        self.max_delay = max_delay
        self.capacity = capacity
        self.spill_path = spill_path
        self.stats = WriterStats()
        self._rows = RowQueue()  # oldest first
        self._overflow = RowQueue()  # newer than the spill file; reader side, memory only
        self._spilling = False  # rows newer than _rows live in the file and _overflow
        self._spill_offset = 0  # bytes of the spill file already read back
        self._spill_pending = 0  # rows in the spill file not read back yet
        self._wake = asyncio.Event()
        self._committed = asyncio.Event()  # set after each batch committed
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._failures = 0  # consecutive, for the backoff
        #: per source, a checkpoint row not yet being written
        self._checkpoints: dict[str, dict[str, Any]] = {}
        #: the last call row read back from the spill file (id, start): its rings follow it
        self._spilled_call: tuple[str, float] | None = None
        #: the leases this writer writes under (a hot standby's owner), by PBX;
        #: empty: no fencing (one instance)
        self.leases: dict[str, Lease] = {}
        #: PBXs whose lease was found lost: their rows are left out
        self.lost: set[str] = set()
        #: told of each PBX whose lease was found lost (the cluster demotes it)
        self.on_lease_lost: Callable[[str], None] | None = None

    @property
    def backlog(self) -> int:
        return len(self._rows) + self._spill_pending + len(self._overflow)

    # ------------------------------------------------------------ producer side

    def submit(self, rec: Record, pbx: str | None = None) -> None:
        """A record of the PBX ``pbx`` (default: this writer's)."""
        rows = rows_of(rec, self.pseudonym, pbx or self.pbx)
        if isinstance(rec, Alert):  # written either way: a live run's own alert goes out
            for _, values in rows:
                values["withheld"] = self.withhold_alerts
        if isinstance(rec, Alert) and self.mail_rows is not None and not self.withhold_alerts:
            rows = [*rows, *self.mail_rows(rec)]  # right after the alert row: the same batch
        self._append(*rows)  # a record's rows together: all in memory, or all spilled
        if isinstance(rec, Alert):  # a unit chief is waiting: no batching delay
            self._wake.set()

    def note_position(
        self, frames: int, event_time: float | None, source: str | None = None,
        pbx: str | None = None,
    ) -> None:  # fmt: skip
        """Where the stream of ``source`` (default: this writer's) stands;
        committed with the rows before it."""
        source = source or self.source
        row: Row = (
            "stream_positions",
            {"source": source, "frames": frames, "event_time": event_time,
             "pbx": pbx or self.pbx},
        )  # fmt: skip
        tail = self._overflow if self._spilling else self._rows
        if tail.last_name() == "stream_positions" and tail.last_source() == source:
            tail.replace_last(row)  # only the newest position matters
        else:
            self._append(row)

    @property
    def spilling(self) -> bool:
        """Rows past ``capacity`` are going to the spill file."""
        return self._spilling

    def note_checkpoint(self, row: Row) -> None:
        """The live state (a ``checkpoints`` row), committed after every row
        submitted before it.  One still waiting in memory is overwritten in
        place instead (a queue behind a slow database holds one checkpoint,
        not one per interval); it then commits at the older one's place,
        which only makes it newer than some records after it, and a restart
        drops from a checkpoint the calls the store has reported."""
        source = row[1]["source"]
        row[1].setdefault("pbx", self.pbx)
        pending = self._checkpoints.get(source)
        if pending is not None and not self._spilling:
            pending.clear()
            pending.update(row[1])
            return
        self._append(row)
        if self._spilling:
            self._checkpoints.pop(source, None)
        else:
            self._checkpoints[source] = row[1]

    def _append(self, *rows: Row) -> None:
        if self._spilling or (len(self._rows) >= self.capacity and self.spill_path):
            if not self._spilling:
                log.error("store backlog over %d rows: spilling to %s", self.capacity,
                          self.spill_path)  # fmt: skip
                self._spilling = True
            for row in rows:
                self._overflow.append(row)
            self._wake.set()
            return
        for row in rows:
            self._rows.append(row)
        if len(self._rows) >= self.max_batch:
            self._wake.set()

    # ------------------------------------------------------------ writer side

    def start(self) -> None:
        self._adopt_spill_file()
        self._task = asyncio.create_task(self._run(), name="store-writer")

    async def close(self, timeout: float | None = None) -> None:
        """Write everything still queued, then stop.  If the database does
        not take it all within ``timeout``, what is left goes to the spill
        file, in order, and the next start writes it first."""
        self._closing = True
        self._wake.set()
        if self._task is None:
            return
        done, _ = await asyncio.wait([self._task], timeout=timeout)
        if done:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        kept = self._persist_backlog()
        log.error("database still unavailable at shutdown: %d rows kept in %s for the next "
                  "start", kept, self.spill_path)  # fmt: skip

    async def flush(self) -> None:
        while self.backlog:
            await self._write_once()

    async def caught_up(self, timeout: float) -> bool:
        """Wait until nothing submitted is left to write, up to ``timeout``
        seconds; whether that came.  What reads the store to tell how things
        stand now (a digest) must not miss what the core has already said:
        a callback's owner back a moment ago, its row still in the batch."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.backlog:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._committed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._committed.wait(), left)
        return True

    async def _run(self) -> None:
        while not (self._closing and not self.backlog):
            if not self.backlog:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.max_delay)
                self._wake.clear()
            elif len(self._rows) < self.max_batch and not self._closing:
                await asyncio.sleep(0)  # let the reader add more to this batch
            await self._write_once()

    async def _write_once(self) -> None:
        self._spill_overflow()
        if not self._rows and self._spilling:
            self._unspill()
        if not self._rows:
            return
        n = self._rows.batch_end(self.max_batch)
        batch = self._rows.head(n)
        if self._checkpoints:
            written = {id(r) for name, r in batch if name == "checkpoints"}
            for source in [s for s, r in self._checkpoints.items() if id(r) in written]:
                del self._checkpoints[source]  # being written: the next one is a row of its own
        started = time.perf_counter()
        try:
            async with self.engine.begin() as conn:
                if self.leases:  # in the transaction: a takeover waits for it (fencing)
                    self._fence(await fenced(conn, self.leases.values()))
                if self.lost:
                    batch = self._without_lost(batch)
                await conn.run_sync(write_rows, batch)
        except Exception as exc:  # noqa: BLE001 - the database is down or refused: keep the rows
            self.stats.write_errors += 1
            delay = backoff_delay(self._failures, 0.5, 30.0)
            self._failures += 1
            log.warning("store write failed (%s); %d rows kept, retry in %.1f s",
                        type(exc).__name__, self.backlog, delay)  # fmt: skip
            await self._wait_spilling(delay)
            return
        self._failures = 0
        alerts = any(name == "alerts" for name, _ in batch)
        self._rows.drop(n)
        self._committed.set()
        if alerts and self.on_alerts_committed is not None:
            self.on_alerts_committed()
        took = time.perf_counter() - started
        self.stats.rows_written += len(batch)  # less what was fenced
        self.stats.batches += 1
        self.stats.last_batch_seconds = took
        self.stats.max_batch_seconds = max(self.stats.max_batch_seconds, took)

    def hold(self, lease: Lease) -> None:
        """Write ``lease.pbx``'s rows under ``lease`` (taken or taken again)."""
        self.leases[lease.pbx] = lease
        self.lost.discard(lease.pbx)

    def release(self, pbx: str) -> None:
        """Write no more of ``pbx``'s rows (its lease was given away): what
        is still queued of it is left out, as of a lost lease, but quietly."""
        if self.leases.pop(pbx, None) is not None:
            self.lost.add(pbx)

    def _fence(self, lost: set[str]) -> None:
        for pbx in sorted(lost):
            lease = self.leases.pop(pbx)
            self.lost.add(pbx)
            log.error("lease of PBX %s lost (epoch %d, holder %s): another instance owns "
                      "it; its rows are left out from now on", pbx, lease.epoch,
                      lease.holder)  # fmt: skip
            if self.on_lease_lost is not None:
                self.on_lease_lost(pbx)

    def _without_lost(self, batch: list[Row]) -> list[Row]:
        """``batch`` less the rows of PBXs whose lease was lost.  A row of no
        PBX (a mail of an alert) goes with them when every lease is lost."""

        def kept(row: dict[str, Any]) -> bool:
            if "pbx" in row:
                return row["pbx"] not in self.lost
            return bool(self.leases)  # of no PBX: kept while a lease is still held

        out = [(name, row) for name, row in batch if kept(row)]
        self.stats.fenced_rows += len(batch) - len(out)
        return out

    async def _wait_spilling(self, delay: float) -> None:
        """Sleep out a backoff, moving overflow to disk as it comes."""
        end = time.monotonic() + delay
        while (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 1.0))
            self._spill_overflow()

    def _spill_overflow(self) -> None:
        if not self._overflow:
            return
        assert self.spill_path is not None
        with self.spill_path.open("ab") as f:
            f.writelines(_line(row) for row in self._overflow)
        self._spill_pending += len(self._overflow)
        self.stats.spilled_rows += len(self._overflow)
        self._overflow.clear()

    def _adopt_spill_file(self) -> None:
        """Rows a previous run left on disk are older than anything this
        run submits: they are written first."""
        path = self.spill_path
        if path is None or not path.exists() or self._spilling:
            return
        with path.open("rb") as f:
            pending = sum(1 for _ in f)
        if not pending:
            path.unlink()
            return
        self._spilling, self._spill_offset, self._spill_pending = True, 0, pending
        # submitted before start (nothing overflowed: not spilling yet): after the file
        self._overflow, self._rows = self._rows, RowQueue()
        log.warning("%d rows left by the last run in %s: writing them first", pending, path)

    def _persist_backlog(self) -> int:
        """Everything not yet written, oldest first, into the spill file
        (atomically replaced)."""
        path = self.spill_path
        if path is None:
            log.error("no spill file configured: %d rows are lost", self.backlog)
            return 0
        self._spill_overflow()  # the newest rows go after the file's, as ever
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            out.writelines(_line(row) for row in self._rows)  # the oldest
            if self._spilling and path.exists():
                with path.open("rb") as f:
                    f.seek(self._spill_offset)
                    shutil.copyfileobj(f, out)
            out.flush()
            os.fsync(out.fileno())
        kept = len(self._rows) + self._spill_pending
        tmp.replace(path)
        self._checkpoints.clear()
        self._rows.clear()
        self._spilling, self._spill_offset, self._spill_pending = False, 0, 0
        return kept

    def _unspill(self) -> None:
        """Read the next chunk of the spill file back into memory, in order."""
        assert self.spill_path is not None
        chunk = max(self.max_batch, self.capacity // 2)
        with self.spill_path.open("rb") as f:
            f.seek(self._spill_offset)
            for line in f:
                name, row = json.loads(line)
                if len(self._rows) >= chunk and name != MAIL_TABLE:
                    return  # the chunk is full, and no alert's mail rows are cut off
                self._call_start_on_ring(name, row)
                self._rows.append((name, row))
                self._spill_offset += len(line)
                self._spill_pending -= 1
        self.spill_path.unlink()  # all read back
        self._spill_offset = 0
        self._spill_pending = 0
        self._spilling = False

    def _call_start_on_ring(self, name: str, row: dict[str, Any]) -> None:
        """A ring spilled by a pbxwatch before migration 0011 lacks its
        call's start (``call_started_at``, NOT NULL): the call's row came
        just before its rings (``rows_of``), so it is taken from there."""
        if name == "calls":
            self._spilled_call = (row["call_id"], row["started_at"])
        elif name == "rings" and "call_started_at" not in row:
            call = self._spilled_call
            row["call_started_at"] = (
                call[1] if call and call[0] == row["call_id"] else row["started_at"]
            )


def _line(row: Row) -> bytes:
    """One row of the spill file: JSON on one line."""
    return (json.dumps(row, ensure_ascii=False) + "\n").encode()
