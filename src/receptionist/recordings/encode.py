"""A finished tape's two raw tracks to one compact stereo file: caller left, agent right.

Ogg/Opus (default) or MP3, through libsndfile (the `soundfile` wheels bundle it with both). Run in
a worker thread: a ten-minute call at 8 kHz encodes in well under a second of CPU.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["FORMATS", "Encoded", "encode_stereo"]

Format = Literal["opus", "mp3"]
# (libsndfile format, subtype, file suffix, content type)
FORMATS: dict[str, tuple[str, str, str, str]] = {
    "opus": ("OGG", "OPUS", ".ogg", "audio/ogg"),
    "mp3": ("MP3", "MPEG_LAYER_III", ".mp3", "audio/mpeg"),
}
# Opus codes these rates only; another call rate is encoded at the next one up (libsndfile
# resamples). MP3 takes the telephone rates as they are.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


class Encoded:
    __slots__ = ("content_type", "duration_ms", "path", "size", "suffix")

    def __init__(self, path: Path, content_type: str, suffix: str, duration_ms: int) -> None:
        self.path, self.content_type, self.suffix = path, content_type, suffix
        self.duration_ms = duration_ms
        self.size = path.stat().st_size


def _track(path: Path) -> np.ndarray:
    if not path.exists():
        return np.zeros(0, dtype=np.int16)
    data = path.read_bytes()
    return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")


def encode_stereo(caller: Path, agent: Path, rate: int, out: Path, fmt: Format = "opus") -> Encoded:
    """Write `out` + the format's suffix from the raw 16-bit tracks (the shorter one ends in
    silence)."""
    import soundfile as sf  # only the worker encodes: the bridge never loads libsndfile

    major, subtype, suffix, content_type = FORMATS[fmt]
    left, right = _track(caller), _track(agent)
    frames = max(len(left), len(right))
    stereo = np.zeros((frames, 2), dtype=np.int16)
    stereo[: len(left), 0] = left
    stereo[: len(right), 1] = right
    target = out.with_name(out.name + suffix)
    samplerate = rate
    if fmt == "opus" and rate not in _OPUS_RATES:
        samplerate = next((r for r in _OPUS_RATES if r >= rate), 48000)
        stereo = _resample(stereo, rate, samplerate)
    with sf.SoundFile(
        target, "w", samplerate=samplerate, channels=2, format=major, subtype=subtype
    ) as f:
        f.write(stereo)
    return Encoded(target, content_type, suffix, round(frames * 1000 / rate))


def _resample(stereo: np.ndarray, rate: int, to: int) -> np.ndarray:
    import soxr

    return np.asarray(soxr.resample(stereo, rate, to), dtype=np.int16)
