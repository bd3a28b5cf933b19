"""`receptionist demo`: one complete call with no keys and no external services.

It starts the real bridge on SQLite with the local voice engine (or, without the `local` extra,
the Gemini Live double on loopback), places a simulated Exotel call to a tenant whose caller
really speaks, prints the conversation as it happens (what the caller said, what the engine
heard, what it answered) and then what was stored: the call, its analysis and its messages.

Then it prints the dashboard's address and a key to sign in with, and (run from a terminal)
keeps the same server up until Ctrl-C, so the owner's view of that call can be opened at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from rich.console import Console

from receptionist.bridge.app import create_app
from receptionist.bridge.server import serve_in_process, uvicorn_options
from receptionist.bridge.session import CallSession
from receptionist.bridge.wiring import build_context
from receptionist.config import Settings
from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from receptionist.notify.report import message_line
from receptionist.sim.caller import (
    CallerScript,
    CallOptions,
    CallResult,
    TranscriptEvent,
    place_call,
)
from receptionist.sim.gemini_live import FakeGeminiLive
from receptionist.sim.scenarios import caller_lines, live_script, spoken_lines
from receptionist.sim.voice import local_voice
from receptionist.store.api_keys import create_key
from receptionist.store.calls import get_call
from receptionist.store.db import Database
from receptionist.store.notifications import list_notifications
from receptionist.tenants.repository import TenantError, TenantRepository

DEMO_HOST = "127.0.0.1"  # the demo prints a key: nothing beyond this machine should reach it


async def run_demo(
    settings: Settings,
    tenant_id: str,
    *,
    realtime: bool,
    console: Console,
    engine: str = "auto",
    keep_serving: bool = False,
) -> int:
    """`engine`: local (real speech, needs the `local` extra), live-double (the scripted Gemini
    Live double), or auto (local when installed). `keep_serving`: after the call, serve the
    dashboard and API on the same server until SIGINT or SIGTERM (the caller decides: a
    terminal on standard input and no --exit)."""
    try:
        tenant = TenantRepository(settings.tenants_dir).get(tenant_id)
    except TenantError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 2
    engine = _choose_engine(settings, engine, console)
    settings = settings.model_copy(
        update={"analyzer": "offline", "notify_ai": "off"}  # no model for analysis or wording
    )
    if not realtime:  # --fast: the simulated caller sends its audio as fast as it can
        settings = settings.model_copy(update={"caller_audio_max_speed": 0.0})
    async with contextlib.AsyncExitStack() as stack:
        settings, caller = await _demo_engine(
            stack, settings, engine, tenant_id, realtime=realtime, console=console
        )
        db = Database(settings.database_url)
        stack.push_async_callback(db.dispose)
        await db.upgrade()
        on_turn, on_event = _printers(console, heard=engine == "local")
        ctx = build_context(settings, db=db, on_turn=on_turn)
        console.print(
            f"[bold]Receptionist demo[/bold]: calling [green]{tenant.name}[/green] ({tenant_id})"
            f" through the real bridge, {caller.story}."
        )
        # the bridge, the API and the dashboard on one loopback port: PORT when it is free
        wanted = demo_port(DEMO_HOST, settings.port)
        app = create_app(ctx)
        async with serve_in_process(
            app, host=DEMO_HOST, port=wanted, **uvicorn_options(settings)
        ) as port:
            url = f"ws://{DEMO_HOST}:{port}/exotel/{tenant_id}"
            console.print(f"  bridge at {url}\n")
            result = await place_call(
                CallOptions(url=url, realtime=realtime, on_event=on_event, voice=caller.voice),
                CallerScript(utterances=caller.lines, turn_timeout_s=20),
            )
            return await _report(
                console, db, result, tenant_id, port=port, keep_serving=keep_serving
            )


async def _report(
    console: Console,
    db: Database,
    result: CallResult,
    tenant_id: str,
    *,
    port: int,
    keep_serving: bool,
) -> int:
    """What the call left in the database, and how to sign in to see it; the exit code."""
    row = await _after_pipeline(db, result.call_sid)
    messages = await _messages_settled(db, result.call_sid)
    console.print()
    if not result.ok or row is None:
        console.print(f"[red]call failed:[/red] {result.error or 'no call row stored'}")
        return 1
    _print_stored(console, db, row, result.greeting_ms, messages)
    _, key = await create_key(db, tenant=tenant_id, name="receptionist demo")
    _print_sign_in(console, db, tenant_id, port, key, keep_serving=keep_serving)
    if keep_serving:
        await until_stopped()
        console.print("\nstopping ...", highlight=False)  # after the echoed ^C
    return 0


def _choose_engine(settings: Settings, engine: str, console: Console) -> str:
    """`auto`: local when its models are installed, else the Live double."""
    if engine != "auto":
        return engine
    try:
        check_local_models(settings.local_stt_model, settings.local_tts_voice)
        return "local"
    except LocalModelsMissing as exc:
        console.print(f"[yellow]local engine not installed[/yellow] ({exc}); using the double")
        return "live-double"


@dataclass(frozen=True)
class _DemoCaller:
    voice: Callable[[str, int], Awaitable[bytes]] | None  # its speech (local), None: tones
    lines: list[str]  # what the caller says
    story: str  # how the demo call is made, for the banner


async def _demo_engine(
    stack: contextlib.AsyncExitStack,
    settings: Settings,
    engine: str,
    tenant_id: str,
    *,
    realtime: bool,
    console: Console,
) -> tuple[Settings, _DemoCaller]:
    """The settings for the chosen voice engine (starting the Live double on `stack`), and
    the simulated caller that suits it."""
    if engine == "local":
        console.print("[dim]loading the speech models ...[/dim]")
        voice = await local_voice(settings.local_tts_voice)
        story = (
            "with the local voice engine: the caller speaks (Piper), the engine hears "
            "(Whisper tiny.en), answers from the tenant's files and speaks, all on this CPU"
        )
        settings = settings.model_copy(update={"voice_engine": "local"})
        return settings, _DemoCaller(voice, spoken_lines(tenant_id), story)
    fake = await stack.enter_async_context(
        FakeGeminiLive(api_key="demo-key", script=live_script(tenant_id), realtime=realtime)
    )
    settings = settings.model_copy(
        update={
            "voice_engine": "gemini-live",
            "gemini_api_key": SecretStr("demo-key"),
            "gemini_base_url": fake.base_url,
            "gemini_ca_file": Path(fake.ca_file),
        }
    )
    story = "with the local Gemini Live double (scripted replies, tone-speech caller)"
    return settings, _DemoCaller(None, caller_lines(tenant_id), story)


def _printers(
    console: Console, *, heard: bool
) -> tuple[Callable[[CallSession, str, dict[str, Any]], None], Callable[[TranscriptEvent], None]]:
    """What the console shows as the call goes: each agent turn (with what the engine heard of
    the caller before it, when `heard`) and each line the simulated caller says."""

    def on_turn(session: CallSession, caller: str, turn: dict[str, Any]) -> None:
        if caller and heard:
            console.print(f"  [dim]heard[/dim]  {caller}", highlight=False)
        mark = " [interrupted]" if turn.get("interrupted") else ""
        console.print(f"  [bold]agent[/bold]  {turn['text']}{mark}", highlight=False)

    def on_event(ev: TranscriptEvent) -> None:
        if ev.kind == "caller_said":
            console.print(f"  [cyan]caller[/cyan] {ev.text}", highlight=False)

    return on_turn, on_event


def demo_port(host: str, preferred: int) -> int:
    """`preferred` when it can be bound now, else 0 (any free port; the server says which).
    The check binds as uvicorn does (SO_REUSEADDR), so a port left in TIME_WAIT by the last
    demo counts as free. Another program could take the port between this check and the
    server's bind; the demo then stops with uvicorn's "address already in use"."""
    if preferred == 0:
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, preferred))
        except OSError:
            return 0
    return preferred


async def until_stopped() -> None:
    """Return at the first SIGINT (Ctrl-C) or SIGTERM. Taken here, on the loop, the signal
    never reaches uvicorn's own handlers (they would stop the server and then raise the signal
    again, ending in a KeyboardInterrupt traceback); the caller leaves the server's block and
    the server shuts down as at the end of any demo."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    signals = (signal.SIGINT, signal.SIGTERM)
    for sig in signals:
        loop.add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)


