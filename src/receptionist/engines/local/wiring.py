"""Builds the local engine's shared parts from the settings: speech models and the brain."""

from __future__ import annotations

from pathlib import Path

from receptionist.config import Settings, SettingsError
from receptionist.engines.local.brain import Brain
from receptionist.engines.local.engine import BrainFactory, LocalSpeech
from receptionist.engines.local.grounded import GroundedBrain
from receptionist.engines.local.models import LocalModelsMissing, check_local_models
from receptionist.tenants.model import Tenant


def local_parts(settings: Settings) -> tuple[LocalSpeech, BrainFactory, str]:
    """(speech models, brain factory, brain name); SettingsError naming what to install or set."""
    try:
        check_local_models(settings.local_stt_model, settings.local_tts_voice)
        from receptionist.engines.local.stt import SpeechToText, SttSettings
        from receptionist.engines.local.tts import TextToSpeech, TtsSettings

        stt = SpeechToText(
            SttSettings(
                model=settings.local_stt_model,
                cpu_threads=settings.local_stt_threads,
                encoder_window_s=settings.local_stt_window_s or None,  # 0: the full window
            )
        )
        tts = TextToSpeech(TtsSettings(voice=settings.local_tts_voice))
    except (LocalModelsMissing, ValueError) as exc:  # ValueError: e.g. LOCAL_STT_WINDOW_S=0.5
        raise SettingsError(f"setting VOICE_ENGINE=local: {exc}") from None
    speech = LocalSpeech(
        stt=stt,
        tts=tts,
        stt_name=f"local/whisper-{Path(settings.local_stt_model or 'tiny.en').name}",
        tts_name=f"local/piper-{Path(tts.model_path).stem}",
    )
    return speech, brain_factory(settings), settings.local_brain


def brain_factory(settings: Settings) -> BrainFactory:
    if settings.local_brain == "grounded":

        def grounded(tenant: Tenant, caller_number: str | None) -> Brain:
            return GroundedBrain(tenant, caller_number)

        return grounded
    from receptionist.engines.local.chat import make_chat_client
    from receptionist.engines.local.llm_brain import llm_brain_factory

    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    try:
        client = make_chat_client(
            base_url=settings.llm_base_url,
            model=settings.llm_model,
            api_key=key,
            gguf_path=settings.llm_gguf_path,
            timeout_s=settings.llm_total_timeout_s,
        )
    except ValueError as exc:
        raise SettingsError(
            f"setting LOCAL_BRAIN=llm: {exc} (set LLM_BASE_URL and LLM_MODEL, or LLM_GGUF_PATH)"
        ) from None
    # one client per process, shared by every call's brain
    return llm_brain_factory(
        client,
        first_token_timeout_s=settings.llm_first_token_timeout_s,
        total_timeout_s=settings.llm_total_timeout_s,
    )
