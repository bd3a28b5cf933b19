"""Speech-to-text for the local engine: faster-whisper on CPU, one model per process.

A caller's utterance (8 kHz PCM16 from the turn detector) is resampled to Whisper's 16 kHz and
transcribed in one go. Choices, and why:

* int8 weights: less than half of float32's memory (73 against 179 MB for tiny.en), and no
  slower on a 2-core CPU;
* no VAD filter in faster-whisper (the turn detector already cut the utterance), no conditioning
  on previous text (each turn stands alone; conditioning spreads one hallucination to the next
  turns), greedy decoding by default (beam 2 was no more accurate on telephone sentences and
  0-40% slower), and a single temperature (a fallback would decode a doubtful turn up to five
  more times, which a caller cannot wait for);
* Whisper invents text on noise ("you", "Thank you."). faster-whisper's own skip rule hides the
  scores we want to log, so it is turned off and the same rule (no-speech probability high and
  average log-probability low) is applied here to the whole utterance, plus a few more: text
  with no words, and endless repetitions;
* Whisper pads every input to a 30 s window, so a 2 s turn costs as much as a 30 s one (~0.75 s
  on 2 cores, nearly all of it the encoder). ``encoder_window_s`` (opt-in) encodes a window just
  longer than the turn instead: ~0.25 s per turn (with the vocabulary hint as the prompt, as
  faster-whisper does it). Short windows repeat themselves more often
  ("Okay. Okay."), so such results are decoded again with the full window; with that, the word
  error rate on our telephone test sentences was the same as with the full window;
* the model is loaded once per process and shared by every call; transcriptions run on a
  ``ModelLane`` (a small shared thread pool) so the event loop never waits for the model.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import soxr

from receptionist.engines.local.models import require_module, resolve_stt_model, shared_lane

__all__ = ["SpeechToText", "SttSettings", "Transcription"]

log = logging.getLogger(__name__)

INPUT_RATE = 8000
_WHISPER_RATE = 16000
_FRAMES_PER_S = 100  # Whisper's log-Mel frames (10 ms hop)
_MAX_LENGTH = 448  # Whisper's decoder positions (faster-whisper keeps a prompt to half of them)
_WORDS = re.compile(r"[A-Za-z0-9]")
_NON_WORD = re.compile(r"[^\w']+")


@dataclass(frozen=True, slots=True)
class SttSettings:
    #: Model directory or faster-whisper model name already cached; None: bundled tiny.en.
    model: str | None = None
    #: Spoken language (tiny.en only knows "en"); None lets Whisper detect it (multilingual
    #: models only, and slower).
    language: str | None = "en"
    #: CPU threads per transcription (CTranslate2 intra-op threads).
    cpu_threads: int = 2
    #: Transcriptions that run at once in the process (each on its own model replica).
    parallel: int = 1
    beam_size: int = 1
    #: Whisper's silence rule: drop the text when no_speech_prob is above this ...
    no_speech_threshold: float = 0.6
    #: ... and avg_logprob is below this.
    logprob_threshold: float = -1.0
    #: Text that compresses better than this (gzip ratio) is a repetition loop: dropped.
    compression_ratio_threshold: float = 2.4
    #: None: Whisper's standard 30 s window. A number (10 is good): encode only a window that
    #: fits the utterance, at least this long: ~3x faster on short turns (see ``_decode_short``).
    #: Needs ``language``. Turns that look like a repetition or like no speech are decoded again
    #: with the full window.
    encoder_window_s: float | None = None

    def __post_init__(self) -> None:
        if self.cpu_threads < 1 or self.parallel < 1 or self.beam_size < 1:
            raise ValueError("cpu_threads, parallel and beam_size must be at least 1")
        if self.encoder_window_s is not None and not 1.0 <= self.encoder_window_s <= 30.0:
            raise ValueError("encoder_window_s must be between 1 and 30 seconds")


@dataclass(frozen=True, slots=True)
class Transcription:
    text: str  # "" when nothing usable was said
    language: str
    avg_logprob: float  # mean over the utterance's tokens (0 is certain; -1 is poor)
    no_speech_prob: float  # Whisper's estimate that there was no speech at all
    audio_s: float
    compute_s: float  # time in the model (queueing excluded)

    @property
    def rtf(self) -> float:
        """Real-time factor: compute time per second of audio."""
        return self.compute_s / self.audio_s if self.audio_s else 0.0


@dataclass(frozen=True, slots=True)
class _Decoded:
    text: str
    language: str
    avg_logprob: float
    no_speech: float
    compression: float
    truncated: bool = False  # decoding stopped at the token limit


# --- the shared model ------------------------------------------------------------------------

_models: dict[tuple[str, int, int], Any] = {}
_models_lock = threading.Lock()


def _load_model(path: str, cpu_threads: int, parallel: int) -> Any:
    """The process's WhisperModel for these settings, loaded on first use."""
    key = (path, cpu_threads, parallel)
    with _models_lock:
        model = _models.get(key)
        if model is None:
            fw = require_module("faster_whisper")
            started = time.perf_counter()
            model = fw.WhisperModel(
                path,
                device="cpu",
                compute_type="int8",
                cpu_threads=cpu_threads,
                num_workers=parallel,
                local_files_only=True,
            )
            log.info(
                "speech-to-text model %s loaded in %.2f s", path, time.perf_counter() - started
            )
            _models[key] = model
        return model


