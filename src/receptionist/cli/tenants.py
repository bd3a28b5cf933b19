"""`receptionist tenants ...`: list and check tenants, and move them between their folders and the
database (sync, export, versions, restore)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from receptionist.cli.common import console, err, markup_safe, plain, settings_for, tenants_app
from receptionist.cli.common import with_db as _with_db
from receptionist.store.db import Database

if TYPE_CHECKING:
    from receptionist.config import Settings
    from receptionist.tenants.repository import Tenants


def _show(tenants: Tenants) -> None:
    loaded, broken = tenants.load_all()
    for t in loaded:
        state = "active" if t.active else "inactive"
        version = f"v{t.version}" if t.version is not None else "folder"
        plain(f"{t.tenant_id:<16} {state:<9} {version:<7} {t.name}  ({', '.join(t.languages)})")
    for tid, problems in broken.items():
        console.print(f"{tid:<16} [red]broken[/red]    {len(problems)} problem(s)")


def configured_tenants(settings: Settings) -> Tenants:
    """The tenants TENANTS_SOURCE names, loaded (from the database: the versions in force)."""
    from receptionist.stored_tenants import StoredTenants
    from receptionist.tenants.repository import TenantRepository

    if settings.tenants_source == "folders":
        return TenantRepository(settings.tenants_dir)

    async def go(db: Database) -> StoredTenants:
        stored = StoredTenants(db)
        await stored.refresh()
        return stored

    loaded: StoredTenants = _with_db(settings, go)
    return loaded


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants (from TENANTS_SOURCE: folders or the database) with their status."""
    _show(configured_tenants(settings_for()))


@tenants_app.command("validate")
def tenants_validate(
    tenant: Annotated[str | None, typer.Argument(help="One tenant (default: all).")] = None,
) -> None:
    """Report every problem in the tenant folders, with file and line."""
    from receptionist.tenants.loading import validate_all, validate_tenant

    settings = settings_for()
    root = settings.tenants_dir
    results = {tenant: validate_tenant(root, tenant)} if tenant else validate_all(root)
    bad = 0
    for tid, problems in sorted(results.items()):
        if not problems:
            console.print(f"[green]ok[/green]      {tid}")
            continue
        bad += 1
        for p in problems:
            console.print(f"[red]problem[/red] {markup_safe(str(p))}", highlight=False)
    raise typer.Exit(1 if bad else 0)


@tenants_app.command("sync")
def tenants_sync(
    tenant: Annotated[str | None, typer.Argument(help="One tenant (default: all).")] = None,
    force: Annotated[
        bool, typer.Option(help="Replace a version made in the dashboard or the API.")
    ] = False,
) -> None:
    """Save each tenant folder that loads as its newest version in the database (when its files
    changed). A version made elsewhere is not replaced without --force."""
    from receptionist.stored_tenants import import_folder
    from receptionist.tenants.loading import is_valid_tenant_id

    settings = settings_for()
    root = settings.tenants_dir
    ids = (
        [tenant]
        if tenant
        else sorted(p.name for p in root.iterdir() if p.is_dir() and is_valid_tenant_id(p.name))
        if root.is_dir()
        else []
    )

    async def go(db: Database) -> int:
        skipped = 0
        for tid in ids:
            done = await import_folder(db, root, tid, force=force)
            if done.saved is None:
                skipped += 1
                why = markup_safe(str(done.problems[0]))
                console.print(f"[red]skipped[/red]   {tid}: {why}", highlight=False)
            elif done.saved.created:
                console.print(f"updated   {tid} (version {done.saved.version})")
            else:
                console.print(f"unchanged {tid} (version {done.saved.version})")
        return skipped

    raise typer.Exit(1 if _with_db(settings, go) else 0)


@tenants_app.command("export")
def tenants_export(
    tenant: Annotated[str, typer.Argument(help="The tenant.")],
    directory: Annotated[Path, typer.Argument(help="Folder to write its files into.")],
    version: Annotated[int | None, typer.Option(help="A version (default: in force).")] = None,
) -> None:
    """Write a tenant kept in the database back out as a folder (to keep it in git)."""
    from receptionist.store.tenant_versions import load_version
    from receptionist.tenants.bundle import TenantBundle, folder_files, write_folder

    settings = settings_for()
    stored = _with_db(settings, lambda db: load_version(db, tenant, version))
    if stored is None:
        err.print(f"no {'version ' + str(version) + ' of ' if version else ''}tenant {tenant!r}")
        raise typer.Exit(1)
    bundle = TenantBundle.from_text(stored.files)
    # the folder becomes exactly this version: tenant files it has and the version does not go
    stale = [p for p in folder_files(directory) if p.is_file()]
    for path in stale:
        if path.relative_to(directory).as_posix() not in bundle.files:
            path.unlink()
    written = write_folder(bundle, directory)
    console.print(
        f"wrote {len(written)} file(s) of {tenant} version {stored.info.version} to {directory}",
        highlight=False,
    )


@tenants_app.command("versions")
def tenants_versions(tenant: Annotated[str, typer.Argument(help="The tenant.")]) -> None:
    """List a tenant's saved versions, newest first."""
    from receptionist.store.tenant_versions import list_versions

    settings = settings_for()
    rows = _with_db(settings, lambda db: list_versions(db, tenant))
    if not rows:
        err.print(f"no versions of tenant {tenant!r} in the database")
        raise typer.Exit(1)
    for v in rows:
        when = v.created_at.strftime("%Y-%m-%d %H:%M")
        plain(f"v{v.version:<5} {when}  {v.author:<12} {v.note or ''}")


@tenants_app.command("restore")
def tenants_restore(
    tenant: Annotated[str, typer.Argument(help="The tenant.")],
    version: Annotated[int, typer.Argument(help="The version to put back in force.")],
) -> None:
    """Put an earlier version back in force (saved again as the newest version)."""
    from receptionist.store.tenant_versions import VersionConflict, current_versions, load_version
    from receptionist.store.tenant_versions import save_version as save
    from receptionist.stored_tenants import summary_of
    from receptionist.tenants.bundle import TenantBundle
    from receptionist.tenants.loading import load_bundle

    settings = settings_for()

    async def go(db: Database) -> str:
        old = await load_version(db, tenant, version)
        if old is None:
            return f"no version {version} of tenant {tenant!r}"
        loaded, problems = load_bundle(tenant, TenantBundle.from_text(old.files))
        if loaded is None:  # checks added since it was saved
            return f"version {version} no longer loads: {problems[0]}"
        base = (await current_versions(db)).get(tenant)
        try:
            saved = await save(
                db,
                summary_of(loaded),
                old.files,
                old.info.content_hash,
                author="cli",
                note=f"restored version {version}",
                base_version=base,
            )
        except VersionConflict as exc:
            return str(exc)
        if not saved.created:
            return f"version {version} is already what is in force (version {saved.version})"
        console.print(f"restored {tenant} version {version} as version {saved.version}")
        return ""

    problem = _with_db(settings, go)
    if problem:
        err.print(problem, markup=False, highlight=False)
        raise typer.Exit(1)
