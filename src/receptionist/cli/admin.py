"""The commands that look after things: `db`, `calls`, `messages`, `keys`, `sim` (`tenants` has
its own module)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from receptionist.cli.common import (
    calls_app,
    console,
    db_app,
    err,
    keys_app,
    messages_app,
    nothing,
    plain,
    run_coro,
    settings_for,
    sim_app,
    with_db,
)
from receptionist.store.db import Database

if TYPE_CHECKING:
    pass


# --- db ---------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the tables (idempotent)."""
    settings = settings_for()
    with_db(settings, nothing)
    console.print(f"database at {Database.redact(settings.database_url)} is up to date")


@db_app.command("replay-spool")
def db_replay_spool() -> None:
    """Write calls saved to the spool folder (database was down) into the database."""
    settings = settings_for()

    from receptionist.bridge.recorder import CallRecorder

    saved = with_db(settings, lambda db: CallRecorder(db, settings.spool_dir).replay_spool())
    console.print(f"replayed {saved} call(s)")


# --- calls ------------------------------------------------------------------------------------


@calls_app.command("list")
def calls_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    limit: Annotated[int, typer.Option(min=1)] = 20,
) -> None:
    """The latest calls."""
    settings = settings_for()

    from receptionist.store.calls import list_calls

    for row in with_db(settings, lambda db: list_calls(db, tenant=tenant, limit=limit)):
        turns = len(row.get("transcript") or [])
        plain(
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
    settings = settings_for()

    from receptionist.store.jobs import reschedule

    if not with_db(settings, lambda db: reschedule(db, call_sid, stage=stage)):
        typer.echo(f"no call {call_sid!r}", err=True)
        raise typer.Exit(1)
    console.print(f"call {call_sid} will be processed again from {stage}")


@calls_app.command("callback")
def calls_callback(
    call_sid: str,
    reason: Annotated[
        str, typer.Option(help="Why: requested, failed, dropped or unresolved (once each).")
    ] = "requested",
    wait: Annotated[bool, typer.Option(help="Wait to see whether the caller answered.")] = True,
    when_open: Annotated[
        bool,
        typer.Option(
            "--when-open",
            help="Outside the hours, schedule it for their next opening instead of refusing.",
        ),
    ] = False,
) -> None:
    """Have the AI call this call's caller back now, with the first call's context (within the
    tenant's [callbacks] hours, rate-limited per number, never twice for one reason). With
    --when-open, outside the hours it is scheduled and the worker dials it when they open."""
    settings = settings_for()

    from receptionist.callbacks import (
        CallbackRefused,
        Scheduled,
        callback_deps,
        place_callback,
        schedule_callback,
        settle_callback,
    )
    from receptionist.cli.tenants import configured_tenants
    from receptionist.telephony.exotel_api import ExotelApiError

    tenants = configured_tenants(settings)

    async def go(db: Database) -> str:
        deps = callback_deps(settings, db, tenants)
        if deps is None:
            raise CallbackRefused(
                "no_exotel",
                "set EXOTEL_ACCOUNT_SID, EXOTEL_API_KEY, EXOTEL_API_TOKEN and CALLBACK_STREAM_URL",
            )
        try:
            if when_open:
                done = await schedule_callback(deps, call_sid, reason)
            else:
                done = await place_callback(deps, call_sid, reason)
            if isinstance(done, Scheduled):
                plain(f"{done.to_number} will be called back at {done.due_at.isoformat()}")
                return "scheduled"
            placed = done
            plain(f"calling {placed.to_number} back: Exotel call {placed.exotel_sid}")
            return await settle_callback(deps, placed) if wait else "placed"
        finally:
            await deps.client.aclose()

    try:
        outcome = with_db(settings, go)
    except CallbackRefused as exc:
        typer.echo(f"not called back ({exc.reason}): {exc.message}", err=True)
        raise typer.Exit(1) from None
    except ExotelApiError as exc:
        typer.echo(f"Exotel refused the call: {exc}", err=True)
        raise typer.Exit(1) from None
    plain(f"callback {call_sid}: {outcome}")


@calls_app.command("show")
def calls_show(call_sid: str) -> None:
    """One call as JSON: transcript, usage, stats, events, messages."""
    settings = settings_for()

    from receptionist.store.calls import get_call
    from receptionist.store.notifications import list_notifications

    async def load(db: Database) -> dict[str, Any] | None:
        row = await get_call(db, call_sid)
        if row is not None:
            row["messages"] = await list_notifications(db, call_sid=call_sid)
        return row

    row = with_db(settings, load)
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
    settings = settings_for()

    from receptionist.notify.report import message_line
    from receptionist.store.notifications import list_notifications

    rows = with_db(
        settings,
        lambda db: list_notifications(db, tenant=tenant, call_sid=call, status=status, limit=limit),
    )
    for row in rows:
        plain(message_line(row))


@messages_app.command("resend")
def messages_resend(message_id: int) -> None:
    """Send a `failed` or `unknown` message again (after checking it did not arrive)."""
    settings = settings_for()

    from receptionist.store.notifications import requeue

    if not with_db(settings, lambda db: requeue(db, message_id)):
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
    from receptionist.cli.tenants import configured_tenants
    from receptionist.store.api_keys import create_key
    from receptionist.tenants.repository import UnknownTenant

    if admin == (tenant is not None):
        typer.echo("error: give exactly one of --tenant T or --admin", err=True)
        raise typer.Exit(2)
    settings = settings_for()
    if tenant is not None:
        try:
            configured_tenants(settings).get_any(tenant)
        except UnknownTenant as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from None
    key_id, key = with_db(settings, lambda db: create_key(db, tenant=tenant, name=name))
    scope = f"tenant {tenant}" if tenant else "every tenant (admin)"
    sys.stdout.write(f"key {key_id} for {scope}; store it now, it is not shown again:\n{key}\n")


@keys_app.command("list")
def keys_list() -> None:
    """Every key: id, prefix, scope, name, when last used, revoked or not."""
    from receptionist.store.api_keys import describe, list_keys

    for row in with_db(settings_for(), list_keys):
        plain(describe(row))


@keys_app.command("revoke")
def keys_revoke(key_id: int) -> None:
    """Revoke a key: it stops working at once."""
    from receptionist.store.api_keys import revoke_key

    if not with_db(settings_for(), lambda db: revoke_key(db, key_id)):
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
    settings_for()

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

    run_coro(go())
