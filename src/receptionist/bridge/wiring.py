"""Builds the bridge's context and ASGI app from settings (also the uvicorn factory for workers)."""

from __future__ import annotations

from starlette.applications import Starlette

from receptionist import tracing
from receptionist.bridge.app import BridgeContext, TurnCallback, create_app
from receptionist.bridge.budget import BudgetGuard
from receptionist.bridge.recorder import CallRecorder
from receptionist.config import Settings, load_settings
from receptionist.engines.base import EngineFactory
from receptionist.engines.factory import make_engine_factory
from receptionist.logs import configure_logging
from receptionist.postcall.wiring import worker_from_settings
from receptionist.recordings.stores import store_from_settings
from receptionist.store.db import Database
from receptionist.store.live import live_feed_for
from receptionist.stored_tenants import tenants_for


def build_context(
    settings: Settings,
    *,
    db: Database | None = None,
    engine_factory: EngineFactory | None = None,
    on_turn: TurnCallback | None = None,
) -> BridgeContext:
    db = db or Database(settings.database_url)
    tenants = tenants_for(settings.tenants_source, settings.tenants_dir, db)
    worker = worker_from_settings(settings, db, tenants) if settings.run_worker else None
    return BridgeContext(
        settings=settings,
        tenants=tenants,
        db=db,
        engine_factory=engine_factory or make_engine_factory(settings),
        recorder=CallRecorder(db, settings.spool_dir),
        on_turn=on_turn,
        worker=worker,
        budgets=BudgetGuard(db),
        live=live_feed_for(db),
        recording_store=store_from_settings(settings),
    )


def app_from_env() -> Starlette:
    """uvicorn factory (`--factory`) used when serving with several worker processes."""
    settings = load_settings()
    configure_logging(settings)
    tracing.setup_tracing()
    # several processes on the port share their metrics through PROMETHEUS_MULTIPROC_DIR
    return create_app(build_context(settings))
