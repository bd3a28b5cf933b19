"""`receptionist tenants ...`: list and check tenants, draft a new one from a description (new),
and move them between their folders and the database (sync, export, versions, restore)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from receptionist.cli.common import (
    console,
    err,
    markup_safe,
    plain,
    run_coro,
    settings_for,
    tenants_app,
)
from receptionist.cli.common import with_db as _with_db
from receptionist.store.db import Database
from receptionist.untrusted import printable

if TYPE_CHECKING:
    from receptionist.config import Settings
    from receptionist.tenants.bundle import TenantBundle
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


def _show_draft(files: dict[str, bytes]) -> None:
    """Each file of the draft, escaped for the terminal (the text came from a file or a model)."""
    for path, data in files.items():
        console.rule(markup_safe(path), style="dim")
        plain(data.decode("utf-8").rstrip("\n"))
    console.rule(style="dim")


def _save_draft_version(settings: Settings, tenant_id: str, bundle: TenantBundle) -> str:
    """Save the draft as version 1 of a tenant the database does not have ("" or a problem)."""
    from receptionist.store.tenant_versions import VersionConflict, save_version
    from receptionist.stored_tenants import FOLDER_AUTHOR, summary_of
    from receptionist.tenants.loading import load_bundle

    tenant, _ = load_bundle(tenant_id, bundle)
    assert tenant is not None  # checked when drafted

    async def go(db: Database) -> str:
        try:
            saved = await save_version(
                db,
                summary_of(tenant),
                bundle.as_text(),
                bundle.content_hash(),
                author=FOLDER_AUTHOR,  # its folder was written too: `tenants sync` may follow it
                note="drafted by tenants new",
                base_version=None,  # a new tenant only
            )
        except VersionConflict as exc:
            return str(exc)
        return f"saved {tenant_id} as version {saved.version} in the database"

    return str(_with_db(settings, go))


@tenants_app.command("new")
def tenants_new(
    tenant: Annotated[str, typer.Argument(help="The new tenant's id (its folder name).")],
    from_file: Annotated[
        Path, typer.Option("--from", help="A plain description of the business (UTF-8 text).")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Save without asking.")] = False,
    out: Annotated[
        Path | None, typer.Option(help="Folder to write (default: TENANTS_DIR/<id>).")
    ] = None,
) -> None:
    """Draft a tenant from a description of the business (with Gemini when GEMINI_API_KEY is
    set, else from a template), show it, and save it when accepted."""
    from receptionist.onboarding import DraftError, draft_tenant
    from receptionist.tenants.bundle import write_folder
    from receptionist.tenants.draft import MAX_DESCRIPTION_BYTES, read_description

    settings = settings_for()
    target = out if out is not None else settings.tenants_dir / tenant
    try:
        if target.exists():
            raise DraftError(f"{target} already exists: choose another id or --out folder")
        try:
            with from_file.open("rb") as f:
                data = f.read(MAX_DESCRIPTION_BYTES + 1)
        except OSError as exc:
            raise DraftError(f"cannot read {from_file}: {exc.strerror or exc}") from None
        description = read_description(data)
        result = run_coro(draft_tenant(tenant, description, **_gemini_args(settings)))
    except DraftError as exc:
        err.print(f"error: {printable(str(exc))}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    _show_draft(dict(result.bundle.files))
    plain(f"drafted {tenant} from {from_file} ({result.source})")
    for line in ([result.note] if result.note else []) + list(result.draft.warnings):
        err.print(f"warning: {printable(line)}", markup=False, highlight=False)
    if not yes and not _accepted(f"Save the draft to {target}?"):
        plain("not saved")
        raise typer.Exit(1)
    if settings.tenants_source == "database":
        done = _save_draft_version(settings, tenant, result.bundle)
        if not done.startswith("saved"):
            err.print(f"error: {printable(done)}", markup=False, highlight=False)
            raise typer.Exit(1)
        plain(done)
    write_folder(result.bundle, target)
    plain(f"wrote {len(result.bundle.files)} file(s) to {target}")


def _accepted(question: str) -> bool:
    try:
        return typer.confirm(question, default=False)
    except typer.Abort:  # no terminal, or Ctrl-C / Ctrl-D at the prompt
        return False


def _gemini_args(settings: Settings) -> dict[str, Any]:
    key = settings.gemini_key
    if not key:
        return {}
    from receptionist.gemini_rest import make_client

    client = make_client(key, base_url=settings.gemini_analysis_base_url)
    return {"client": client, "model": settings.gemini_analysis_model}
