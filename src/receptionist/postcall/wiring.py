"""Builds the post-call pipeline's dependencies and workers from settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from receptionist.config import Settings, SettingsError
from receptionist.postcall.analysis import Analysis
from receptionist.postcall.offline_analyzer import analyze_offline
from receptionist.postcall.pipeline import ExotelDeps, PipelineDeps
from receptionist.postcall.pricing import PricingError, load_pricing
from receptionist.postcall.worker import Worker
from receptionist.store.db import Database
from receptionist.telephony.exotel_api import ExotelApiConfig
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantRepository


async def offline_analyzer(
    tenant: Tenant, transcript: list[dict[str, Any]], now: datetime
) -> Analysis:
    return analyze_offline(tenant, transcript, now=now)


def pipeline_deps(settings: Settings, db: Database, tenants: TenantRepository) -> PipelineDeps:
    try:
        pricing = load_pricing(settings.pricing_file)
    except PricingError as exc:
        raise SettingsError(f"setting PRICING_FILE: {exc}") from None
    # The Gemini analyzer comes with the generateContent client; until then every call is
    # analysed by the offline analyzer, and the row says so.
    return PipelineDeps(
        db=db,
        tenants=tenants,
        pricing=pricing,
        analyzer=offline_analyzer,
        exotel=exotel_deps(settings),
    )


def exotel_deps(settings: Settings) -> ExotelDeps | None:
    if not (settings.exotel_account_sid and settings.exotel_api_key and settings.exotel_api_token):
        return None
    config = ExotelApiConfig(
        account_sid=settings.exotel_account_sid,
        api_key=settings.exotel_api_key,
        api_token=settings.exotel_api_token.get_secret_value(),
        subdomain=settings.exotel_subdomain,
        base_url=settings.exotel_api_base_url,
    )
    return ExotelDeps(
        config=config, http=httpx.AsyncClient(), deadline_s=settings.exotel_details_deadline_s
    )


def make_worker(settings: Settings, deps: PipelineDeps) -> Worker:
    return Worker(
        deps,
        lease_s=settings.pipeline_lease_s,
        max_attempts=settings.pipeline_max_attempts,
        backoff_base_s=settings.pipeline_backoff_s,
    )
