"""The Gemini Live double's wire helpers: camel/snake keys, MIME rates, reply plans, and its
10 ms energy VAD."""

from __future__ import annotations

import base64
import re
from functools import lru_cache
from typing import Any

import numpy as np
import orjson

from receptionist.sim.gemini_live.model import AGENT_MIME, AGENT_SAMPLE_RATE, VAD_WINDOW_MS
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD, synth_speech

# --------------------------------------------------------------------------- helpers


QUOTED = re.compile(r"«(.+?)»", re.S)


@lru_cache(maxsize=256)
def camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def get_key(d: Any, snake: str) -> Any:
    """``d[snake]`` or ``d[camelCase(snake)]``; None if ``d`` is not a dict or has neither."""
    if not isinstance(d, dict):
        return None
    v = d.get(snake)
    if v is None:
        v = d.get(camel(snake))
    return v


RATE_RE = re.compile(r"rate\s*=\s*(\d+)")


@lru_cache(maxsize=64)
def rate_from_mime(mime: str) -> int:
    m = RATE_RE.search(mime or "")
    return int(m.group(1)) if m else 16000


def content_text(content: Any) -> str:
    """Text of a Content dict, a list of them, a Part or a plain string."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (content_text(c) for c in content) if t)
    if isinstance(content, dict):
        text = get_key(content, "text")
        if isinstance(text, str):
            return text
        return content_text(get_key(content, "parts"))
    return ""


def split_pieces(text: str) -> list[str]:
    """Word pieces carrying their leading whitespace; ``"".join(pieces) == text.rstrip()``."""
    return re.findall(r"\s*\S+", text)


def two_pieces(text: str) -> list[str]:
    pieces = split_pieces(text)
    if len(pieces) < 2:
        return [text] if text else []
    mid = len(pieces) // 2
    return ["".join(pieces[:mid]), "".join(pieces[mid:])]


def b64decode(data: str) -> bytes:
    """Standard or URL-safe base64, padding optional (the SDK sends URL-safe base64)."""
    if len(data) % 4:
        data += "=" * (-len(data) % 4)
    return base64.b64decode(data, altchars=b"-_")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


GENERATION_COMPLETE = dumps({"serverContent": {"generationComplete": True}})
INTERRUPTED = dumps({"serverContent": {"interrupted": True}})
SETUP_COMPLETE = dumps({"setupComplete": {}})


@lru_cache(maxsize=64)
def reply_plan(
    text: str, chunk_ms: int, audio: bool, transcribe: bool
) -> tuple[tuple[bytes, float], ...]:
    """Pre-serialized frames of one reply as ``(frame, audio_seconds)``.

    Audio mode: ``inlineData`` chunks with ``outputTranscription`` word pieces placed just
    before the chunk in which the word starts. Text mode: ``modelTurn`` text pieces.
    """
    pieces = split_pieces(text)
    if not audio:
        return tuple(
            (dumps({"serverContent": {"modelTurn": {"parts": [{"text": p}]}}}), 0.0) for p in pieces
        )
    pcm = synth_speech(text, AGENT_SAMPLE_RATE)
    total_s = len(pcm) / (2 * AGENT_SAMPLE_RATE)
    step = max(2, int(AGENT_SAMPLE_RATE * chunk_ms / 1000) * 2)
    # Start time (s) of every piece, proportional to its character position.
    starts: list[float] = []
    pos = 0
    n_chars = max(1, len(text))
    for p in pieces:
        stripped = len(p) - len(p.lstrip())
        starts.append(total_s * (pos + stripped) / n_chars)
        pos += len(p)
    frames: list[tuple[bytes, float]] = []
    k = 0
    t = 0.0
    for off in range(0, len(pcm), step):
        chunk = pcm[off : off + step]
        secs = len(chunk) / (2 * AGENT_SAMPLE_RATE)
        while transcribe and k < len(pieces) and starts[k] < t + secs:
            frames.append(
                (dumps({"serverContent": {"outputTranscription": {"text": pieces[k]}}}), 0.0)
            )
            k += 1
        data = base64.b64encode(chunk).decode("ascii")
        part = {"inlineData": {"mimeType": AGENT_MIME, "data": data}}
        frames.append((dumps({"serverContent": {"modelTurn": {"parts": [part]}}}), secs))
        t += secs
    while transcribe and k < len(pieces):
        frames.append((dumps({"serverContent": {"outputTranscription": {"text": pieces[k]}}}), 0.0))
        k += 1
    return tuple(frames)


def voiced_windows(pcm: bytes, rate: int) -> tuple[list[bool], float]:
    """Per-window voicing of whole windows of ``pcm`` and the window duration in seconds.

    Only whole windows: the caller (:class:`WindowVad`) carries the rest to the next chunk, so
    the windows sit on the continuous stream whatever size the chunks are.
    """
    win = max(1, rate * VAD_WINDOW_MS // 1000)
    n = (len(pcm) // 2) // win * win
    if n == 0:
        return [], win / rate
    x = np.frombuffer(pcm, dtype="<i2", count=n).astype(np.float32)
    w = x.reshape(-1, win)
    voiced = (np.sqrt(np.einsum("ij,ij->i", w, w) / win) >= SPEECH_RMS_THRESHOLD).tolist()
    return voiced, win / rate


class WindowVad:
    """Energy VAD on fixed windows of the received audio *stream*, not of each chunk.

    A chunk's samples that do not fill a window wait for the next chunk, so the end of the
    caller's turn falls on the same stream position (to the window) whether a bridge sends
    20 ms or 100 ms chunks; only *when* that audio arrives moves it, which is the bridge's
    latency the double should expose. A change of sample rate starts a new stream.
    """

    __slots__ = ("_carry", "_rate")

    def __init__(self) -> None:
        self._carry = b""
        self._rate = 0

    def push(self, pcm: bytes, rate: int) -> tuple[list[bool], float]:
        if rate != self._rate:
            self._rate, self._carry = rate, b""
        if self._carry:
            pcm = self._carry + pcm
        win_bytes = 2 * max(1, rate * VAD_WINDOW_MS // 1000)
        whole = len(pcm) // win_bytes * win_bytes
        self._carry = pcm[whole:]
        return voiced_windows(pcm[:whole], rate)
