"""The `receptionist` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from receptionist import tracing
from receptionist.config import Settings, SettingsError, load_settings
from receptionist.logs import configure_logging
from receptionist.store.db import Database
from receptionist.untrusted import printable

if TYPE_CHECKING:
    from receptionist.tenants.model import Tenant

T = TypeVar("T")

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
tenants_app = typer.Typer(no_args_is_help=True, help="Tenant folders: list, validate, sync.")
db_app = typer.Typer(no_args_is_help=True, help="Database: migrations and spool replay.")
calls_app = typer.Typer(no_args_is_help=True, help="Stored calls.")
sim_app = typer.Typer(no_args_is_help=True, help="Local doubles of the external services.")
messages_app = typer.Typer(no_args_is_help=True, help="WhatsApp messages sent after calls.")
keys_app = typer.Typer(no_args_is_help=True, help="Keys to the API and dashboard.")
app.add_typer(tenants_app, name="tenants")
app.add_typer(db_app, name="db")
app.add_typer(calls_app, name="calls")
app.add_typer(sim_app, name="sim")
app.add_typer(messages_app, name="messages")
app.add_typer(keys_app, name="keys")

console = Console()
err = Console(stderr=True)


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    configure_logging(settings)
    tracing.setup_tracing()
    return settings


def _plain(line: str) -> None:
    """Print a line built from stored values: no Rich markup (a caller number of "[/]" must not
    stop the listing) and every control character shown as an escape (no terminal tricks)."""
    console.print(
        "\n".join(printable(part) for part in line.split("\n")), markup=False, highlight=False
    )


def _markup_safe(text: str) -> str:
    """A value from a file or the database inside a line that has our own markup."""
    from rich.markup import escape

    return escape(printable(text))


def _run(coro: Any) -> Any:
    try:
        import uvloop

        return uvloop.run(coro)
    except ImportError:  # pragma: no cover - platforms without uvloop
        return asyncio.run(coro)


# --- serve ------------------------------------------------------------------------------------


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes sharing the port.")] = None,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate",
            help="Upgrade the database schema before serving (safe when several servers start"
            " at once). Without it SQLite is still upgraded; PostgreSQL must be at head.",
        ),
    ] = False,
) -> None:
    """Run the bridge: Exotel WebSocket at /exotel/<tenant>, /healthz, /readyz, /metrics."""
    import logging

    from receptionist.bridge.server import serve_one, serve_processes
    from receptionist.engines.factory import check_engine_settings

    settings = _settings(host=host, port=port, workers=workers)
    try:
        # fail now, with one clear line, not at the first call; with no key at all this is
        # the local engine (README: calls go to the local engine without a Gemini key)
        engine = check_engine_settings(settings)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # migrated (or checked) once here, before any server process starts (a refusal is then
    # the one line on stderr)
    _prepare_database(settings, migrate=migrate or _is_sqlite(settings.database_url))
    logging.getLogger("receptionist.serve").info("calls will be answered by %s", engine)
    if through_transaction_pooler(settings.database_url):
        logging.getLogger("receptionist.serve").warning(
            "DATABASE_URL goes through a transaction-mode pooler: calls and jobs work, but the"
            " dashboard's live view (LISTEN/NOTIFY) needs a session-mode connection (Supabase:"
            " the direct or session pooler address, port 5432)"
        )
    if settings.workers > 1:  # each process its own socket on the port (bridge/server.py)
        raise typer.Exit(serve_processes(settings))
    raise typer.Exit(serve_one(settings))  # drains its calls on SIGTERM (bridge/drain.py)


def _is_sqlite(database_url: str) -> bool:
    # the embedded single-machine default migrates on start, so `demo`/`serve` just work
    return database_url.strip().lower().startswith("sqlite")


def _prepare_database(settings: Settings, *, migrate: bool) -> None:
    """Upgrade the schema (`migrate`), or check it is at head: on a shared database, schema
    changes are an operator's step (`db upgrade` or one `serve --migrate`), not a side effect
    of every server start. A database that is away or a schema that is behind ends `serve`
    with one line on stderr and exit code 2 (a platform's restart policy tries again)."""
    from receptionist.store.db import DatabaseUnavailable

    async def go() -> tuple[str | None, str] | None:
        db = Database(settings.database_url)
        try:
            await db.ping()
            if migrate:
                await db.upgrade()  # PostgreSQL: under an advisory lock, so several may start
                return None
            return await db.schema_behind()
        finally:
            await db.dispose()

    try:
        behind = _run(go())
    except DatabaseUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    if behind is not None:
        from receptionist.store.db import known_revision

        current, head = behind
        if current is not None and not known_revision(current):
            typer.echo(
                f"error: the database schema is at revision {current}, newer than this version"
                f" knows (its newest is {head}): run the release that migrated it",
                err=True,
            )
        else:
            typer.echo(
                f"error: the database schema is at revision {current or 'none (no tables)'},"
                f" this version needs {head}: run `receptionist db upgrade` first, or start"
                " with `receptionist serve --migrate`",
                err=True,
            )
        raise typer.Exit(2)


def through_transaction_pooler(database_url: str) -> bool:
    """A PostgreSQL URL of a transaction-mode pooler (Supabase's port 6543, or marked
    ``pgbouncer=true``): it hands each transaction any server connection, so a LISTEN is lost."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(database_url.strip())
    except Exception:  # not a URL at all: the database layer says so with its own message
        return False
    if url.get_backend_name() not in ("postgresql", "postgres"):
        return False
    flag = url.query.get("pgbouncer", "")
    flag = flag[-1] if isinstance(flag, tuple) else flag
    return url.port == 6543 or flag.lower() == "true"


def _with_db(settings: Settings, fn: Callable[[Database], Awaitable[T]]) -> T:
    """Open the database, migrate it, run `fn` on it, close it: one command's whole use.

    Every command migrates (idempotent, as `serve` and `worker` do) so that `calls list` or
    `messages list` on a new database shows nothing instead of a missing-table traceback."""

    async def go() -> T:
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            return await fn(db)
        finally:
            await db.dispose()

    result: T = _run(go())
    return result


async def _nothing(db: Database) -> None:
    return None


# --- demo -------------------------------------------------------------------------------------


@app.command()
def demo(
    tenant: Annotated[str, typer.Option(help="Tenant to call.")] = "bakery",
    fast: Annotated[bool, typer.Option(help="Do not pace audio in real time.")] = False,
    engine: Annotated[
        str, typer.Option(help="auto | local (real speech) | live-double (scripted double)")
    ] = "auto",
    exit_after: Annotated[
        bool,
        typer.Option(
            "--exit", help="Exit after the call (the default when stdin is not a terminal)."
        ),
    ] = False,
) -> None:
    """Place one spoken call through the real server, with no keys and no network; then print
    the dashboard's address and a key, and keep serving until Ctrl-C (from a terminal)."""
    import logging

    from receptionist.demo import run_demo

    if engine not in ("auto", "local", "live-double"):
        typer.echo("error: --engine must be auto, local or live-double", err=True)
        raise typer.Exit(2)
    settings = _settings()
    # the demo prints its own story; the server's routine lines would drown it
    for name in ("uvicorn.error", "receptionist"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # piped or scripted (CI, `| tee`): end after the call as before; a person at a terminal
    # gets the dashboard of the call just made
    keep_serving = not exit_after and sys.stdin is not None and sys.stdin.isatty()
    try:
        code = _run(
            run_demo(
                settings,
                tenant,
                realtime=not fast,
                console=console,
                engine=engine,
                keep_serving=keep_serving,
            )
        )
    except KeyboardInterrupt:  # Ctrl-C during the call itself: stop without a traceback
        err.print("interrupted")
        raise typer.Exit(130) from None
    raise typer.Exit(code)


# --- call (simulated caller / load generator) -------------------------------------------------


@app.command()
def call(
    target: Annotated[str, typer.Argument(help="ws:// URL of the bridge, or a tenant id.")],
    say: Annotated[list[str] | None, typer.Option("--say", help="A caller line (repeat).")] = None,
    wav: Annotated[Path | None, typer.Option(help="Feed this WAV instead of lines.")] = None,
    out: Annotated[Path | None, typer.Option(help="Save the agent's audio to this WAV.")] = None,
    calls: Annotated[int, typer.Option(min=1, help="Number of calls.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, help="Calls at once.")] = 1,
    realtime: Annotated[bool, typer.Option(help="Pace audio in real time.")] = True,
    sample_rate: Annotated[int, typer.Option(help="Stream rate: 8000, 16000, 24000.")] = 8000,
    from_number: Annotated[str, typer.Option("--from", help="Caller number.")] = "+919800000099",
    user: Annotated[str | None, typer.Option(help="Basic-auth user.")] = None,
    password: Annotated[str | None, typer.Option(help="Basic-auth token.")] = None,
    voice: Annotated[
        str, typer.Option(help="auto | local (Piper, real speech) | tone (for the Live double)")
    ] = "auto",
    scenario: Annotated[
        Path | None, typer.Option(help="TOML file of [[line]] say = ..., pause_ms = ...")
    ] = None,
) -> None:
    """Call the bridge like Exotel does: stream audio, print what happens, summarise."""
    from receptionist.engines.local.models import LocalModelsMissing
    from receptionist.sim.call_cli import ScenarioError, run_call_command

    if voice not in ("auto", "local", "tone"):
        typer.echo("error: --voice must be auto, local or tone", err=True)
        raise typer.Exit(2)

    settings = _settings()
    url = target
    if "://" not in target:
        url = f"ws://127.0.0.1:{settings.port}/exotel/{target}"
    try:
        code = _run(
            run_call_command(
                url=url,
                lines=list(say or []),
                wav_in=wav,
                wav_out=out,
                calls=calls,
                concurrency=concurrency,
                realtime=realtime,
                sample_rate=sample_rate,
                from_number=from_number,
                auth=(user, password) if user and password else None,
                console=console,
                voice=voice,
                scenario=scenario,
            )
        )
    except (ScenarioError, LocalModelsMissing) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    raise typer.Exit(code)


# --- post-call worker and costs ----------------------------------------------------------------


@app.command()
def worker(
    once: Annotated[bool, typer.Option(help="Process what is due, then exit.")] = False,
) -> None:
    """Run a post-call pipeline worker (several may run against one database)."""
    settings = _settings()

    async def go() -> None:
        from receptionist.postcall.wiring import worker_from_settings
        from receptionist.tenants.repository import TenantRepository

        db = Database(settings.database_url)
        try:
            await db.upgrade()
            w = worker_from_settings(settings, db, TenantRepository(settings.tenants_dir))
            if settings.worker_metrics_port and not once:
                from receptionist.observe.metrics import start_metrics_server

                token = settings.metrics_token
                bound = start_metrics_server(
                    settings.worker_metrics_port,
                    settings.host,
                    token=token.get_secret_value() if token else None,
                )
                console.print(f"worker metrics on http://{settings.host}:{bound}/metrics")
            if once:
                console.print(f"ran {await w.drain()} step(s)")
                return
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            import signal

            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            from receptionist import heap

            heap.freeze_startup()
            await asyncio.gather(w.run(stop), heap.trim_every(settings.heap_trim_interval_s, stop))
        finally:
            await db.dispose()

    try:
        _run(go())
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def costs(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    month: Annotated[str | None, typer.Option(help="YYYY-MM (default: this month, UTC).")] = None,
) -> None:
    """AI cost per tenant and model for a month, in USD and INR."""
    from datetime import UTC, datetime

    settings = _settings()
    month = month or datetime.now(UTC).strftime("%Y-%m")

    from receptionist.postcall.costs import costs_table, monthly_spend

    rows = _with_db(settings, lambda db: monthly_spend(db, tenant=tenant, month=month))
    console.print(costs_table(rows, settings.usd_inr_rate, title=f"AI costs {month}"))


# --- tenants ----------------------------------------------------------------------------------


@tenants_app.command("list")
def tenants_list() -> None:
    """List tenants with their status."""
    from receptionist.tenants.repository import TenantRepository

    settings = _settings()
    repo = TenantRepository(settings.tenants_dir)
    loaded, broken = repo.load_all()
    for t in loaded:
        state = "active" if t.active else "inactive"
        _plain(f"{t.tenant_id:<16} {state:<9} {t.name}  ({', '.join(t.languages)})")
    for tid, problems in broken.items():
        console.print(f"{tid:<16} [red]broken[/red]    {len(problems)} problem(s)")


@tenants_app.command("validate")
def tenants_validate(
    tenant: Annotated[str | None, typer.Argument(help="One tenant (default: all).")] = None,
) -> None:
    """Report every problem in the tenant folders, with file and line."""
    from receptionist.tenants.loading import validate_all, validate_tenant

    settings = _settings()
    root = settings.tenants_dir
    results = {tenant: validate_tenant(root, tenant)} if tenant else validate_all(root)
    bad = 0
    for tid, problems in sorted(results.items()):
        if not problems:
            console.print(f"[green]ok[/green]      {tid}")
            continue
        bad += 1
        for p in problems:
            console.print(f"[red]problem[/red] {_markup_safe(str(p))}", highlight=False)
    raise typer.Exit(1 if bad else 0)


@tenants_app.command("sync")
def tenants_sync() -> None:
    """Upsert every valid tenant into the tenant_configs table."""
    from receptionist.tenants.repository import TenantRepository

    settings = _settings()
    loaded, broken = TenantRepository(settings.tenants_dir).load_all()
    _with_db(settings, lambda db: _sync_tenants(db, loaded))
    for tid, problems in broken.items():
        console.print(
            f"[red]skipped[/red]   {tid}: {_markup_safe(str(problems[0]))}", highlight=False
        )
    raise typer.Exit(1 if broken else 0)


async def _sync_tenants(db: Database, loaded: list[Tenant]) -> None:
    from receptionist.store.tenant_configs import TenantConfigRow, upsert_tenant

    for t in loaded:
        changed = await upsert_tenant(
            db,
            TenantConfigRow(
                tenant_id=t.tenant_id,
                tenant_name=t.name,
                owner_phone=t.owner_phone,
                is_active=t.active,
                languages=list(t.languages),
                call_type_schema=t.call_type_schema,
                config=t.raw_config,
                prompt_version=t.prompt_version,
            ),
        )
        console.print(f"{'updated' if changed else 'unchanged':<9} {t.tenant_id}")


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the tables (idempotent)."""
    settings = _settings()
    _with_db(settings, _nothing)
    console.print(f"database at {Database.redact(settings.database_url)} is up to date")


@db_app.command("replay-spool")
def db_replay_spool() -> None:
    """Write calls saved to the spool folder (database was down) into the database."""
    settings = _settings()

    from receptionist.bridge.recorder import CallRecorder

    saved = _with_db(settings, lambda db: CallRecorder(db, settings.spool_dir).replay_spool())
    console.print(f"replayed {saved} call(s)")


# --- calls ------------------------------------------------------------------------------------


@calls_app.command("list")
def calls_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """The latest calls."""
    settings = _settings()

    from receptionist.store.calls import list_calls

    for row in _with_db(settings, lambda db: list_calls(db, tenant=tenant, limit=limit)):
        turns = len(row.get("transcript") or [])
        _plain(
            f"{row['started_at']!s:<26} {row['call_sid']:<24} {row['tenant'] or '-':<10} "
            f"{row['status']:<11} {row.get('end_reason') or '':<20} {turns} turns"
        )


@calls_app.command("retry")
def calls_retry(
    call_sid: str,
    stage: Annotated[str, typer.Option(help="Stage to restart from.")] = "transcript_saved",
) -> None:
    """Put a call (e.g. a `failed` one) back into the post-call pipeline."""
    from receptionist.postcall.pipeline import PENDING_STAGES

    if stage not in PENDING_STAGES:
        typer.echo(f"error: --stage must be one of {', '.join(PENDING_STAGES)}", err=True)
        raise typer.Exit(2)
    settings = _settings()

    from receptionist.store.jobs import reschedule

    if not _with_db(settings, lambda db: reschedule(db, call_sid, stage=stage)):
        typer.echo(f"no call {call_sid!r}", err=True)
        raise typer.Exit(1)
    console.print(f"call {call_sid} will be processed again from {stage}")


@calls_app.command("show")
def calls_show(call_sid: str) -> None:
    """One call as JSON: transcript, usage, stats, events, messages."""
    settings = _settings()

    from receptionist.store.calls import get_call
    from receptionist.store.notifications import list_notifications

    async def load(db: Database) -> dict[str, Any] | None:
        row = await get_call(db, call_sid)
        if row is not None:
            row["messages"] = await list_notifications(db, call_sid=call_sid)
        return row

    row = _with_db(settings, load)
    if row is None:
        err.print(f"no call {call_sid!r}", markup=False, highlight=False)
        raise typer.Exit(1)
    sys.stdout.write(json.dumps(row, indent=2, default=str, ensure_ascii=False) + "\n")


# --- messages ---------------------------------------------------------------------------------


@messages_app.command("list")
def messages_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    call: Annotated[str | None, typer.Option(help="Only this call.")] = None,
    status: Annotated[str | None, typer.Option(help="queued, sent, failed, unknown ...")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """The latest messages, with their status and, when they did not go out, why."""
    settings = _settings()

    from receptionist.notify.report import message_line
    from receptionist.store.notifications import list_notifications

    rows = _with_db(
        settings,
        lambda db: list_notifications(db, tenant=tenant, call_sid=call, status=status, limit=limit),
    )
    for row in rows:
        _plain(message_line(row))


@messages_app.command("resend")
def messages_resend(message_id: int) -> None:
    """Send a `failed` or `unknown` message again (after checking it did not arrive)."""
    settings = _settings()

    from receptionist.store.notifications import requeue

    if not _with_db(settings, lambda db: requeue(db, message_id)):
        typer.echo(f"no failed or unknown message {message_id}", err=True)
        raise typer.Exit(1)
    console.print(f"message {message_id} is queued again")


# --- keys -------------------------------------------------------------------------------------


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str | None, typer.Option(help="The tenant this key may see.")] = None,
    admin: Annotated[bool, typer.Option(help="An operator's key: every tenant.")] = False,
    name: Annotated[str | None, typer.Option(help="Who or what holds it.")] = None,
) -> None:
    """Make a key; it is printed once, alone on the last line (only its hash is kept)."""
    from receptionist.store.api_keys import create_key
    from receptionist.tenants.repository import TenantRepository, UnknownTenant

    if admin == (tenant is not None):
        typer.echo("error: give exactly one of --tenant T or --admin", err=True)
        raise typer.Exit(2)
    settings = _settings()
    if tenant is not None:
        try:
            TenantRepository(settings.tenants_dir).get_any(tenant)
        except UnknownTenant as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    key_id, key = _with_db(settings, lambda db: create_key(db, tenant=tenant, name=name))
    scope = f"tenant {tenant}" if tenant else "every tenant (admin)"
    sys.stdout.write(f"key {key_id} for {scope}; store it now, it is not shown again:\n{key}\n")


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, prefix, scope, name, when last used, revoked or not."""
    from receptionist.store.api_keys import describe, list_keys

    for row in _with_db(_settings(), list_keys):
        _plain(describe(row))


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key: it stops working at once."""
    from receptionist.store.api_keys import revoke_key

    if not _with_db(_settings(), lambda db: revoke_key(db, key_id)):
        typer.echo(f"no active key {key_id}", err=True)
        raise typer.Exit(1)
    console.print(f"key {key_id} revoked")


# --- sim --------------------------------------------------------------------------------------


@sim_app.command("gemini")
def sim_gemini(
    host: str = "127.0.0.1",
    port: int = 9443,
    ca_out: Annotated[Path, typer.Option(help="Write the CA certificate here.")] = Path(
        "data/sim-ca.pem"
    ),
    realtime: bool = True,
    api_key: str = "sim-key",
) -> None:
    """Run the Gemini Live double (TLS). Point GEMINI_BASE_URL and GEMINI_CA_FILE at it."""
    _settings()

    async def go() -> None:
        from receptionist.sim.gemini_live import FakeGeminiLive

        fake = FakeGeminiLive(api_key=api_key, realtime=realtime)
        await fake.start(host, port)
        ca_out.parent.mkdir(parents=True, exist_ok=True)
        ca_out.write_bytes(Path(fake.ca_file).read_bytes())
        console.print(
            f"Gemini Live double at {fake.base_url}\n"
            f"  GEMINI_BASE_URL={fake.base_url} GEMINI_CA_FILE={ca_out} GEMINI_API_KEY={api_key}",
            highlight=False,
        )
        await asyncio.Event().wait()

    _run(go())


if __name__ == "__main__":  # pragma: no cover
    app()
