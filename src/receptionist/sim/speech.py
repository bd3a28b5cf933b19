"""Deterministic synthetic "speech" for simulations and test doubles.

Nothing here is real speech: an utterance is a voiced harmonic tone whose pitch changes with
every character of the text, so that it

* lasts ``~65 ms`` per character (at least 300 ms), making durations predictable from the text;
* is clearly voiced for an energy VAD (RMS far above :data:`SPEECH_RMS_THRESHOLD` for any
  20 ms window), with at most 10 ms dips at word boundaries, never a gap of 150 ms or more;
* survives telephony processing (all partials stay below 1 kHz, so 8 kHz mu-law and
  resampling keep it voiced);
* is bit-for-bit deterministic (no randomness), and cached per ``(text, sample_rate)``.

Shared by the simulated caller and the Gemini Live double: keep the API stable.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from receptionist.audio import rms as rms_int16
from receptionist.audio import silence

__all__ = [
    "CHAR_MS",
    "MIN_UTTERANCE_MS",
    "SPEECH_RMS_THRESHOLD",
    "WORD_GAP_MS",
    "rms_int16",
    "silence",
    "speech_duration_ms",
    "synth_speech",
]

#: RMS (int16 scale) above which a chunk counts as voiced. Synthetic speech has an RMS of about
#: 6000-7000; digital silence is 0. 500 is about -36 dBFS, comfortably above comfort noise.
SPEECH_RMS_THRESHOLD: float = 500.0

#: Duration of one character of text.
CHAR_MS: int = 65
#: Minimum duration of one utterance (also for empty text).
MIN_UTTERANCE_MS: int = 300
#: Silent dip at the start of each space character (word boundary).
WORD_GAP_MS: int = 10

_PEAK = 0.30 * 32767.0  # peak amplitude of the summed partials before the envelope
_PARTIALS = ((1.0, 1.0), (2.0, 0.5), (3.0, 0.25))  # (harmonic, relative amplitude)
_FADE_MS = 5.0


def speech_duration_ms(text: str) -> int:
    """Duration in ms of :func:`synth_speech` for ``text`` (before rounding to samples)."""
    return max(MIN_UTTERANCE_MS, CHAR_MS * len(text))


def _pitch_hz(ch: str) -> float:
    # 110..290 Hz, changing from character to character.
    return 110.0 + float((ord(ch) * 37) % 19) * 10.0


@lru_cache(maxsize=1024)
def synth_speech(text: str, sample_rate: int) -> bytes:
    """Synthesize deterministic voiced "speech" for ``text``.

    Returns 16-bit little-endian mono PCM at ``sample_rate`` lasting
    :func:`speech_duration_ms` (``65 ms`` per character, minimum 300 ms), rounded to samples.
    Results are cached per ``(text, sample_rate)``; the returned ``bytes`` are immutable.
    """
    if sample_rate <= 0:
        raise ValueError("sample_rate must be positive")
    total = round(speech_duration_ms(text) * sample_rate / 1000.0)
    chars = text if text else " "
    n_chars = len(chars)
    # Sample index at which each character starts (spreads the minimum duration evenly).
    bounds = [(i * total) // n_chars for i in range(n_chars + 1)]

    f0 = np.empty(total, dtype=np.float64)
    gate = np.ones(total, dtype=np.float64)
    gap = round(WORD_GAP_MS * sample_rate / 1000.0)
    for i, ch in enumerate(chars):
        a, b = bounds[i], bounds[i + 1]
        f0[a:b] = _pitch_hz(ch)
        if ch.isspace() and 0 < i < n_chars - 1:
            gate[a : min(b, a + gap)] = 0.0

    # Continuous phase: no clicks at pitch changes.
    phase = 2.0 * np.pi * np.cumsum(f0) / sample_rate
    wave = np.zeros(total, dtype=np.float64)
    for harmonic, amp in _PARTIALS:
        wave += amp * np.sin(harmonic * phase)
    wave *= _PEAK / sum(amp for _, amp in _PARTIALS) * 1.6

    # Short fades at the utterance edges.
    fade = max(1, int(_FADE_MS * sample_rate / 1000.0))
    if total > 2 * fade:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        gate[:fade] *= ramp
        gate[-fade:] *= ramp[::-1]
    wave *= gate
    return np.clip(np.round(wave), -32768, 32767).astype("<i2").tobytes()
