"""Opening the store for a run or a replay, and restart recovery."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from pbxwatch.backoff import backoff_delay
from pbxwatch.core.engine import Engine
from pbxwatch.privacy import pseudonym_of
from pbxwatch.settings import ConfigError, Settings
from pbxwatch.stamp import PbxStamp
from pbxwatch.store.db import (
    SchemaError,
    check_schema,
    load_open_callbacks,
    load_open_incidents,
    make_engine,
    upgrade,
)
from pbxwatch.store.writer import StoreWriter

log = logging.getLogger(__name__)


class StoreUnavailable(ConfigError):
    """The database did not answer: ``run`` waits for it, one-shot
    commands report it."""


async def open_store(settings: Settings) -> AsyncEngine:
    """Connect and check the schema.  The embedded SQLite default is
    pbxwatch's own file and is migrated on the spot; a configured database
    must have been migrated with ``pbxwatch db upgrade``."""
    st = settings.storage
    engine = make_engine(st.resolved_url())
    try:
        if st.url is None:
            await upgrade(engine)
        await check_schema(engine)
    except SchemaError as exc:
        await engine.dispose()
        raise ConfigError(f"storage: {exc}") from exc
    except OSError as exc:
        await engine.dispose()
        raise StoreUnavailable(f"storage: cannot reach the database: {exc}") from exc
    except DBAPIError as exc:
        await engine.dispose()
        if not _not_ready(exc):
            raise
        raise StoreUnavailable(f"storage: the database is not ready: {exc.orig}") from exc
    return engine


#: SQLSTATEs of a server that is there but cannot take us yet: starting up,
#: shutting down, out of connection slots
_NOT_READY = frozenset({"57P03", "57P01", "57P02", "53300"})


def _not_ready(exc: BaseException) -> bool:
    """Whether the error (or one it was raised from) is a server that is
    starting or stopping, which waiting cures, not a wrong configuration."""
    seen: BaseException | None = exc
    for _ in range(8):  # a chain of wrappers, never a cycle worth following
        if seen is None:
            break
        if getattr(seen, "sqlstate", None) in _NOT_READY:
            return True
        seen = seen.__cause__ or getattr(seen, "orig", None)
    return False


async def open_store_waiting(
    settings: Settings, on_failure: Callable[[], None] | None = None
) -> AsyncEngine:
    """``open_store``, waiting (capped backoff) while the database is down
    or its host does not resolve: a service started before its database
    must not give up, but says so at every try (at most every 30 s) and
    calls ``on_failure`` (the metrics count it)."""
    attempt = 0
    while True:
        try:
            return await open_store(settings)
        except StoreUnavailable as exc:
            delay = backoff_delay(attempt, 1.0, 30.0)
            attempt += 1
            if on_failure is not None:
                on_failure()
            log.warning("%s; retrying in %.0f s (attempt %d)", exc, delay, attempt)
            await asyncio.sleep(delay)


def writer_for(settings: Settings, engine: AsyncEngine, source: str) -> StoreWriter:
    """The store writer (of all PBXs, in ``run``; by default of ``settings``'s)."""
    st = settings.storage
    st.data_dir.mkdir(parents=True, exist_ok=True)
    safe = "".join(ch if ch.isalnum() else "_" for ch in source)
    return StoreWriter(
        engine,
        source=source,
        pbx=settings.pbx_id,
        max_batch=st.batch_size,
        max_delay=st.batch_delay_seconds,
        capacity=st.capacity_rows,
        spill_path=st.data_dir / f"spill-{safe}.jsonl",
        pseudonym=pseudonym_of(settings),
    )


async def restore(engine: AsyncEngine, core: Engine, stamp: PbxStamp | None = None) -> int:
    """Put the PBX's open callbacks and open lasting incidents back into its
    core so deadlines, reminders, fulfilment and resolutions carry on where
    they stopped (same ids, same starts); returns how many."""
    stamp = stamp or PbxStamp()
    callbacks = [stamp.unstamp(cb) for cb in await load_open_callbacks(engine, stamp.pbx)]
    for cb in callbacks:
        core.callbacks.restore(cb)
    stored = await load_open_incidents(engine, stamp.pbx)
    incidents = [inc for inc in map(stamp.unstamp, stored) if core.restore_incident(inc)]
    if callbacks or incidents:
        log.info(
            "restored %d open callbacks and %d open incidents from the store",
            len(callbacks),
            len(incidents),
        )
    return len(callbacks) + len(incidents)
