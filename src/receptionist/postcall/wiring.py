"""Builds the post-call pipeline's dependencies and workers from settings."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from receptionist.config import Settings, SettingsError
from receptionist.postcall.analysis import Analysis
from receptionist.postcall.offline_analyzer import analyze_offline
from receptionist.postcall.pipeline import PipelineDeps
from receptionist.postcall.pricing import PricingError, load_pricing
from receptionist.postcall.worker import Worker
from receptionist.store.db import Database
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
    return PipelineDeps(db=db, tenants=tenants, pricing=pricing, analyzer=offline_analyzer)


def make_worker(settings: Settings, deps: PipelineDeps) -> Worker:
    return Worker(
        deps,
        lease_s=settings.pipeline_lease_s,
        max_attempts=settings.pipeline_max_attempts,
        backoff_base_s=settings.pipeline_backoff_s,
    )
