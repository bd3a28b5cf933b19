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
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

from receptionist.bridge import memtrace
from receptionist.bridge.budget import BudgetGuard
from receptionist.bridge.loop_lag import LoopLagMonitor
from receptionist.bridge.recorder import CallRecorder
from receptionist.bridge.session import CallSession
from receptionist.config import Settings
from receptionist.engines.base import EngineFactory
from receptionist.notify.webhook import msg91_webhook_route
from receptionist.observe import metrics as prom
from receptionist.postcall.worker import Worker
from receptionist.store.db import Database
from receptionist.store.live import LiveFeed
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantRepository
from receptionist.web.api import create_api
from receptionist.web.dashboard import create_dashboard
from receptionist.web.queries import WebDeps

log = logging.getLogger("receptionist.bridge")

TurnCallback = Callable[[CallSession, str, dict[str, Any]], None]


@dataclass
class BridgeContext:
    settings: Settings
    tenants: TenantRepository
    db: Database
    engine_factory: EngineFactory
    store: CallRecorder
    # how late this process's event loop runs (started with the app; admission control reads it)
    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    registry: dict[str, CallSession] = field(default_factory=dict)
    on_turn: TurnCallback | None = None
    worker: Worker | None = None  # the in-process post-call worker, woken when a call is saved
    budgets: BudgetGuard | None = None
    # calls in progress for the owner's live view; in-process unless wiring picks the database's
    live: LiveFeed = field(default_factory=LiveFeed)
    live_drops_counted: int = 0  # of live.dropped, already in the metrics

    def _credentials_for(self, tenant: Tenant | None) -> tuple[str, str] | None:
        if tenant is not None and tenant.exotel_auth_user_env and tenant.exotel_auth_token_env:
            user = os.environ.get(tenant.exotel_auth_user_env)
            token = os.environ.get(tenant.exotel_auth_token_env)
            if user and token:
                return user, token
            # Named but unset: fail closed rather than silently accepting anyone.
            return ("", "\x00unset")
        return self.settings.exotel_auth

    def check_tenant_auth(self, tenant: Tenant | None, ws: WebSocket) -> bool:
        expected = self._credentials_for(tenant)
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
    connected_at = time.perf_counter()  # before the caller can send: its audio budget's start
    await ws.accept()
    session = CallSession(ctx, ws, hint, connected_at=connected_at)
    try:
        await session.run()
    except Exception:  # never let one call take the worker down
        log.exception("call %s: unhandled error", session.call_sid or "-")


async def healthz(request: Request) -> JSONResponse:
    ctx: BridgeContext = request.app.state.ctx
    return JSONResponse({"status": "ok", "active_calls": len(ctx.registry)})


async def readyz(request: Request) -> JSONResponse:
    ctx: BridgeContext = request.app.state.ctx
    try:
        await asyncio.wait_for(ctx.db.ping(), 3.0)
    except Exception as exc:
        return JSONResponse({"status": "unavailable", "database": str(exc)[:200]}, status_code=503)
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


async def _every(interval_s: float, stop: asyncio.Event, fn: Callable[[], None]) -> None:
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)
        fn()


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value else None


def create_app(ctx: BridgeContext) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await ctx.store.replay_spool()
        await ctx.live.start()  # connects in the background: a database outage delays nothing
        warm_up = getattr(ctx.engine_factory, "warm_up", None)
        if warm_up is not None:  # the local engine's models load now, not in the first call
            await warm_up()
        stop = asyncio.Event()
        worker_task = asyncio.create_task(ctx.worker.run(stop)) if ctx.worker else None
        replay = asyncio.create_task(
            ctx.store.replay_loop(stop, ctx.settings.spool_replay_interval_s)
        )
        memory = memtrace.start_from_env(lambda: len(ctx.registry), stop)  # off unless asked
        ctx.loop_lag.start()
        # every process's drops reach the counters, not only those of the process scraped
        live_drops = asyncio.create_task(_every(5.0, stop, lambda: _count_live_drops(ctx)))
        yield
        # uvicorn closes live calls with 1012 before this point; each session saved its call.
        stop.set()
        await ctx.loop_lag.aclose()
        await live_drops
        if memory is not None:
            await memory
        with contextlib.suppress(TimeoutError):  # a replay stuck on a hung database is dropped
            await asyncio.wait_for(replay, 5.0)
        if worker_task is not None:
            await worker_task  # a step in flight finishes; an unfinished one is retried later
        if ctx.worker is not None:
            await ctx.worker.aclose()
        if ctx.budgets is not None:
            await ctx.budgets.aclose()
        await ctx.live.aclose()  # after the calls: their call_ended events go out first

    deps = WebDeps(db=ctx.db, tenants=ctx.tenants, usd_inr=ctx.settings.usd_inr_rate)
    app = Starlette(
        routes=[
            WebSocketRoute("/exotel/{tenant_id}", exotel_stream),
            WebSocketRoute("/exotel", exotel_stream),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            msg91_webhook_route(ctx.db, _secret(ctx.settings.msg91_webhook_secret)),
            # the owner's dashboard, then (last) the REST API: both answer through web/queries.py
            Mount("/app", app=create_dashboard(deps, ctx.live)),
            Mount("/", app=create_api(deps)),
        ],
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    return app
