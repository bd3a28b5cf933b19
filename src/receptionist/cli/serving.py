"""The commands that run things: `serve`, `demo`, `call`, `worker`, `costs`."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from receptionist.cli.common import (
    app,
    console,
    err,
    is_sqlite,
    prepare_database,
    run_coro,
    settings_for,
    through_transaction_pooler,
    with_db,
)
from receptionist.config import SettingsError
from receptionist.store.db import Database

if TYPE_CHECKING:
    pass


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

    settings = settings_for(host=host, port=port, workers=workers)
    try:
        # fail now, with one clear line, not at the first call; with no key at all this is
        # the local engine (README: calls go to the local engine without a Gemini key)
        engine = check_engine_settings(settings)
    except SettingsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # migrated (or checked) once here, before any server process starts (a refusal is then
    # the one line on stderr)
    prepare_database(settings, migrate=migrate or is_sqlite(settings.database_url))
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
    settings = settings_for()
    # the demo prints its own story; the server's routine lines would drown it
    for name in ("uvicorn.error", "receptionist"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # piped or scripted (CI, `| tee`): end after the call as before; a person at a terminal
    # gets the dashboard of the call just made
    keep_serving = not exit_after and sys.stdin is not None and sys.stdin.isatty()
    try:
        code = run_coro(
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

    settings = settings_for()
    url = target
    if "://" not in target:
        url = f"ws://127.0.0.1:{settings.port}/exotel/{target}"
    try:
        code = run_coro(
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
    settings = settings_for()

    async def go() -> None:
        from receptionist.postcall.wiring import worker_from_settings
        from receptionist.stored_tenants import StoredTenants, tenants_for

        db = Database(settings.database_url)
        w = None
        try:
            await db.upgrade()
            tenants = tenants_for(settings.tenants_source, settings.tenants_dir, db)
            stored = tenants if isinstance(tenants, StoredTenants) else None
            if stored is not None:
                await stored.start_or_defer(settings.tenants_dir)
            w = worker_from_settings(settings, db, tenants)
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
            await asyncio.gather(
                w.run(stop),
                heap.trim_every(settings.heap_trim_interval_s, stop),
                stored.run(stop) if stored is not None else asyncio.sleep(0),
            )
        finally:
            if w is not None:  # its HTTP clients (providers, Exotel, callbacks)
                await w.aclose()
            await db.dispose()

    try:
        run_coro(go())
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

    settings = settings_for()
    month = month or datetime.now(UTC).strftime("%Y-%m")

    from receptionist.postcall.costs import costs_table, monthly_spend

    rows = with_db(settings, lambda db: monthly_spend(db, tenant=tenant, month=month))
    console.print(costs_table(rows, settings.usd_inr_rate, title=f"AI costs {month}"))
