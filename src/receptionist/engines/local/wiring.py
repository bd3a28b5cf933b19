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
            SttSettings(model=settings.local_stt_model, cpu_threads=settings.local_stt_threads)
        )
        tts = TextToSpeech(TtsSettings(voice=settings.local_tts_voice))
    except LocalModelsMissing as exc:
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
    raise SettingsError("setting LOCAL_BRAIN: `llm` is not wired yet")
