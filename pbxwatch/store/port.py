"""One PBX's side of the shared store writer, owner or standby.

A single instance writes every PBX it follows: its port passes records,
stream positions and checkpoints straight to the writer.  In a hot standby
(``pbxwatch.cluster``) an instance follows PBXs it does not own: their
ports keep the records of the last ``keep_seconds`` instead, stamped with
the PBX time they came at, and write nothing else.  When the instance
takes a PBX over, its port hands the writer every kept record from the
last event the old owner committed on (``promote``): what the owner saw
but had not committed when it died.  The rows are upserts on natural
keys, so a record the owner did commit is written again unchanged, never
twice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from pbxwatch.core.engine import Record
from pbxwatch.store.rows import Row
from pbxwatch.store.writer import StoreWriter, WriterStats


class WriterPort:
    """One PBX's records, stream position and checkpoint, with its id and
    source; ``owner=False`` starts it as a standby."""

    def __init__(self, writer: StoreWriter, pbx: str, source: str, *, owner: bool = True,
                 now: Callable[[], float | None] = lambda: None, keep_seconds: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.writer = writer
        self.pbx = pbx
        self.source = source
        self.owner = owner
        self.now = now  # the PBX time of the core's last event
        self.keep_seconds = keep_seconds
        self.monotonic = monotonic
        #: a standby's records: (host monotonic, PBX time, record), oldest first
        self.kept: deque[tuple[float, float | None, Record]] = deque()
        #: records handed over at takeovers
        self.handed_over = 0

    def submit(self, rec: Record) -> None:
        if self.owner:
            self.writer.submit(rec, self.pbx)
            return
        mono = self.monotonic()
        self.kept.append((mono, self.now(), rec))
        while self.kept and self.kept[0][0] < mono - self.keep_seconds:
            self.kept.popleft()

    def note_position(self, frames: int, event_time: float | None) -> None:
        if self.owner:  # a standby's position would tell a restart it was watched
            self.writer.note_position(frames, event_time, self.source, self.pbx)

    def note_checkpoint(self, row: Row) -> None:
        if self.owner:  # the owner's checkpoint is the one a cold start resumes from
            row[1]["pbx"] = self.pbx
            self.writer.note_checkpoint(row)

    def promote(self, committed_until: float | None) -> int:
        """Own the PBX from now on: first the kept records from
        ``committed_until`` (the PBX time of the old owner's last committed
        event; None: all of them); how many were handed over."""
        n = 0
        for _, at, rec in self.kept:
            if committed_until is None or at is None or at >= committed_until:
                self.writer.submit(rec, self.pbx)
                n += 1
        self.kept.clear()
        self.owner = True
        self.handed_over += n
        return n

    def demote(self) -> None:
        """Follow the PBX as a standby from now on (the lease went elsewhere)."""
        self.owner = False

    @property
    def spilling(self) -> bool:
        return self.writer.spilling

    @property
    def backlog(self) -> int:
        return self.writer.backlog

    @property
    def stats(self) -> WriterStats:
        return self.writer.stats
