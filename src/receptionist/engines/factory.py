"""Chooses and builds the voice engine for each call from the settings and the tenant.

`VOICE_ENGINE=auto` (the default) means Gemini Live when a Gemini key is set, else the local
engine; a tenant's `engine` in tenant.toml overrides it for that tenant's calls. The choice and
why are logged at start-up. Engines are built lazily: a server whose tenants all use one engine
never loads the other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from receptionist.config import Settings, SettingsError
from receptionist.engines.base import EngineError, EngineRequest, VoiceEngine
from receptionist.engines.gemini_live import GeminiLiveConfig, GeminiLiveEngine, make_client

if TYPE_CHECKING:
    from google import genai

    from receptionist.engines.local.engine import BrainFactory, LocalSpeech
    from receptionist.engines.local.vad import VadSettings

log = logging.getLogger(__name__)


def gemini_config(settings: Settings) -> GeminiLiveConfig:
    key = settings.gemini_key
    if not key:
        raise SettingsError(
            "setting GEMINI_API_KEY: not set (or leave VOICE_ENGINE=auto to use the local"
            " engine, or run `receptionist demo`)"
        )
    return GeminiLiveConfig(
        api_key=key,
        model=settings.gemini_live_model,
        api_version=settings.gemini_api_version,
        base_url=settings.gemini_base_url,
        ca_file=settings.gemini_ca_file,
        connect_timeout_s=settings.gemini_connect_timeout_s,
        default_voice=settings.gemini_voice,
        reconnect_attempts=settings.gemini_reconnect_attempts,
        reconnect_deadline_s=settings.gemini_reconnect_deadline_s,
        resume_buffer_s=settings.gemini_resume_buffer_s,
    )


def default_engine(settings: Settings) -> tuple[str, str]:
    """(engine name, why) for calls whose tenant does not choose."""
    if settings.voice_engine != "auto":
        return settings.voice_engine, "VOICE_ENGINE is set"
    if settings.gemini_key:
        return "gemini-live", "a Gemini key is set"
    return "local", "no Gemini key is set"


def check_engine_settings(settings: Settings) -> str:
    """What calls will be answered with and why, for a start-up line; SettingsError (one line
    naming the setting) when that engine cannot work. Cheap: no model is loaded, no client made
    (the server's processes build the engines themselves)."""
    name, why = default_engine(settings)
    if name == "gemini-live":
        cfg = gemini_config(settings)
        return f"gemini-live, model {cfg.model} at {cfg.base_url or 'Google'} ({why})"
    from receptionist.engines.local.models import LocalModelsMissing, check_local_models

    try:
        check_local_models(settings.local_stt_model, settings.local_tts_voice)
    except LocalModelsMissing as exc:
        raise SettingsError(f"setting VOICE_ENGINE=local: {exc}") from None
    if settings.local_brain == "llm":
        gguf = settings.llm_gguf_path
        if gguf is not None and not gguf.is_file():
            raise SettingsError(f"setting LLM_GGUF_PATH: no file at {gguf}")
        if gguf is None and not (settings.llm_base_url and settings.llm_model):
            raise SettingsError(
                "setting LOCAL_BRAIN=llm: set LLM_BASE_URL and LLM_MODEL, or LLM_GGUF_PATH"
            )
    return f"local, brain {settings.local_brain} ({why})"


class EngineChooser:
    """The bridge's engine factory: one engine per call, of the tenant's or the default kind."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.default, why = default_engine(settings)
        self._gemini: tuple[genai.Client, GeminiLiveConfig] | None = None
        self._local: tuple[LocalSpeech, BrainFactory, str] | None = None
        if self.default == "gemini-live":
            cfg = self._gemini_parts()[1]
            where = cfg.base_url or "Google"
            log.info("voice engine: gemini-live, model %s at %s (%s)", cfg.model, where, why)
        else:
            speech, _, brain = self._local_parts()  # fails now, not at the first call
            log.info(
                "voice engine: local, %s + %s, brain %s (%s)",
                speech.stt_name,
                speech.tts_name,
                brain,
                why,
            )

    def __call__(self, request: EngineRequest) -> VoiceEngine:
        name = request.engine or self.default
        if name == "local":
            from receptionist.engines.local.engine import LocalEngine

            try:
                speech, make_brain, brain = self._local_parts()
            except SettingsError as exc:
                raise EngineError(str(exc)) from None
            return LocalEngine(
                speech,
                make_brain,
                request,
                brain_name=brain,
                vad=_vad_settings(self.settings),
                continue_ms=self.settings.local_continue_ms,
            )
        try:
            client, cfg = self._gemini_parts()
        except SettingsError as exc:
            raise EngineError(f"tenant {request.tenant_id} uses gemini-live: {exc}") from None
        return GeminiLiveEngine(client, cfg, request)

    async def warm_up(self) -> None:
        """Load and run the local models once (start-up), so the first call is not slow."""
        if self._local is not None:
            await self._local[0].warm_up()

    def _gemini_parts(self) -> tuple[genai.Client, GeminiLiveConfig]:
        if self._gemini is None:
            cfg = gemini_config(self.settings)
            self._gemini = (make_client(cfg), cfg)  # one per process: sessions share TLS set-up
        return self._gemini

    def _local_parts(self) -> tuple[LocalSpeech, BrainFactory, str]:
        if self._local is None:
            from receptionist.engines.local.wiring import local_parts

            self._local = local_parts(self.settings)
        return self._local


def _vad_settings(settings: Settings) -> VadSettings:
    from receptionist.engines.local.vad import VadSettings

    return VadSettings(
        end_silence_ms=settings.local_end_silence_ms,
        # below the end of the turn, and at least the post-roll: the paused audio is then the
        # final utterance's when the caller says no more
        pause_ms=settings.local_pause_ms
        if settings.local_pause_ms < settings.local_end_silence_ms
        else 0,
        max_utterance_ms=int(settings.local_max_utterance_s * 1000),
    )


def make_engine_factory(settings: Settings) -> EngineChooser:
    return EngineChooser(settings)
