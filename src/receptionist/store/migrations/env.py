"""Alembic environment for Receptionist, shipped inside the package (no alembic.ini).

Normally run through ``Database.upgrade()``, which hands an open connection in
``config.attributes["connection"]``. For authoring a new revision by hand::

    DATABASE_URL=sqlite:///./dev.db python -m receptionist.store.migrations revision -m "..." \
        --autogenerate
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection

from receptionist.store.schema import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=False,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("set DATABASE_URL (or sqlalchemy.url) to run migrations")
    return url


def run_offline() -> None:
    from receptionist.store.db import Database

    db = Database(_url())
    context.configure(
        url=db.url,
        target_metadata=metadata,
        literal_binds=True,
        render_as_batch=db.dialect == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_online_async() -> None:
    from receptionist.store.db import Database

    db = Database(_url())
    try:
        async with db.begin() as conn:
            await conn.run_sync(_configure)
    finally:
        await db.dispose()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
    else:
        asyncio.run(_run_online_async())


if context.is_offline_mode():
    run_offline()
else:
    run_online()