def _is_repetition(text: str) -> bool:
    """Whether ``text`` is one phrase said two or more times ("Hello? Hello? Hello?")."""
    words = _NON_WORD.sub(" ", text.lower()).split()
    n = len(words)
    return any(
        n % size == 0 and words == words[:size] * (n // size) for size in range(1, n // 2 + 1)
    )


def _to_whisper_input(pcm8k: bytes) -> np.ndarray:
    x = np.frombuffer(pcm8k, dtype="<i2", count=len(pcm8k) // 2).astype(np.float32)
    x *= 1.0 / 32768.0
    out: np.ndarray = soxr.resample(x, INPUT_RATE, _WHISPER_RATE, quality="HQ")
    return out.astype(np.float32, copy=False)


class SpeechToText:
    """Transcribes utterances; one instance can serve every call (it holds no per-call state)."""

    def __init__(self, settings: SttSettings | None = None) -> None:
        self.settings = settings or SttSettings()
        self.model_path = resolve_stt_model(self.settings.model)
        self._lane = shared_lane("stt", self.settings.parallel)
        self._model: Any = None
        self._short_prompt: tuple[Any, list[int], list[int]] | None = None
        self._hint_tokens: dict[str, list[int]] = {}  # per vocabulary hint (one per tenant)

    def load(self) -> None:
        """Load the model now (blocking: at start-up, or via ``warm_up``)."""
        if self._model is None:
            s = self.settings
            self._model = _load_model(self.model_path, s.cpu_threads, s.parallel)

    async def warm_up(self) -> None:
        """Load the model and run it once, off the event loop, so the first call is not slow."""
        await self._lane.run(self._transcribe_blocking, bytes(INPUT_RATE))  # 0.5 s of silence

    async def transcribe(self, pcm8k: bytes, hint: str | None = None) -> Transcription:
        """Text of one utterance of 8 kHz PCM16 mono; ``text`` is "" for silence or noise.

        ``hint``: words this caller is likely to say (the business's name and products), given
        to Whisper as its prompt so "Black Forest" is not heard as "black force"."""
        return await self._lane.run(self._transcribe_blocking, pcm8k, hint)

    # --- on a worker thread ------------------------------------------------------------------

    def _transcribe_blocking(self, pcm8k: bytes, hint: str | None = None) -> Transcription:
        self.load()
        s = self.settings
        started = time.perf_counter()
        audio = _to_whisper_input(pcm8k)
        audio_s = len(audio) / _WHISPER_RATE
        if audio_s < 0.1:
            return Transcription("", s.language or "", 0.0, 1.0, audio_s, 0.0)
        decoded = None
        if s.encoder_window_s is not None and s.language is not None:
            decoded = self._decode_short(audio, s.encoder_window_s, hint)
            if (
                decoded.truncated
                or decoded.compression > s.compression_ratio_threshold
                or decoded.no_speech > s.no_speech_threshold
                or _is_repetition(decoded.text)
            ):
                # a repetition loop, or maybe no speech at all: short windows loop more often
                # ("Okay. Okay.", "Beep Beep Beep ..." on a tone); the full window decides
                decoded = None
        if decoded is None:
            decoded = self._decode_full(audio, hint)
        compute_s = time.perf_counter() - started
        text = decoded.text
        reason = self._reject(text, decoded.avg_logprob, decoded.no_speech, decoded.compression)
        if reason:
            log.debug(
                "dropped %r (%s; logprob %.2f, no_speech %.2f)",
                text,
                reason,
                decoded.avg_logprob,
                decoded.no_speech,
            )
            text = ""
        return Transcription(
            text=text,
            language=decoded.language,
            avg_logprob=decoded.avg_logprob,
            no_speech_prob=decoded.no_speech,
            audio_s=audio_s,
            compute_s=compute_s,
        )

    def _max_new_tokens(self, audio_s: float) -> int:
        # generous for speech (~3-5 tokens/s), short enough to stop a runaway loop early
        return min(220, 16 + int(8 * audio_s))

    def _decode_full(self, audio: np.ndarray, hint: str | None = None) -> _Decoded:
        """faster-whisper's own transcribe: Whisper's 30 s window, padded with silence."""
        s = self.settings
        segments, info = self._model.transcribe(
            audio,
            initial_prompt=hint or None,
            language=s.language,
            beam_size=s.beam_size,
            temperature=0.0,
            vad_filter=False,
            condition_on_previous_text=False,
            without_timestamps=True,
            no_speech_threshold=None,  # applied by _reject, on the whole utterance
            log_prob_threshold=None,
            compression_ratio_threshold=None,
            max_new_tokens=self._max_new_tokens(len(audio) / _WHISPER_RATE),
        )
        segments = list(segments)  # the generator does the decoding
        text = " ".join(seg.text.strip() for seg in segments).strip()
        tokens = sum(max(1, len(seg.tokens)) for seg in segments)
        avg_logprob = (
            sum(seg.avg_logprob * max(1, len(seg.tokens)) for seg in segments) / tokens
            if segments
            else 0.0
        )
        return _Decoded(
            text=text,
            language=info.language,
            avg_logprob=avg_logprob,
            no_speech=max((seg.no_speech_prob for seg in segments), default=1.0),
            compression=max((seg.compression_ratio for seg in segments), default=0.0),
        )

    def _decode_short(
        self, audio: np.ndarray, window_s: float, hint: str | None = None
    ) -> _Decoded:
        """One greedy/beam decode over a window just longer than the audio (>= ``window_s``).

        Whisper's encoder costs the same for 1 s of speech as for 30 s, because the audio is
        padded to 30 s; most of a turn's transcription time is that padding. CTranslate2 accepts
        a shorter input, which tiny.en transcribes almost as well: 3x faster on telephone
        sentences, with more repeated phrases ("Hello? Hello?"), which the caller re-decodes.
        """
        s = self.settings
        model = self._model
        tokenizer, prompt, suppress = self._short_prompt_for(hint)
        batch = self._short_window(audio, window_s)
        max_new = self._max_new_tokens(len(audio) / _WHISPER_RATE)
        result = model.model.generate(
            batch,
            [prompt],
            beam_size=s.beam_size,
            max_length=min(_MAX_LENGTH, len(prompt) + max_new),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppress,
        )[0]
        tokens = result.sequences_ids[0]
        text = tokenizer.decode(tokens).strip()
        fw_transcribe = require_module("faster_whisper.transcribe")
        return _Decoded(
            text=text,
            language=s.language or "",
            # as faster-whisper computes it (length penalty 1)
            avg_logprob=result.scores[0] * len(tokens) / (len(tokens) + 1),
            no_speech=result.no_speech_prob,
            compression=fw_transcribe.get_compression_ratio(text) if text else 0.0,
            # CTranslate2 stops two or three tokens short of max_length (it counts the prompt)
            truncated=len(tokens) >= max_new - 4,
        )

    def _short_prompt_for(self, hint: str | None) -> tuple[Any, list[int], list[int]]:
        """(tokenizer, prompt tokens, tokens to suppress) for a short-window decode; the hint
        goes before the start of transcript, as faster-whisper's initial_prompt does."""
        if self._short_prompt is None:
            fw_tokenizer = require_module("faster_whisper.tokenizer")
            fw_transcribe = require_module("faster_whisper.transcribe")
            tokenizer = fw_tokenizer.Tokenizer(
                self._model.hf_tokenizer,
                self._model.model.is_multilingual,
                task="transcribe",
                language=self.settings.language,
            )
            prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
            suppress = list(fw_transcribe.get_suppressed_tokens(tokenizer, [-1]))
            self._short_prompt = (tokenizer, prompt, suppress)
        tokenizer, prompt, suppress = self._short_prompt
        if hint:
            tokens = self._hint_tokens.get(hint)
            if tokens is None:
                tokens = tokenizer.encode(" " + hint.strip())[-(_MAX_LENGTH // 2 - 1) :]
                self._hint_tokens[hint] = tokens
            prompt = [tokenizer.sot_prev, *tokens, *prompt]
        return tokenizer, prompt, suppress

    def _short_window(self, audio: np.ndarray, window_s: float) -> Any:
        """The audio's features padded to a window just longer than it (whole 5 s steps, at
        least ``window_s``, at most Whisper's 30 s), as CTranslate2 takes them."""
        ct2 = require_module("ctranslate2")
        features = self._model.feature_extractor(audio)[:, :-1]  # the last frame is padding
        frames = features.shape[1]
        step = 5 * _FRAMES_PER_S
        window = max(int(window_s * _FRAMES_PER_S), -(-(frames + _FRAMES_PER_S) // step) * step)
        window = min(window, 30 * _FRAMES_PER_S)
        if frames < window:
            features = np.pad(features, ((0, 0), (0, window - frames)))
        else:
            features = features[:, :window]
        return ct2.StorageView.from_array(np.ascontiguousarray(features[None], dtype=np.float32))

    def _reject(self, text: str, avg_logprob: float, no_speech: float, compression: float) -> str:
        s = self.settings
        if not _WORDS.search(text):
            return "no words"
        if no_speech > s.no_speech_threshold and avg_logprob < s.logprob_threshold:
            return "silence"
        if compression > s.compression_ratio_threshold:
            return "repetition"
        return ""