def _print_sign_in(
    console: Console, db: Database, tenant_id: str, port: int, key: str, *, keep_serving: bool
) -> None:
    base = f"http://{DEMO_HOST}:{port}"
    console.print(
        f"\n[bold]Dashboard[/bold] {base}/app  (API reference: {base}/docs)\n"
        f"Sign in with this key to tenant {tenant_id}: a new key for this demo's database "
        f"({db.safe_url}), shown only now:",
        highlight=False,
        soft_wrap=True,
    )
    console.print(key, markup=False, highlight=False, soft_wrap=True)  # alone, to copy
    if keep_serving:
        console.print(
            f"Another call, to watch it arrive: receptionist call ws://{DEMO_HOST}:{port}"
            f"/exotel/{tenant_id} --say 'Are you open on Sunday?'\nServing until Ctrl-C.",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    else:
        console.print(
            "Not kept serving (--exit, or standard input is not a terminal); "
            "`receptionist serve` on the same DATABASE_URL serves this dashboard and key.",
            highlight=False,
            soft_wrap=True,
        )


def _print_stored(
    console: Console,
    db: Database,
    row: dict[str, Any],
    greeting_ms: float | None,
    messages: list[dict[str, Any]],
) -> None:
    first_audio = "?" if greeting_ms is None else f"{greeting_ms:.0f}"
    usage = ", ".join(
        f"{u['model_name']}: {u['input_tokens']} in / {u['output_tokens']} out tokens"
        + (f", ${u['total_cost']:.4f}" if u.get("total_cost") is not None else "")
        for u in row.get("usage") or []
    )
    console.print(
        f"[bold]Stored[/bold] call {row['call_sid']} ({row['status']}, {row['end_reason']}) in "
        f"{db.safe_url}\n"
        f"  {len(row['transcript'] or [])} transcript turns, first audio after "
        f"{first_audio} ms, {usage or 'no usage'}\n"
        f"  see it with: receptionist calls show {row['call_sid']}",
        highlight=False,
    )
    details = {k: v for k, v in (row.get("critical_call_details") or {}).items() if k[0] != "_"}
    analyzer = (row.get("critical_call_details") or {}).get("_analyzer", "?")
    console.print(
        f"[bold]Analysed[/bold] ({analyzer} analyzer; pipeline stage {row['stage']}): "
        f"{row.get('call_type')}, {row.get('summary') or ''}\n"
        + "\n".join(f"  {k}: {v}" for k, v in details.items()),
        highlight=False,
    )
    console.print(
        f"[bold]WhatsApp messages[/bold] ({len(messages)}; provider "
        f"{messages[0]['provider'] if messages else '-'}: set MSG91_AUTH_KEY to really send)",
        highlight=False,
    )
    for message in messages:
        console.print("  " + message_line(message).replace("\n", "\n  "), highlight=False)


async def _messages_settled(db: Database, call_sid: str) -> list[dict[str, Any]]:
    """The call's messages once none is waiting to be sent (or after 5 s)."""
    rows: list[dict[str, Any]] = []
    for _ in range(100):
        rows = await list_notifications(db, call_sid=call_sid)
        if all(r["status"] not in ("queued", "sending") for r in rows):
            break
        await asyncio.sleep(0.05)
    return sorted(rows, key=lambda r: r["id"])


async def _after_pipeline(db: Database, call_sid: str) -> dict[str, Any] | None:
    """The call row once the in-process worker has finished with it (or after 15 s)."""
    row = None
    for _ in range(300):
        row = await get_call(db, call_sid)
        if row is not None and row["stage"] in ("done", "failed"):
            break
        await asyncio.sleep(0.05)
    return row
