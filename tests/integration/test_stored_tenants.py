"""Tenants served from the database (SQLite and PostgreSQL): folders imported, an edit saved by
another process seen on the next refresh, a call's tenant unchanged meanwhile, a broken stored
version confined to its tenant, a dashboard edit not undone by a folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from receptionist.store.db import Database
from receptionist.store.tenant_versions import current_versions, load_version, save_version
from receptionist.stored_tenants import StoredTenants, import_folder, summary_of
from receptionist.tenants.bundle import read_folder
from receptionist.tenants.repository import BrokenTenant, InactiveTenant, UnknownTenant
from tests.pg import ThrowawayPostgres

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    root = tmp_path / "tenants"
    for tid in ("bakery", "clinic"):
        shutil.copytree(EXAMPLES / tid, root / tid)
    (root / "not a tenant").mkdir()  # not a valid id: never imported
    return root


async def _edit(db: Database, tenant_id: str, change: dict[str, str], author: str) -> int:
    """Another process's save: the version in force with some files changed."""
    now = await load_version(db, tenant_id)
    assert now is not None
    files = {**now.files, **change}
    ours = StoredTenants(db)
    await ours.refresh()
    tenant = ours.get_any(tenant_id)
    saved = await save_version(
        db,
        summary_of(tenant),
        files,
        f"hash-{len(files)}-{sorted(change.items())}",
        author=author,
        base_version=now.info.version,
    )
    return saved.version


async def test_folders_are_imported_once_and_served(db: Database, folders: Path) -> None:
    tenants = StoredTenants(db)
    await tenants.start(folders)
    assert tenants.ids() == ["bakery", "clinic"]
    bakery = tenants.get("bakery")
    assert bakery.version == 1 and bakery.name == "Sweet Crumbs Bakery"
    # a second process starting finds them there: nothing imported twice
    again = StoredTenants(db)
    await again.start(folders)
    assert await current_versions(db) == {"bakery": 1, "clinic": 1}
    with pytest.raises(UnknownTenant):
        tenants.get("nobody")


async def test_an_edit_elsewhere_is_seen_on_the_next_refresh(db: Database, folders: Path) -> None:
    server = StoredTenants(db)
    await server.start(folders)
    in_a_call = server.get("bakery")
    toml = (folders / "bakery" / "tenant.toml").read_text()
    renamed = toml.replace('name = "Sweet Crumbs Bakery"', 'name = "Sweet Crumbs Patisserie"')
    assert renamed != toml
    version = await _edit(db, "bakery", {"tenant.toml": renamed}, "key:1")
    assert server.get("bakery").name == "Sweet Crumbs Bakery"  # until it refreshes
    assert await server.refresh() == ["bakery"]
    assert server.get("bakery").name == "Sweet Crumbs Patisserie"
    assert server.get("bakery").version == version == 2
    assert in_a_call.name == "Sweet Crumbs Bakery" and in_a_call.version == 1
    assert await server.refresh() == []  # nothing new: nothing reloaded


async def test_a_deactivation_is_seen_too(db: Database, folders: Path) -> None:
    server = StoredTenants(db)
    await server.start(folders)
    toml = (folders / "clinic" / "tenant.toml").read_text()
    assert "\nactive = true\n" in toml
    off = toml.replace("\nactive = true\n", "\nactive = false\n")
    await _edit(db, "clinic", {"tenant.toml": off}, "key:1")
    await server.refresh()
    with pytest.raises(InactiveTenant):
        server.get("clinic")
    assert server.get_any("clinic").active is False


async def test_a_stored_version_that_no_longer_loads_breaks_only_its_tenant(
    db: Database, folders: Path
) -> None:
    server = StoredTenants(db)
    await server.start(folders)
    await _edit(db, "clinic", {"tenant.toml": "name = \n"}, "key:9")
    await server.refresh()
    with pytest.raises(BrokenTenant):
        server.get("clinic")
    assert server.problems("clinic")
    assert server.get("bakery").name == "Sweet Crumbs Bakery"
    loaded, broken = server.load_all()
    assert [t.tenant_id for t in loaded] == ["bakery"] and list(broken) == ["clinic"]


