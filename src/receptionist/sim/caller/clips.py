"""The simulated caller's audio: clips pre-sliced into frames and pre-encoded, from text, PCM
or WAV."""

from __future__ import annotations

import base64
import functools
import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson
import soxr

from receptionist.sim.caller.script import TURN_GAP_MS, VOICE_WINDOW_MS
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD, rms_int16, synth_speech

# --- audio clips, pre-sliced and pre-encoded -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Clip:
    payloads: tuple[str, ...]  # base64 PCM, one per frame
    voiced: tuple[bool, ...]
    turn_ends: frozenset[int]  # frame indexes that are the last voiced frame of a caller turn
    duration_ms: float


def frame_bytes(sample_rate: int, frame_ms: int) -> int:
    return max(1, sample_rate * frame_ms // 1000) * 2


@functools.lru_cache(maxsize=16)
def silence_payload(sample_rate: int, frame_ms: int) -> str:
    return base64.b64encode(bytes(frame_bytes(sample_rate, frame_ms))).decode()


def clip_from_pcm(pcm: bytes, sample_rate: int, frame_ms: int) -> Clip:
    size = frame_bytes(sample_rate, frame_ms)
    if len(pcm) % size:
        pcm = pcm + bytes(size - len(pcm) % size)  # pad the last frame with silence
    frames = [pcm[i : i + size] for i in range(0, len(pcm), size)]
    voiced = tuple(any_window_voiced(f, sample_rate) for f in frames)
    gap = math.ceil(TURN_GAP_MS / frame_ms)
    ends = frozenset(i for i, v in enumerate(voiced) if v and not any(voiced[i + 1 : i + 1 + gap]))
    return Clip(
        payloads=tuple(base64.b64encode(f).decode() for f in frames),
        voiced=voiced,
        turn_ends=ends,
        duration_ms=len(pcm) * 500 / sample_rate,
    )


def any_window_voiced(frame: bytes, sample_rate: int) -> bool:
    win = 2 * max(1, sample_rate * VOICE_WINDOW_MS // 1000)
    return any(
        rms_int16(frame[i : i + win]) > SPEECH_RMS_THRESHOLD for i in range(0, len(frame), win)
    )


@functools.lru_cache(maxsize=512)
def utterance_clip(text: str, sample_rate: int, frame_ms: int) -> Clip:
    return clip_from_pcm(synth_speech(text, sample_rate), sample_rate, frame_ms)


def read_wav(path: Path, sample_rate: int) -> bytes:
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: need 16-bit PCM, got {8 * w.getsampwidth()}-bit")
        channels, src_rate = w.getnchannels(), w.getframerate()
        data = w.readframes(w.getnframes())
    x = np.frombuffer(data, dtype="<i2")
    if channels > 1:
        x = x[: len(x) - len(x) % channels].reshape(-1, channels).mean(axis=1).astype(np.int16)
    if src_rate != sample_rate:
        x = soxr.resample(x, src_rate, sample_rate, quality="HQ")
    return np.asarray(x, dtype="<i2").tobytes()


@functools.lru_cache(maxsize=8)
def wav_clip(path: str, mtime_ns: int, sample_rate: int, frame_ms: int) -> Clip:
    return clip_from_pcm(read_wav(Path(path), sample_rate), sample_rate, frame_ms)


def load_wav_clip(path: Path, sample_rate: int, frame_ms: int) -> Clip:
    return wav_clip(str(path), path.stat().st_mtime_ns, sample_rate, frame_ms)


def write_wav(path: Path, pcm: bytes, sample_rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)


class MediaFrames:
    """Caller `media` frames from pre-encoded payloads. Byte-for-byte the same text as
    `exotel.caller_media_frame` (checked by the tests), minus the per-frame base64 encode."""

    __slots__ = ("_mid",)

    def __init__(self, stream_sid: str) -> None:
        self._mid = '","stream_sid":' + orjson.dumps(stream_sid).decode() + ',"media":{"chunk":"'

    def build(self, payload_b64: str, *, sequence: int, chunk: int, timestamp_ms: int) -> str:
        return (
            '{"event":"media","sequence_number":"'
            + str(sequence)
            + self._mid
            + str(chunk)
            + '","timestamp":"'
            + str(timestamp_ms)
            + '","payload":"'
            + payload_b64
            + '"}}'
        )
