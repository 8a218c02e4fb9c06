"""Replay a recorded AMI stream through the pipeline at full speed."""

from __future__ import annotations

from pathlib import Path

from pbxwatch.ami.codec import iter_recording
from pbxwatch.pipeline import Pipeline


def replay_file(path: str | Path, pipeline: Pipeline) -> int:
    """Feed every frame of ``path``; return the number of frames read."""
    data = Path(path).read_bytes()
    n = 0
    for fields in iter_recording(data):
        n += 1
        pipeline.feed_fields(fields)
    pipeline.finish()
    return n
