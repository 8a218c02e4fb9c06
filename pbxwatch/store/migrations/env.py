"""Alembic environment: runs on the async engine pbxwatch already uses."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from pbxwatch.store.models import Base

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _online(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.run_sync(_run)
    await engine.dispose()


_connection = context.config.attributes.get("connection")
if context.is_offline_mode():
    context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)  # fmt: skip
    with context.begin_transaction():
        context.run_migrations()
elif _connection is not None:  # pbxwatch db upgrade hands over its connection
    _run(_connection)
else:  # the alembic command line
    asyncio.run(_online(context.config.get_main_option("sqlalchemy.url") or ""))
