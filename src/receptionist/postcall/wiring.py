"""Builds the post-call pipeline's dependencies and workers from settings."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import httpx

from receptionist.callbacks import callback_deps
from receptionist.config import Settings, SettingsError
from receptionist.gcal.sync import CalendarSync
from receptionist.gemini_rest import make_client
from receptionist.hooks.deliverer import WebhookDeliverer
from receptionist.hooks.events import status_events_of
from receptionist.notify.provider import Provider
from receptionist.notify.wiring import action_deps, choose_provider, make_dispatcher
from receptionist.postcall.analyzers.gemini import GeminiAnalyzer
from receptionist.postcall.analyzers.offline import analyze_offline
from receptionist.postcall.analyzers.schema import Analysis
from receptionist.postcall.pipeline import Analyzer, ExotelDeps, PipelineDeps
from receptionist.postcall.pricing import PricingError, load_pricing
from receptionist.postcall.worker import Worker, new_worker_id
from receptionist.recordings.stores import store_from_settings
from receptionist.recordings.uploader import RecordingUploader
from receptionist.store.db import Database
from receptionist.telephony.exotel_api import api_config
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import Tenants
from receptionist.usage import TokenUsage

log = logging.getLogger("receptionist.pipeline")


async def offline_analyzer(
    tenant: Tenant, transcript: list[dict[str, Any]], now: datetime
) -> tuple[Analysis, list[TokenUsage]]:
    return analyze_offline(tenant, transcript, now=now), []


def choose_analyzer(settings: Settings) -> Analyzer:
    """Gemini when a key is set (unless ANALYZER=offline), else the offline analyzer."""
    key = settings.gemini_key
    if settings.analyzer == "offline" or (settings.analyzer == "auto" and not key):
        log.info("post-call analysis: offline analyzer (no model)")
        return offline_analyzer
    if not key:
        raise SettingsError("setting ANALYZER: `gemini` needs GEMINI_API_KEY")
    client = make_client(key, base_url=settings.gemini_analysis_base_url)
    log.info("post-call analysis: %s", settings.gemini_analysis_model)
    return GeminiAnalyzer(client, settings.gemini_analysis_model).analyze


def exotel_deps(settings: Settings) -> ExotelDeps | None:
    config = api_config(settings)
    if config is None:
        return None
    return ExotelDeps(
        config=config, http=httpx.AsyncClient(), deadline_s=settings.exotel_details_deadline_s
    )


def pipeline_deps(
    settings: Settings, db: Database, tenants: Tenants, provider: Provider | None = None
) -> PipelineDeps:
    """`provider`: where messages will go (decides the rows' provider name); None = no messages."""
    try:
        pricing = load_pricing(settings.pricing_file)
    except PricingError as exc:
        raise SettingsError(f"setting PRICING_FILE: {exc}") from None
    return PipelineDeps(
        db=db,
        tenants=tenants,
        pricing=pricing,
        analyzer=choose_analyzer(settings),
        exotel=exotel_deps(settings),
        actions=action_deps(settings, provider) if provider is not None else None,
        callbacks=callback_deps(settings, db, tenants),
    )


def make_worker(settings: Settings, deps: PipelineDeps, provider: Provider | None = None) -> Worker:
    """A pipeline worker; with a provider it also sends the messages (its dispatcher)."""
    worker_id = new_worker_id()
    dispatcher = (
        make_dispatcher(
            settings, deps.db, provider, worker_id=worker_id, events=status_events_of(deps.tenants)
        )
        if provider
        else None
    )
    if dispatcher is not None:
        deps.on_messages_queued = dispatcher.wake.set
    webhooks = WebhookDeliverer(deps.db, worker_id=worker_id)
    recordings = RecordingUploader(
        deps.db,
        deps.tenants,
        store_from_settings(settings),
        settings.recordings_spool_dir,
        worker_id=worker_id,
        fmt=settings.recording_format,
        max_attempts=settings.recording_max_attempts,
        backoff_base_s=settings.recording_backoff_s,
    )
    return Worker(
        deps,
        worker_id=worker_id,
        lease_s=settings.pipeline_lease_s,
        max_attempts=settings.pipeline_max_attempts,
        backoff_base_s=settings.pipeline_backoff_s,
        dispatcher=dispatcher,
        usd_inr=settings.usd_inr_rate,
        webhooks=webhooks,
        recordings=recordings,
        calendar=CalendarSync(deps.db, deps.tenants),
    )


def worker_from_settings(settings: Settings, db: Database, tenants: Tenants) -> Worker:
    """The worker `serve` and `receptionist worker` run: pipeline and messages."""
    provider = choose_provider(settings)
    return make_worker(settings, pipeline_deps(settings, db, tenants, provider), provider)
