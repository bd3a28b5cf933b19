"""Synthetic speech used by the simulated caller and the Gemini Live double."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from receptionist.sim.speech import (
    SPEECH_RMS_THRESHOLD,
    rms_int16,
    silence,
    speech_duration_ms,
    synth_speech,
)

TEXT = "Hello, I would like to book an appointment for tomorrow morning."


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
@pytest.mark.parametrize(
    ("text", "ms"),
    [("", 300), ("Hi", 300), ("Hello", 325), ("x" * 20, 1300), (TEXT, 65 * len(TEXT))],
)
def test_duration_follows_text(text: str, ms: int, rate: int) -> None:
    pcm = synth_speech(text, rate)
    assert speech_duration_ms(text) == ms
    assert len(pcm) % 2 == 0
    assert len(pcm) == 2 * round(ms * rate / 1000)


def _window_rms(pcm: bytes, rate: int, win_ms: int, hop_ms: int) -> np.ndarray:
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    win, hop = rate * win_ms // 1000, rate * hop_ms // 1000
    return np.array(
        [np.sqrt(np.mean(x[i : i + win] ** 2)) for i in range(0, len(x) - win + 1, hop)]
    )


@pytest.mark.parametrize("rate", [8000, 16000, 24000])
def test_voiced_everywhere_for_an_energy_vad(rate: int) -> None:
    pcm = synth_speech(TEXT, rate)
    assert rms_int16(pcm) > 8 * SPEECH_RMS_THRESHOLD
    # any 20 ms window (hop 5 ms) is voiced: word gaps are only 10 ms
    rms20 = _window_rms(pcm, rate, 20, 5)
    assert rms20.min() > 4 * SPEECH_RMS_THRESHOLD
    # the longest run of unvoiced 5 ms windows is far below 150 ms
    rms5 = _window_rms(pcm, rate, 5, 5) < SPEECH_RMS_THRESHOLD
    longest = run = 0
    for quiet in rms5:
        run = run + 1 if quiet else 0
        longest = max(longest, run)
    assert longest * 5 <= 15


def test_pitch_varies_across_the_utterance() -> None:
    rate = 16000
    x = np.frombuffer(synth_speech("abcdefghij", rate), dtype="<i2").astype(np.float64)
    seg = rate * 65 // 1000
    peaks = set()
    for i in range(10):
        s = x[i * seg + seg // 4 : (i + 1) * seg - seg // 4]
        spec = np.abs(np.fft.rfft(s * np.hanning(len(s)), n=8192))
        peaks.add(int(np.argmax(spec)))
    assert len(peaks) >= 4


def test_deterministic_and_cached() -> None:
    a = synth_speech(TEXT, 16000)
    assert synth_speech(TEXT, 16000) is a  # lru_cache
    synth_speech.cache_clear()
    assert synth_speech(TEXT, 16000) == a  # no randomness
    assert synth_speech(TEXT, 16000) != synth_speech(TEXT + "!", 16000)[: len(a)]


def test_survives_telephony_resampling() -> None:
    x = np.frombuffer(synth_speech(TEXT, 16000), dtype="<i2")
    down = soxr.resample(x, 16000, 8000)
    up = soxr.resample(down, 8000, 16000).astype("<i2").tobytes()
    rms20 = _window_rms(up[3200:-3200], 16000, 20, 10)
    assert rms20.min() > 2 * SPEECH_RMS_THRESHOLD


def test_silence_and_rms() -> None:
    s = silence(250, 16000)
    assert len(s) == 2 * 4000
    assert rms_int16(s) == 0.0
    assert silence(20, 8000) == bytes(320)
    assert rms_int16(b"") == 0.0
    assert rms_int16(b"\x01") == 0.0  # trailing odd byte ignored
    const = np.full(100, -1000, dtype="<i2").tobytes()
    assert rms_int16(const) == pytest.approx(1000.0)
    assert rms_int16(const + b"\x7f") == pytest.approx(1000.0)
    assert rms_int16(silence(20, 16000)) < SPEECH_RMS_THRESHOLD


def test_bad_rate() -> None:
    with pytest.raises(ValueError):
        synth_speech("x", 0)