async def test_a_folder_does_not_undo_an_edit_made_elsewhere(db: Database, folders: Path) -> None:
    server = StoredTenants(db)
    await server.start(folders)
    notes = {"input_files/notes.md": "Closed on Diwali."}
    edited = await _edit(db, "bakery", notes, "key:4")
    (folders / "bakery" / "input_files" / "extra.md").write_text("From git.\n")
    refused = await import_folder(db, folders, "bakery")
    assert refused.saved is None and "key:4" in refused.problems[0].message
    assert (await current_versions(db))["bakery"] == edited
    forced = await import_folder(db, folders, "bakery", force=True)
    assert forced.saved is not None and forced.saved.version == edited + 1
    now = await load_version(db, "bakery")
    assert (
        now is not None and now.info.content_hash == read_folder(folders / "bakery").content_hash()
    )
    # a folder import over a folder import needs no force
    (folders / "bakery" / "input_files" / "extra.md").write_text("From git, again.\n")
    assert (await import_folder(db, folders, "bakery")).saved is not None


async def test_a_broken_folder_is_not_imported(db: Database, folders: Path) -> None:
    (folders / "clinic" / "tenant.toml").write_text("name = \n")
    server = StoredTenants(db)
    await server.start(folders)
    assert server.ids() == ["bakery"]


async def test_a_call_row_names_the_version_that_answered(db: Database, tmp_path: Path) -> None:
    from receptionist.sim.caller import CallerScript, CallOptions, place_call
    from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
    from receptionist.store.calls import get_call
    from tests.integration.bridge_harness import running_bridge

    script = CallScript(turns=[ScriptedTurn(heard="Are you open?", reply="Yes, till nine.")])
    async with (
        FakeGeminiLive(script=script) as fake,
        running_bridge(db, tmp_path, fake, tenants_source="database") as bridge,
    ):
        result = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=["Are you open?"]),
        )
    assert result.call_sid
    row = await get_call(db, result.call_sid)
    assert row is not None and row["tenant_version"] == 1  # imported from the folder at start


async def test_a_tenant_deactivated_during_a_call(db: Database, tmp_path: Path) -> None:
    """The call in progress finishes with the version it started with; the next is refused."""
    import asyncio

    from receptionist.sim.caller import CallerScript, CallOptions, place_call
    from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, Hold, ScriptedTurn
    from receptionist.store.calls import get_call
    from tests.integration.bridge_harness import running_bridge

    hold = Hold(after_ms=100)
    script = CallScript(
        turns=[ScriptedTurn(heard="Are you open?", reply="Yes, till nine.", hold=hold)]
    )
    async with (
        FakeGeminiLive(script=script) as fake,
        running_bridge(db, tmp_path, fake, tenants_source="database") as bridge,
    ):
        live = asyncio.create_task(
            place_call(
                CallOptions(url=bridge.url("bakery"), realtime=False),
                CallerScript(utterances=["Are you open?"]),
            )
        )
        await hold.wait_reached()  # the agent is mid-reply
        toml = await load_version(db, "bakery")
        assert toml is not None
        off = toml.files["tenant.toml"].replace("\nactive = true\n", "\nactive = false\n")
        assert off != toml.files["tenant.toml"]
        await _edit(db, "bakery", {"tenant.toml": off}, "key:1")
        stored = bridge.ctx.tenants
        assert isinstance(stored, StoredTenants)
        await stored.refresh()  # what the server's poll does within 2 s
        hold.release()
        first = await live
        refused = await place_call(
            CallOptions(url=bridge.url("bakery"), realtime=False),
            CallerScript(utterances=["Hello?"]),
        )
    row = await get_call(db, first.call_sid)
    assert row is not None and row["status"] == "completed" and row["tenant_version"] == 1
    assert any(t["text"] == "Yes, till nine." for t in row["transcript"] if t["speaker"] == "agent")
    assert refused.close_code == 1008  # inactive: refused at the start


