"""Chooses and builds the voice engine for each call from the settings."""

from __future__ import annotations

import logging

from receptionist.config import Settings, SettingsError
from receptionist.engines.base import EngineFactory, EngineRequest, VoiceEngine
from receptionist.engines.gemini_live import GeminiLiveConfig, GeminiLiveEngine, make_client

log = logging.getLogger(__name__)


def gemini_config(settings: Settings) -> GeminiLiveConfig:
    key = settings.gemini_key
    if not key:
        raise SettingsError(
            "setting GEMINI_API_KEY: not set (or run `receptionist demo`, which uses the local"
            " Gemini Live double)"
        )
    return GeminiLiveConfig(
        api_key=key,
        model=settings.gemini_live_model,
        api_version=settings.gemini_api_version,
        base_url=settings.gemini_base_url,
        ca_file=settings.gemini_ca_file,
        connect_timeout_s=settings.gemini_connect_timeout_s,
        default_voice=settings.gemini_voice,
    )


def make_engine_factory(settings: Settings) -> EngineFactory:
    cfg = gemini_config(settings)
    client = make_client(cfg)  # one per process: sessions share its TLS set-up
    where = cfg.base_url or "Google"
    log.info("voice engine: gemini-live (model %s at %s)", cfg.model, where)

    def factory(request: EngineRequest) -> VoiceEngine:
        return GeminiLiveEngine(client, cfg, request)

    return factory
