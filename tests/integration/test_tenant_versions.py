"""Tenant versions in the database (SQLite and PostgreSQL): saved whole, never overwritten, the
one in force on tenant_configs, a stale editor refused, two saves at once serialised."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from receptionist.store.db import Database
from receptionist.store.schema import tenant_configs
from receptionist.store.tenant_configs import TenantConfigRow
from receptionist.store.tenant_versions import (
    VersionConflict,
    current_versions,
    list_versions,
    load_version,
    save_version,
)


def _summary(tenant_id: str = "bakery", name: str = "Sweet Crumbs") -> TenantConfigRow:
    return TenantConfigRow(tenant_id=tenant_id, tenant_name=name, languages=["en-IN"])


FILES_1 = {"tenant.toml": 'name = "Sweet Crumbs"\n', "prompts/assistant.txt": "Hello"}
FILES_2 = {**FILES_1, "input_files/menu.md": "Black Forest 1 kg: 750"}


async def test_versions_are_kept_whole_and_the_newest_is_in_force(db: Database) -> None:
    first = await save_version(db, _summary(), FILES_1, "h1", author="folder", base_version=None)
    assert (first.version, first.created) == (1, True)
    second = await save_version(db, _summary(), FILES_2, "h2", author="key:3", base_version=1)
    assert (second.version, second.created) == (2, True)
    assert await current_versions(db) == {"bakery": 2}
    in_force = await load_version(db, "bakery")
    assert in_force is not None and in_force.files == FILES_2
    assert in_force.info.author == "key:3"
    old = await load_version(db, "bakery", 1)
    assert old is not None and old.files == FILES_1  # never overwritten
    assert [v.version for v in await list_versions(db, "bakery")] == [2, 1]
    async with db.session() as conn:
        row = (await conn.execute(sa.select(tenant_configs))).one()
    assert (row.tenant_id, row.version, row.tenant_name) == ("bakery", 2, "Sweet Crumbs")


async def test_the_same_files_again_write_nothing(db: Database) -> None:
    await save_version(db, _summary(), FILES_1, "h1", author="folder")
    again = await save_version(db, _summary(), FILES_1, "h1", author="folder")
    assert (again.version, again.created) == (1, False)
    assert len(await list_versions(db, "bakery")) == 1


async def test_restoring_an_old_version_saves_it_as_the_newest(db: Database) -> None:
    await save_version(db, _summary(), FILES_1, "h1", author="cli")
    await save_version(db, _summary(), FILES_2, "h2", author="cli")
    old = await load_version(db, "bakery", 1)
    assert old is not None
    restored = await save_version(
        db, _summary(), old.files, old.info.content_hash, author="cli", base_version=2
    )
    assert restored.version == 3
    assert (await current_versions(db))["bakery"] == 3
    now = await load_version(db, "bakery")
    assert now is not None and now.files == FILES_1


async def test_an_editor_who_loaded_an_older_version_is_told(db: Database) -> None:
    await save_version(db, _summary(), FILES_1, "h1", author="key:1", base_version=None)
    await save_version(db, _summary(), FILES_2, "h2", author="key:1", base_version=1)
    with pytest.raises(VersionConflict) as caught:
        await save_version(
            db, _summary(), {"tenant.toml": "x"}, "h3", author="key:2", base_version=1
        )
    assert (caught.value.base, caught.value.current) == (1, 2)
    now = await load_version(db, "bakery")
    assert now is not None and now.files == FILES_2  # nothing lost


async def test_creating_a_tenant_that_exists_is_a_conflict(db: Database) -> None:
    await save_version(db, _summary(), FILES_1, "h1", author="key:1", base_version=None)
    with pytest.raises(VersionConflict):
        await save_version(db, _summary(), FILES_2, "h2", author="key:2", base_version=None)


async def test_two_saves_from_the_same_version_at_once_one_wins(db: Database) -> None:
    await save_version(db, _summary(), FILES_1, "h1", author="cli")
    edits = [{**FILES_1, "input_files/a.md": f"edit {i}"} for i in range(2)]
    results = await asyncio.gather(
        *(
            save_version(db, _summary(), f, f"e{i}", author=f"key:{i}", base_version=1)
            for i, f in enumerate(edits)
        ),
        return_exceptions=True,
    )
    saved = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, VersionConflict)]
    assert len(saved) == 1 and len(refused) == 1, results
    assert saved[0].version == 2
    assert [v.version for v in await list_versions(db, "bakery")] == [2, 1]


async def test_unknown_tenant_and_version(db: Database) -> None:
    assert await load_version(db, "ghost") is None
    await save_version(db, _summary(), FILES_1, "h1", author="cli")
    assert await load_version(db, "bakery", 7) is None
    assert await current_versions(db) == {"bakery": 1}
