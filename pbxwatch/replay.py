"""Replay a recorded AMI stream through the pipeline at full speed."""

from __future__ import annotations

from pathlib import Path

from pbxwatch.ami.codec import iter_recording
from pbxwatch.pipeline import Pipeline
from pbxwatch.store.checkpoints import Checkpointer
from pbxwatch.store.writer import StoreWriter


def replay_file(path: str | Path, pipeline: Pipeline) -> int:
    """Feed every frame of ``path``; return the number of frames read."""
    data = Path(path).read_bytes()
    n = 0
    for fields in iter_recording(data, skip_counted=True):
        n += 1
        pipeline.feed_fields(fields)
    pipeline.finish()
    return n


async def replay_into_store(
    path: str | Path,
    pipeline: Pipeline,
    writer: StoreWriter,
    *,
    skip_frames: int = 0,
    cut: bool = False,
) -> int:
    """Like ``replay_file``, with every record written to the store and the
    stream position committed with them.  ``skip_frames`` resumes after a
    restart: those frames were processed (and committed) before.  With
    ``cut`` the recording ends where the connection was lost: the calls in
    progress are checkpointed, as a ``run`` stopped there would leave them,
    instead of being finished."""
    data = Path(path).read_bytes()
    n = 0
    for fields in iter_recording(data, skip_counted=True):
        n += 1
        if n <= skip_frames:
            continue
        pipeline.feed_fields(fields)
        writer.note_position(n, pipeline.engine.now)
        if n % 2000 == 0:
            await writer.flush()
    if cut:
        pipeline.settle()
        writer.note_position(n, pipeline.engine.last_event_time)
        Checkpointer(pipeline.engine, writer, writer.source).save_now()
    else:
        pipeline.finish()
        writer.note_position(n, pipeline.engine.now)
    await writer.flush()
    return n
