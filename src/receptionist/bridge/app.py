"""The ASGI app: Exotel WebSocket route, health, readiness and metrics.

`create_app` wires the pieces (settings, tenant repository, database, engine factory); everything
per call lives in `CallSession`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from receptionist import heap, loops
from receptionist.bridge import drain as drains
from receptionist.bridge import memtrace
from receptionist.bridge.admission import Admission
from receptionist.bridge.budget import BudgetGuard
from receptionist.bridge.checkpointer import Checkpointer
from receptionist.bridge.connect_url import exotel_connect
from receptionist.bridge.drain import Drain
from receptionist.bridge.loop_lag import LoopLagMonitor
from receptionist.bridge.passthru import exotel_passthru
from receptionist.bridge.recorder import CallRecorder
from receptionist.bridge.session import CallSession
from receptionist.bridge.start_gate import StartGate
from receptionist.bridge.status_callback import exotel_status
from receptionist.callbacks import aclose_callbacks, callback_deps
from receptionist.config import Settings
from receptionist.engines.base import EngineFactory
from receptionist.exotel_accounts import stream_credentials
from receptionist.hooks.events import status_events_of
from receptionist.notify.webhook import msg91_webhook_route
from receptionist.observe import metrics as prom
from receptionist.onboarding import settings_drafter
from receptionist.postcall.worker import Worker
from receptionist.recordings.stores import RecordingStore
from receptionist.store.db import Database
from receptionist.store.live import LiveFeed
from receptionist.stored_tenants import StoredTenants
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import Tenants
from receptionist.web.api import create_api
from receptionist.web.dashboard import Options, create_dashboard
from receptionist.web.deps import WebDeps

log = logging.getLogger("receptionist.bridge")

TurnCallback = Callable[[CallSession, str, dict[str, Any]], None]


@dataclass
class BridgeContext:
    settings: Settings
    tenants: Tenants
    db: Database
    engine_factory: EngineFactory
    recorder: CallRecorder
    registry: dict[str, CallSession] = field(default_factory=dict)
    on_turn: TurnCallback | None = None
    worker: Worker | None = None  # the in-process post-call worker, woken when a call is saved
    budgets: BudgetGuard | None = None
    recording_store: RecordingStore | None = None  # the dashboard and API play recordings from it
    # calls in progress for the owner's live view; in-process unless wiring picks the database's
    live: LiveFeed = field(default_factory=LiveFeed)
    # stopping gracefully (drain.py) and refusing calls a saturated process cannot carry
    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    drain: Drain = field(init=False)
    admission: Admission = field(init=False)
    live_drops_counted: int = 0  # of live.dropped, already in the metrics
    # calls starting together greet before any of them writes its row or opens its session
    start_gate: StartGate = field(default_factory=StartGate)

    def __post_init__(self) -> None:
        s = self.settings
        self.drain = Drain(
            timeout_s=s.drain_timeout_s,
            goodbye_s=s.drain_goodbye_s,
            calls=lambda: list(self.registry.values()),
            busy=lambda: self.admission.active,
        )
        self.admission = Admission(
            max_calls=s.max_calls_per_process,
            max_lag_s=s.admission_max_loop_lag_ms / 1000.0,
            lag_s=lambda: self.loop_lag.lag_s,
            draining=lambda: self.drain.draining,
        )

    def check_tenant_auth(self, tenant: Tenant | None, ws: WebSocket) -> bool:
        # a tenant naming unset variables gets UNSET, which matches nothing (fail closed)
        expected = stream_credentials(self.settings, tenant)
        if expected is None:
            return True
        return _basic_auth_matches(ws.headers.get("authorization"), expected)


def _basic_auth_matches(header: str | None, expected: tuple[str, str]) -> bool:
    if not header or header[:6].lower() != "basic ":
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    user, _, token = decoded.partition(":")
    # Compare both parts in constant time, always both, so timing reveals nothing.
    ok_user = hmac.compare_digest(user.encode(), expected[0].encode())
    ok_token = hmac.compare_digest(token.encode(), expected[1].encode())
    return ok_user and ok_token


def _tenant_hint(ws: WebSocket) -> str | None:
    return ws.path_params.get("tenant_id") or ws.query_params.get("tenant") or None


async def exotel_stream(ws: WebSocket) -> None:
    ctx: BridgeContext = ws.app.state.ctx
    hint = _tenant_hint(ws)
    tenant: Tenant | None = None
    if hint:
        with contextlib.suppress(Exception):  # unknown tenants are rejected after `start`
            tenant = ctx.tenants.get(hint)
    if not ctx.check_tenant_auth(tenant, ws):
        # Before accept: the handshake fails with HTTP 403 and no audio ever flows.
        prom.CALLS_REJECTED.labels("unauthorized").inc()
        log.warning("rejected Exotel connection for %r: bad or missing Basic auth", hint)
        await ws.close(code=1008)
        return
    refused = ctx.admission.admit()
    if refused is not None:
        prom.CALLS_REJECTED.labels(refused).inc()
        await _refuse(ws, refused)
        return
    try:
        connected_at = time.perf_counter()  # before the caller can send: its audio budget's start
        await ws.accept()
        session = CallSession(ctx, ws, hint, connected_at=connected_at)
        try:
            await session.run()
        except Exception:  # never let one call take the worker down
            log.exception("call %s: unhandled error", session.call_sid or "-")
    finally:
        ctx.admission.release()  # after the call's row is written: the drain waits for this


async def _refuse(ws: WebSocket, reason: str) -> None:
    """Fail the handshake with HTTP 503: the Voicebot applet fails and Exotel's flow goes on
    (a retry, then the next applet), where an accepted and then closed stream would be a call
    answered with silence."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        response = PlainTextResponse(
            f"not taking calls: {reason}\n", status_code=503, headers={"Retry-After": "5"}
        )
        await ws.send_denial_response(response)
    else:  # a server without the denial extension: uvicorn's 403 (still no call)
        await ws.close(code=1013)


