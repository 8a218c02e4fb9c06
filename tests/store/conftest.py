"""Store tests run twice: on SQLite and on a real PostgreSQL the tests start."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from pbxwatch.settings import Settings, StorageSettings
from pbxwatch.store.db import make_engine, upgrade
from tests import pg

_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    if not pg.available():
        pytest.fail("PostgreSQL binaries missing: run scripts/test.sh (it installs them)")
    with pg.postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of each kind."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
        return
    server: str = request.getfixturevalue("pg_server")
    name = f"t{next(_counter)}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f"CREATE DATABASE {name}"))
    await admin.dispose()
    yield server.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated database (what `pbxwatch db upgrade` leaves)."""
    engine = make_engine(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


def with_store(settings: Settings, url: str, data_dir: Path) -> Settings:
    return settings.model_copy(update={"storage": StorageSettings(url=url, data_dir=data_dir)})
