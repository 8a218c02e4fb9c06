"""Replay a recording through a real socket into the real client.

The recording is served by :class:`~pbxwatch.ami.server.AmiServer` on a free
loopback port with a one-off secret; :class:`~pbxwatch.ami.client.AmiSource`
logs in, receives every frame and feeds the pipeline, and the server hangs up
after the last frame.  The result must equal the in-process file replay.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import SecretStr

from pbxwatch.ami.client import AmiSource
from pbxwatch.ami.server import AmiServer, load_recording
from pbxwatch.pipeline import Pipeline
from pbxwatch.settings import Settings


async def replay_via_tcp(path: str | Path, settings: Settings, pipeline: Pipeline) -> int:
    """Serve ``path`` on loopback, read it back over TCP; return frames received."""
    secret = secrets.token_urlsafe(16)
    server = AmiServer(load_recording(path), settings.ami.username, secret)
    port = await server.start("127.0.0.1", 0)
    ami = settings.ami.model_copy(update={"host": "127.0.0.1", "port": port, "tls": False})
    source = AmiSource(ami, SecretStr(secret), pipeline.feed_fields, reconnect=False)
    try:
        await source.run()
    finally:
        await server.close()
    pipeline.finish()
    return source.frames