async def healthz(request: Request) -> JSONResponse:
    ctx: BridgeContext = request.app.state.ctx
    return JSONResponse({"status": "ok", "active_calls": len(ctx.registry)})


async def readyz(request: Request) -> JSONResponse:
    ctx: BridgeContext = request.app.state.ctx
    if ctx.drain.draining:  # stopping: send no new traffic here (liveness stays 200)
        return JSONResponse(
            {"status": "draining", "active_calls": len(ctx.registry)}, status_code=503
        )
    state = request.app.state
    try:
        await asyncio.wait_for(ctx.db.ping(), 3.0)
    except Exception as exc:
        # the cause goes to the log, once per outage: the answer is public and must not name
        # the database's address, nor a load balancer's polling flood the log
        if getattr(state, "db_ready", True):
            state.db_ready = False
            log.warning("not ready: database unreachable (%s)", str(exc)[:300])
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    if not getattr(state, "db_ready", True):
        state.db_ready = True
        log.info("ready again: the database answers")
    return JSONResponse({"status": "ready", "active_calls": len(ctx.registry)})


async def metrics(request: Request) -> Response:
    """Prometheus text: this process's metrics, or every process's (`serve --workers N`)."""
    ctx: BridgeContext = request.app.state.ctx
    token = _secret(ctx.settings.metrics_token)
    if token is not None and not prom.bearer_matches(request.headers.get("authorization"), token):
        return Response("unauthorized\n", status_code=401, media_type="text/plain")
    _count_live_drops(ctx)
    body, content_type = prom.exposition()
    return Response(body, media_type=content_type)


def _count_live_drops(ctx: BridgeContext) -> None:
    """The live feed counts its own drops (store/live.py); add the new ones to the counter."""
    dropped = ctx.live.dropped
    if dropped > ctx.live_drops_counted:
        prom.LIVE_EVENTS_DROPPED.inc(dropped - ctx.live_drops_counted)
        ctx.live_drops_counted = dropped


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def _checkpointer(ctx: BridgeContext) -> Checkpointer | None:
    """This process's checkpointer and reaper (off when CHECKPOINT_INTERVAL_S is 0)."""
    s = ctx.settings
    if s.checkpoint_interval_s <= 0:
        return None
    worker = ctx.worker

    def reaped(_sids: list[str]) -> None:
        if worker is not None:  # the lost calls are due in the pipeline now
            worker.wake.set()

    checkpointer = Checkpointer(
        ctx.db,
        ctx.registry,
        s.spool_dir,
        interval_s=s.checkpoint_interval_s,
        lost_after_s=s.server_lost_after_s,
        reap_interval_s=s.reaper_interval_s,
        max_call_s=s.max_call_duration_s,
        on_reaped=reaped,
        before_reap=ctx.recorder.replay_spool,
    )
    ctx.recorder.server_id = checkpointer.me.id
    return checkpointer


@dataclass
class _Background:
    """The server's work besides the calls: started before the first call, stopped after."""

    stop: asyncio.Event
    checkpointer: Checkpointer | None
    checkpoints: asyncio.Task[None] | None
    worker: asyncio.Task[None] | None
    replay: asyncio.Task[None]
    memory: asyncio.Task[None] | None
    live_drops: asyncio.Task[None]
    trims: asyncio.Task[None]
    refresher: asyncio.Task[None] | None  # the database's tenants (TENANTS_SOURCE=database)