async def test_the_version_that_answered_a_call_can_be_had_later(
    db: Database, folders: Path
) -> None:
    server = StoredTenants(db)
    await server.start(folders)
    toml = (folders / "bakery" / "tenant.toml").read_text()
    renamed = toml.replace('name = "Sweet Crumbs Bakery"', 'name = "Sweet Crumbs Cafe"')
    await _edit(db, "bakery", {"tenant.toml": renamed}, "key:1")
    await server.refresh()
    assert server.get("bakery").name == "Sweet Crumbs Cafe"
    old = await server.at_version("bakery", 1)  # what the post-call analysis uses for a v1 call
    assert (old.name, old.version) == ("Sweet Crumbs Bakery", 1)
    assert await server.at_version("bakery", 1) is old  # kept, not loaded again
    gone = await server.at_version("bakery", 99)  # no such version: the one in force
    assert gone.version == 2


async def test_after_an_edit_the_call_is_analysed_and_messaged_as_it_was_answered(
    db: Database, folders: Path
) -> None:
    """A call answered by version 1 gets version 1's call types, rules and recipients, though
    the owner moved the owner's message to another number (version 2) before the worker ran."""
    import sqlalchemy as sa

    from receptionist.notify.actions import ActionDeps
    from receptionist.postcall.pipeline import PipelineDeps
    from receptionist.postcall.pricing import load_pricing
    from receptionist.postcall.wiring import offline_analyzer
    from receptionist.postcall.worker import Worker
    from receptionist.store.calls import FinishedCall, finish_call
    from receptionist.store.schema import notifications
    from tests.integration.test_pipeline import ORDER

    server = StoredTenants(db)
    await server.start(folders)
    await finish_call(
        db,
        FinishedCall(
            call_sid="CAv1", status="completed", tenant="bakery", transcript=ORDER, tenant_version=1
        ),
    )
    now = await load_version(db, "bakery")
    assert now is not None
    rule = 'to = "owner"\ntemplate = "owner_new_order"'
    assert rule in now.files["tenant.toml"]
    moved = now.files["tenant.toml"].replace(rule, rule.replace('"owner"', '"+919800000099"'))
    assert await _edit(db, "bakery", {"tenant.toml": moved}, "key:1") == 2
    await server.refresh()
    assert server.get_any("bakery").version == 2

    deps = PipelineDeps(
        db=db,
        tenants=server,
        pricing=load_pricing(),
        analyzer=offline_analyzer,
        actions=ActionDeps(provider="log", writer=None),
    )
    await Worker(deps).drain()
    async with db.session() as conn:
        sent = (
            await conn.execute(
                sa.select(notifications.c.recipient_type, notifications.c.recipient).where(
                    notifications.c.call_sid == "CAv1"
                )
            )
        ).all()
    assert ("owner", "919800000001") in {tuple(r) for r in sent}, sent  # as MSG91 takes it
    assert all(r.recipient != "919800000099" for r in sent)


async def test_a_start_while_the_database_is_away_finishes_when_it_answers(
    pg_db: Database, postgres_server: ThrowawayPostgres, folders: Path
) -> None:
    """The server comes up with no tenant (calls are refused) instead of failing; the poll
    imports and loads them once the database answers. PostgreSQL stopped: connections are
    refused, as when it restarts."""
    server = StoredTenants(pg_db)
    await pg_db.dispose()  # no pooled connection survives the stop
    postgres_server.halt()
    try:
        assert await server.start_or_defer(folders) is False
        assert server.ids() == []
        await server.poll_once()  # still away: a warning, nothing else
        assert server.ids() == []
    finally:
        postgres_server.resume()
    await server.poll_once()
    assert server.ids() == ["bakery", "clinic"]
    assert server.get("bakery").version == 1  # imported from its folder


async def test_a_start_that_fails_for_another_reason_is_not_deferred(
    sqlite_db: Database, tmp_path: Path
) -> None:
    server = StoredTenants(sqlite_db)
    not_a_folder = tmp_path / "tenants.txt"
    not_a_folder.write_text("x")
    original = server.start

    async def broken(folders: Path | None) -> None:
        raise ValueError("a bug, not an outage")

    server.start = broken  # type: ignore[method-assign]
    with pytest.raises(ValueError):
        await server.start_or_defer(not_a_folder)
    server.start = original  # type: ignore[method-assign]
