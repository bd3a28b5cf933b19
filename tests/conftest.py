"""Database fixtures shared by every test folder.

- ``postgres_server`` (session): one throw-away PostgreSQL server, started the first time a test
  needs it and stopped at the end of the session.
- ``db`` (function, parametrized ``sqlite`` / ``postgresql``): an upgraded ``Database``; SQLite on
  a fresh file in tmp_path, PostgreSQL on a fresh database of the shared server.
- ``sqlite_db`` / ``pg_db``: the same, one backend only.

``RECEPTIONIST_TEST_PG=0`` skips everything marked ``postgres``. Otherwise missing PostgreSQL
binaries make those tests fail with an install hint (never a silent skip).
Generic helpers live in tests/pg.py.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from receptionist.store.db import Database
from tests.pg import ThrowawayPostgres, pg_tests_enabled, upgraded_database

_PG_DISABLED = "PostgreSQL tests disabled by RECEPTIONIST_TEST_PG=0"

# Admission by event-loop lag (bridge/admission.py) would refuse calls whenever this machine is
# busy (its loop runs late from load, not from our calls): off for every test and every server
# a test starts, unless the test turns it on (tests/integration/test_admission.py).
os.environ.setdefault("ADMISSION_MAX_LOOP_LAG_MS", "0")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # tests that use the server directly (pg_db, postgres_server) count as `postgres` too, so
    # `-m "not postgres"` and RECEPTIONIST_TEST_PG=0 leave them out
    for item in items:
        if "postgres_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
    if pg_tests_enabled():
        return
    skip = pytest.mark.skip(reason=_PG_DISABLED)
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[ThrowawayPostgres]:
    """A throw-away PostgreSQL server shared by the whole test session."""
    if not pg_tests_enabled():
        pytest.skip(_PG_DISABLED)
    server = ThrowawayPostgres().start()
    try:
        yield server
    finally:
        server.stop()


async def _sqlite_database(tmp_path: Path) -> AsyncIterator[Database]:
    async with upgraded_database(f"sqlite:///{tmp_path / 'receptionist.db'}") as db:
        yield db


async def _pg_database(server: ThrowawayPostgres) -> AsyncIterator[Database]:
    async with server.fresh_database() as url, upgraded_database(url) as db:
        yield db


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """An upgraded Database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        async for database in _sqlite_database(tmp_path):
            yield database
    else:
        server: ThrowawayPostgres = request.getfixturevalue("postgres_server")
        async for database in _pg_database(server):
            yield database


@pytest.fixture
async def sqlite_db(tmp_path: Path) -> AsyncIterator[Database]:
    """An upgraded Database on a fresh SQLite file."""
    async for database in _sqlite_database(tmp_path):
        yield database


@pytest.fixture
async def pg_db(postgres_server: ThrowawayPostgres) -> AsyncIterator[Database]:
    """An upgraded Database on a fresh PostgreSQL database."""
    async for database in _pg_database(postgres_server):
        yield database