async def _start_background(ctx: BridgeContext) -> _Background:
    async def count_live_drops() -> None:
        _count_live_drops(ctx)

    await ctx.recorder.replay_spool()
    stored = ctx.tenants if isinstance(ctx.tenants, StoredTenants) else None
    if stored is not None:  # before the first call: the database's tenants are in memory
        await stored.start_or_defer(ctx.settings.tenants_dir)
    # after the spool's replay: a call's real end, if it was spooled, wins over a reaper
    checkpointer = _checkpointer(ctx)
    await ctx.live.start()  # connects in the background: a database outage delays nothing
    warm_up = getattr(ctx.engine_factory, "warm_up", None)
    if warm_up is not None:  # the local engine's models load now, not in the first call
        await warm_up()
    else:
        # Before the first call's TLS buffer (see its docstring). Not with the local engine,
        # whose inference allocates large blocks over and over: glibc's rising threshold
        # keeps those off mmap, page faults and zeroing.
        heap.pin_mmap_threshold()
    frozen = heap.freeze_startup()  # after everything start-up loads (see its docstring)
    log.info("start-up objects frozen out of the garbage collector: %d", frozen)
    stop = asyncio.Event()
    worker_task = asyncio.create_task(ctx.worker.run(stop)) if ctx.worker else None
    replay = asyncio.create_task(
        ctx.recorder.replay_loop(stop, ctx.settings.spool_replay_interval_s)
    )
    memory = memtrace.start_from_env(lambda: len(ctx.registry), stop)  # off unless asked
    ctx.loop_lag.start()
    drains.register(ctx.drain)  # the server's signal handler drains it (bridge/server.py)
    checkpoints = asyncio.create_task(checkpointer.run(stop)) if checkpointer else None
    # every process's drops reach the counters, not only those of the process scraped
    live_drops = asyncio.create_task(loops.every(5.0, stop, count_live_drops))
    trims = asyncio.create_task(heap.trim_every(ctx.settings.heap_trim_interval_s, stop))
    refresher = asyncio.create_task(stored.run(stop)) if stored is not None else None
    return _Background(
        stop, checkpointer, checkpoints, worker_task, replay, memory, live_drops, trims, refresher
    )


async def _stop_background(ctx: BridgeContext, bg: _Background) -> None:
    # Served by `receptionist serve`, the calls were drained before this point; otherwise
    # (tests, the demo) uvicorn closed live calls with 1012. Each session saved its call.
    drains.unregister(ctx.drain)
    await ctx.loop_lag.stop()
    bg.stop.set()
    await bg.live_drops
    _count_live_drops(ctx)  # the last ones
    await bg.trims
    if bg.refresher is not None:
        await bg.refresher
    if bg.memory is not None:
        await bg.memory
    if bg.checkpoints is not None and bg.checkpointer is not None:
        with contextlib.suppress(TimeoutError):  # a round stuck on a hung database
            await asyncio.wait_for(bg.checkpoints, 10.0)
        await bg.checkpointer.close()
    with contextlib.suppress(TimeoutError):  # a replay stuck on a hung database is dropped
        await asyncio.wait_for(bg.replay, 5.0)
    if bg.worker is not None:
        await bg.worker  # a step in flight finishes; an unfinished one is retried later
    if ctx.worker is not None:
        await ctx.worker.aclose()
    if ctx.budgets is not None:
        await ctx.budgets.aclose()
    await ctx.live.aclose()  # after the calls: their call_ended events go out first


def create_app(ctx: BridgeContext) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        background = await _start_background(ctx)
        yield
        await _stop_background(ctx, background)
        await aclose_callbacks(deps.callbacks)  # the API's and dashboard's callbacks

    deps = WebDeps(
        db=ctx.db,
        tenants=ctx.tenants,
        usd_inr=ctx.settings.usd_inr_rate,
        callbacks=callback_deps(ctx.settings, ctx.db, ctx.tenants),
        recordings=ctx.recording_store,
    )
    app = Starlette(
        routes=[
            Route("/exotel/connect", exotel_connect),  # before the stream's /exotel/{tenant_id}
            Route("/exotel/status", exotel_status, methods=["POST"]),
            Route("/exotel/passthru", exotel_passthru),
            WebSocketRoute("/exotel/{tenant_id}", exotel_stream),
            WebSocketRoute("/exotel", exotel_stream),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            msg91_webhook_route(
                ctx.db,
                _secret(ctx.settings.msg91_webhook_secret),
                events=status_events_of(ctx.tenants),
            ),
            # the owner's dashboard, then (last) the REST API: both answer through web/queries.py
            Mount(
                "/app",
                app=create_dashboard(
                    deps, ctx.live, Options(drafter=settings_drafter(ctx.settings))
                ),
            ),
            Mount("/", app=create_api(deps)),
        ],
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.web = deps
    return app
