"""Text-to-speech for the local engine: Piper on CPU, one voice per process.

Piper synthesizes a sentence several times faster than real time, so a reply is spoken sentence
by sentence (``stream``): the caller hears the first sentence while the next one is being made,
instead of waiting for the whole reply. The voice's own rate (22.05 kHz for the bundled voice)
is resampled with soxr to the rate the call wants (8 kHz for telephony).

The voice is loaded once per process and shared by every call. The ONNX session gets its own
small thread count (default 1) because a call's turn often has speech-to-text of another call
running at the same time on a 2-core machine; synthesis runs on a ``ModelLane`` so the event
loop never waits for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from receptionist.engines.local.models import require_module, resolve_tts_voice, shared_lane
from receptionist.engines.local.sentences import DEFAULT_MAX_CHARS, split_sentences

__all__ = ["TextToSpeech", "TtsSettings"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TtsSettings:
    #: Piper voice .onnx (its .json next to it); None: the bundled en_US-joe-medium.
    voice: str | None = None
    #: ONNX Runtime intra-op threads per synthesis.
    threads: int = 1
    #: Syntheses that run at once in the process.
    parallel: int = 1
    #: Speaking rate: > 1 is slower, < 1 faster; None keeps the voice's own.
    length_scale: float | None = None
    #: Generator and duration noise; None keeps the voice's own (0 makes output repeatable).
    noise_scale: float | None = None
    noise_w_scale: float | None = None
    #: Peak level (Piper normalizes each sentence to full scale; leave headroom for resampling).
    volume: float = 0.9
    #: Longest piece ``stream`` synthesizes at once.
    max_sentence_chars: int = DEFAULT_MAX_CHARS

    def __post_init__(self) -> None:
        if self.threads < 1 or self.parallel < 1:
            raise ValueError("threads and parallel must be at least 1")
        if not 0.0 < self.volume <= 1.0:
            raise ValueError("volume must be in (0, 1]")


# --- the shared voice ------------------------------------------------------------------------

_voices: dict[tuple[str, int], Any] = {}
_voices_lock = threading.Lock()


def _load_voice(model: Path, config: Path, threads: int) -> Any:
    """The process's PiperVoice for this model, loaded on first use."""
    key = (str(model), threads)
    with _voices_lock:
        voice = _voices.get(key)
        if voice is None:
            piper = require_module("piper")
            ort = require_module("onnxruntime")
            started = time.perf_counter()
            # PiperVoice.load() would give ONNX Runtime every core; build the session ourselves.
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            session = ort.InferenceSession(
                str(model), sess_options=options, providers=["CPUExecutionProvider"]
            )
            with config.open(encoding="utf-8") as f:
                piper_config = piper.PiperConfig.from_dict(json.load(f))
            voice = piper.PiperVoice(session=session, config=piper_config)
            log.info(
                "text-to-speech voice %s loaded in %.2f s", model, time.perf_counter() - started
            )
            _voices[key] = voice
        return voice


class TextToSpeech:
    """Speaks text as PCM16 mono; one instance can serve every call (no per-call state)."""

    def __init__(self, settings: TtsSettings | None = None) -> None:
        self.settings = settings or TtsSettings()
        self.model_path, self.config_path = resolve_tts_voice(self.settings.voice)
        with self.config_path.open(encoding="utf-8") as f:
            self.voice_rate: int = int(json.load(f)["audio"]["sample_rate"])
        self._lane = shared_lane("tts", self.settings.parallel)
        self._voice: Any = None
        self._syn_config: Any = None

    def load(self) -> None:
        """Load the voice now (blocking: at start-up, or via ``warm_up``)."""
        if self._voice is None:
            s = self.settings
            piper = require_module("piper")
            self._syn_config = piper.SynthesisConfig(
                length_scale=s.length_scale,
                noise_scale=s.noise_scale,
                noise_w_scale=s.noise_w_scale,
                volume=s.volume,
            )
            self._voice = _load_voice(self.model_path, self.config_path, s.threads)

    async def warm_up(self) -> None:
        """Load the voice and run it once, off the event loop, so the first call is not slow."""
        await self._lane.run(self._synthesize_blocking, "Hello.", self.voice_rate)

    async def synthesize(self, text: str, rate: int = 8000) -> bytes:
        """All of ``text`` as PCM16 mono at ``rate`` (b"" when there is nothing to say)."""
        if not text.strip():
            return b""
        return await self._lane.run(self._synthesize_blocking, text, rate)

    async def stream(self, text: str, rate: int = 8000) -> AsyncIterator[bytes]:
        """``text`` as PCM16 mono at ``rate``, one piece (sentence) at a time.

        The next piece is synthesized while the caller of this generator handles the current
        one. Closing the generator early (barge-in) cancels the piece being prepared if it has
        not started; one that has started finishes on its thread and is thrown away.
        """
        pieces = split_sentences(text, self.settings.max_sentence_chars)
        if not pieces:
            return
        ahead: asyncio.Future[bytes] | None = asyncio.ensure_future(
            self.synthesize(pieces[0], rate)
        )
        done = 0
        try:
            while ahead is not None:
                pcm = await ahead
                done += 1
                ahead = (
                    asyncio.ensure_future(self.synthesize(pieces[done], rate))
                    if done < len(pieces)
                    else None
                )
                if pcm:
                    yield pcm
        finally:
            if ahead is not None and not ahead.done():
                ahead.cancel()

    # --- on a worker thread ------------------------------------------------------------------

    def _synthesize_blocking(self, text: str, rate: int) -> bytes:
        self.load()
        arrays = [
            chunk.audio_float_array
            for chunk in self._voice.synthesize(text, syn_config=self._syn_config)
        ]
        if not arrays:
            return b""
        audio = np.concatenate(arrays).astype(np.float32, copy=False)
        if rate != self.voice_rate:
            audio = soxr.resample(audio, self.voice_rate, rate, quality="HQ")
        pcm = np.clip(np.round(audio * 32767.0), -32768, 32767).astype("<i2")
        return pcm.tobytes()
