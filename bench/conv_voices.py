"""The caller's two voices for `conversations.py`, and where each spoken line really ends.

* ``piper``: the local engine's own Piper voice at 8 kHz, without generator noise (the same audio
  on every run), clean: the easy caller.
* ``espeak``: Debian's espeak-ng (a formant synthesizer, nothing like Piper's voice), then made to
  sound like a phone line: band-limited to 300-3400 Hz, resampled to 8 kHz, levelled, and white
  noise (band-limited the same way) added at a stated SNR for the length of the line plus a short
  lead-in and tail. The simulated caller sends digital silence between lines (it is the
  simulator's), so the hiss is only under the caller's own lines.

Both return PCM16 mono at the rate asked for, as `CallOptions.voice` wants.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import math
import shutil
import wave
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import numpy as np
import soxr

from receptionist.sim.caller import TURN_GAP_MS, VOICE_WINDOW_MS
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD

Voice = Callable[[str, int], Awaitable[bytes]]

SYNTHS = ("piper", "espeak")
#: espeak-ng voice and speaking rate (words per minute; its default is 175, callers are slower)
ESPEAK_VOICE = "en-gb"
ESPEAK_WPM = 150
#: the telephone band
BAND_HZ = (300.0, 3400.0)
#: RMS of the levelled speech (about -21 dBFS), before the noise is added
SPEECH_RMS = 3000.0
#: white noise around each espeak line
NOISE_PAD_MS = 200


class EspeakMissing(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class LineNoise:
    snr_db: float = 20.0


def band_limit(x: np.ndarray, rate: int, band: tuple[float, float] = BAND_HZ) -> np.ndarray:
    """Zero every FFT bin outside the band: a brick-wall filter is fine for whole short clips."""
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(len(x), 1.0 / rate)
    spec[(freqs < band[0]) | (freqs > band[1])] = 0
    return np.fft.irfft(spec, n=len(x))


def _voiced_rms(x: np.ndarray, rate: int) -> float:
    """RMS over the 10 ms windows that carry speech (above 5 % of the loudest one)."""
    win = max(1, rate * VOICE_WINDOW_MS // 1000)
    n = len(x) // win
    if n == 0:
        return 0.0
    w = np.sqrt(np.mean(x[: n * win].reshape(n, win) ** 2, axis=1))
    loud = w[w > 0.05 * w.max()]
    return float(np.sqrt(np.mean(loud**2))) if len(loud) else 0.0


def telephone_line(pcm: np.ndarray, rate: int, out_rate: int, noise: LineNoise, seed: int) -> bytes:
    """Band-limit, resample to `out_rate`, level to SPEECH_RMS and add band-limited white noise
    at `noise.snr_db` below the speech (RMS over its voiced windows)."""
    x = band_limit(pcm.astype(np.float64), rate)
    x = soxr.resample(x, rate, out_rate, quality="HQ")
    level = _voiced_rms(x, out_rate)
    if level > 0:
        x = x * (SPEECH_RMS / level)
    pad = np.zeros(out_rate * NOISE_PAD_MS // 1000)
    x = np.concatenate([pad, x, pad])
    rng = np.random.default_rng(seed)
    hiss = band_limit(rng.standard_normal(len(x)), out_rate)
    hiss *= (SPEECH_RMS / 10 ** (noise.snr_db / 20)) / max(float(np.sqrt(np.mean(hiss**2))), 1e-9)
    return np.clip(np.round(x + hiss), -32768, 32767).astype("<i2").tobytes()


async def espeak_pcm(text: str) -> tuple[np.ndarray, int]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise EspeakMissing("espeak-ng is not installed (Debian: apt-get install espeak-ng)")
    proc = await asyncio.create_subprocess_exec(
        exe, "-v", ESPEAK_VOICE, "-s", str(ESPEAK_WPM), "--stdout", text,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"espeak-ng failed ({proc.returncode}): {err.decode(errors='replace')}")
    # espeak-ng writes a WAV whose size fields say "streaming": read the header, take the rest
    with wave.open(io.BytesIO(out)) as w:
        rate = w.getframerate()
    data = out[44:]
    return np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2"), rate


def espeak_voice(noise: LineNoise) -> Voice:
    async def speak(text: str, sample_rate: int) -> bytes:
        pcm, rate = await espeak_pcm(text)
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
        return telephone_line(pcm, rate, sample_rate, noise, seed)

    return speak


async def piper_voice() -> Voice:
    from receptionist.engines.local.tts import TextToSpeech, TtsSettings

    tts = TextToSpeech(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))
    await tts.warm_up()

    async def speak(text: str, sample_rate: int) -> bytes:
        return await tts.synthesize(text, sample_rate)

    return speak


def cached(voice: Voice) -> tuple[Voice, dict[str, bytes]]:
    """The voice, remembering each line's audio (at the call's rate) for `speech_end_offsets`."""
    seen: dict[str, bytes] = {}

    async def speak(text: str, sample_rate: int) -> bytes:
        if text not in seen:
            seen[text] = await voice(text, sample_rate)
        return seen[text]

    return speak, seen


def speech_end_offsets(pcm: bytes, rate: int, frame_ms: int) -> list[float]:
    """For each caller turn the simulator finds in this clip (its last voiced frame before a gap
    of TURN_GAP_MS), how far into that frame the speech ends, in ms: the simulator dates the end
    of a turn at the send time of that frame, the speech really ends this much later."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frame = rate * frame_ms // 1000
    win = max(1, rate * VOICE_WINDOW_MS // 1000)
    n_frames = math.ceil(len(x) / frame)
    last_voiced: list[float | None] = []
    for i in range(n_frames):
        f = x[i * frame : (i + 1) * frame]
        end = None
        for j in range(0, len(f), win):
            w = f[j : j + win]
            if len(w) and math.sqrt(float(np.mean(w**2))) > SPEECH_RMS_THRESHOLD:
                end = (j + len(w)) * 1000.0 / rate
        last_voiced.append(end)
    gap = math.ceil(TURN_GAP_MS / frame_ms)
    out = []
    for i, end in enumerate(last_voiced):
        if end is not None and all(e is None for e in last_voiced[i + 1 : i + 1 + gap]):
            out.append(end)
    return out
