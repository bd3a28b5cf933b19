"""Which voice engine a call gets, and the clear errors when one cannot be built."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from receptionist.config import Settings, SettingsError, load_settings
from receptionist.engines.base import EngineError, EngineRequest
from receptionist.engines.factory import EngineChooser, check_engine_settings, default_engine
from receptionist.engines.gemini_live import GeminiLiveEngine
from receptionist.engines.local.engine import LocalEngine
from receptionist.engines.local.models import LocalModelsMissing, check_local_models

try:
    check_local_models()
    HAVE_LOCAL = True
except LocalModelsMissing:  # pragma: no cover - CI installs the extra
    HAVE_LOCAL = False
needs_local = pytest.mark.skipif(not HAVE_LOCAL, reason="the `local` extra is not installed")


def settings(**values: Any) -> Settings:
    values.setdefault("gemini_api_key", None)
    return load_settings(**values)


def request(engine: str | None = None) -> EngineRequest:
    return EngineRequest(
        call_sid="CA1",
        tenant_id="bakery",
        system_instruction="",
        language="en-IN",
        engine=engine,
    )


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({}, ("local", "no Gemini key is set")),
        ({"gemini_api_key": "k"}, ("gemini-live", "a Gemini key is set")),
        ({"gemini_api_key": "k", "voice_engine": "local"}, ("local", "VOICE_ENGINE is set")),
        ({"voice_engine": "gemini-live"}, ("gemini-live", "VOICE_ENGINE is set")),
    ],
)
def test_default_engine_and_why(values: dict[str, Any], expected: tuple[str, str]) -> None:
    assert default_engine(settings(**values)) == expected


@needs_local
def test_no_key_means_local_and_a_tenant_asking_for_gemini_gets_a_clear_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level("INFO"):
        chooser = EngineChooser(settings())
    assert "voice engine: local" in caplog.text and "no Gemini key is set" in caplog.text
    assert isinstance(chooser(request()), LocalEngine)
    with pytest.raises(EngineError, match="bakery uses gemini-live: setting GEMINI_API_KEY"):
        chooser(request("gemini-live"))


@needs_local
def test_a_tenant_can_choose_local_while_the_default_is_gemini() -> None:
    chooser = EngineChooser(settings(gemini_api_key="k"))
    assert isinstance(chooser(request()), GeminiLiveEngine)
    assert isinstance(chooser(request("local")), LocalEngine)


def test_gemini_live_without_a_key_stops_start_up() -> None:
    with pytest.raises(SettingsError, match="GEMINI_API_KEY"):
        EngineChooser(settings(voice_engine="gemini-live"))


def test_missing_speech_packages_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_whisper(name: str, *args: Any) -> Any:
        return None if name == "faster_whisper" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", without_whisper)
    with pytest.raises(SettingsError) as exc:
        EngineChooser(settings())
    message = str(exc.value)
    assert message.startswith("setting VOICE_ENGINE=local:")
    assert "faster-whisper" in message and "pip install 'receptionist[local]'" in message


def test_a_missing_model_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=str(tmp_path / "nowhere.onnx")):
        EngineChooser(settings(local_tts_voice=str(tmp_path / "nowhere.onnx")))


@pytest.mark.parametrize(
    ("values", "start"),
    [
        ({}, "local, brain grounded (no Gemini key is set)"),
        ({"gemini_api_key": "k"}, "gemini-live, model "),
        ({"gemini_api_key": "k", "voice_engine": "local"}, "local, brain grounded (VOICE_ENGINE"),
    ],
)
@needs_local
def test_start_up_check_names_the_engine_and_why(values: dict[str, Any], start: str) -> None:
    assert check_engine_settings(settings(**values)).startswith(start)


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"voice_engine": "gemini-live"}, "GEMINI_API_KEY"),
        ({"local_brain": "llm"}, "LOCAL_BRAIN=llm"),
        ({"local_brain": "llm", "llm_gguf_path": "/nonexistent/model.gguf"}, "LLM_GGUF_PATH"),
        ({"local_tts_voice": "/nonexistent/voice.onnx"}, "VOICE_ENGINE=local"),
    ],
)
@needs_local
def test_start_up_check_refuses_what_cannot_work(values: dict[str, Any], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        check_engine_settings(settings(**values))


@pytest.mark.parametrize(
    ("values", "window_s", "pause_ms"),
    [
        ({}, 10.0, 240),  # the defaults: a short Whisper window, speculative transcription on
        ({"local_stt_window_s": 0, "local_pause_ms": 0}, None, 0),  # both off
        ({"local_end_silence_ms": 200}, 10.0, 0),  # a pause as long as the turn's end: none
    ],
)
@needs_local
def test_speech_knobs_reach_the_local_engine(
    values: dict[str, Any], window_s: float | None, pause_ms: int
) -> None:
    chooser = EngineChooser(settings(**values))
    engine = chooser(request())
    assert isinstance(engine, LocalEngine)
    assert engine.speech.stt.settings.encoder_window_s == window_s
    assert engine._vad_settings.pause_ms == pause_ms


@needs_local
def test_a_window_shorter_than_a_second_is_refused() -> None:
    with pytest.raises(SettingsError, match="VOICE_ENGINE=local: encoder_window_s"):
        EngineChooser(settings(local_stt_window_s=0.5))
