"""A protocol-faithful Gemini Live API double (``BidiGenerateContent`` over TLS WebSocket).

The *unmodified* ``google-genai`` SDK talks to :class:`FakeGeminiLive` over a real TLS
WebSocket on 127.0.0.1. The SDK always forces ``wss://`` for Live and always passes an SSL
context to ``websockets.connect``, so the double serves TLS with a throw-away ``trustme`` CA
(:mod:`receptionist.sim.tls`).

Client configuration (verified against google-genai 3.6.1, ``_api_client.py``
``_ensure_websocket_ssl_ctx``: ``HttpOptions.async_client_args["ssl"]`` is passed verbatim to
``websockets.asyncio.client.connect(ssl=...)``; other keys not accepted by ``connect`` are
dropped)::

    client = genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(
            base_url=fake.base_url,                         # "https://127.0.0.1:PORT"
            async_client_args={"ssl": fake.client_ssl_context},
        ),
    )

Alternative without passing a context: set ``SSL_CERT_FILE=fake.ca_file`` *before* the
``genai.Client`` is built (the SDK builds its websocket SSL context once, in the client
constructor, from ``SSL_CERT_FILE``/``SSL_CERT_DIR`` or certifi).

Protocol summary (see /work/shared/PROTOCOLS.md "Gemini Live API"):

* Path: anything ending in ``GenerativeService.BidiGenerateContent`` (any api_version; a
  ``//ws`` prefix is tolerated); other paths get HTTP 404 in the handshake.
* Auth: ``x-goog-api-key`` header or ``key`` query parameter. A wrong key is rejected like the
  real service: the WebSocket is accepted, the first (setup) frame is read, then the server
  closes with code **1007** and reason ``"API key not valid. Please pass a valid API key."``.
  The SDK surfaces that from ``live.connect()`` as ``google.genai.errors.APIError`` with
  ``code == 1007`` and the reason in its message. (An HTTP 401/403 in the handshake would
  instead surface as a bare ``websockets.exceptions.InvalidStatus``, which is less clear, and
  closing *before* the setup frame is read can make the SDK's ``ws.send(setup)`` raise a raw
  ``ConnectionClosed`` instead of ``APIError``.)
* First client frame must be ``{"setup": {...}}``; the reply is ``{"setupComplete": {}}``.
  Keys are accepted in snake_case and camelCase at every level. Frames may be text or binary.
* Caller turns: energy VAD over ``realtime_input.audio`` / ``media_chunks`` (10 ms windows of
  the continuous received stream, whatever the chunk sizes, so a bridge's chunking cannot move
  the decision; :data:`~receptionist.sim.speech.SPEECH_RMS_THRESHOLD`), the turn ends after
  ``end_of_turn_silence_ms`` of received unvoiced *audio* (not wall clock), on
  ``audioStreamEnd``, or on ``activityEnd`` (manual VAD; energy VAD is off when setup sets
  ``realtimeInputConfig.automaticActivityDetection.disabled``). ``realtime_input.text`` is a
  caller turn too (no input transcription is sent for it).
* Initial history (setup ``historyConfig.initialHistoryInClientContent``): ``client_content``
  up to the first ``turnComplete`` joins the context (``LiveSessionRecord.history``) and is
  never answered; a ``model`` turn in it counts as the greeting already said. (The double does
  not hold caller audio back meanwhile.)
* ``client_content`` with ``turnComplete``: the first one is the greeting: the agent says
  ``script.greeting`` if set, else the received text itself. Later ones with text are spoken
  back verbatim; without text they take the next scripted turn.
* Each caller turn takes the next :class:`ScriptedTurn` (then ``script.fallback_reply``) and
  sends ``inputTranscription`` (the scripted ``heard``, in one or two pieces; only if setup
  asked for ``inputAudioTranscription``), then the reply: 24 kHz PCM ``inlineData`` chunks of
  ``chunk_ms`` interleaved with word-by-word ``outputTranscription`` (only if asked for), then
  ``generationComplete``, then ``{"serverContent": {"turnComplete": true}, "usageMetadata":
  {...}}`` in ONE frame (the SDK's ``receive()`` stops iterating at ``turnComplete``, so usage
  sent in a later frame would only show up in the next ``receive()`` loop), then
  ``sessionResumptionUpdate`` if setup contained ``sessionResumption``.
* Usage is deterministic: 25 tokens per second of audio (caller audio, silence included, and
  agent audio), text tokens = ceil(chars / 4). ``promptTokenCount`` is the whole context so
  far (system instruction + client texts + all caller audio + all earlier agent output), so it
  grows every turn like a real model that re-bills the context.
* Barge-in: the agent is "speaking" while a reply is being generated (not yet complete) or
  until the time, on the double's ``clock``, at which the audio sent so far would have finished
  playing at the caller. Caller speech (a voiced window or ``activityStart``) during that time
  sends ``{"serverContent": {"interrupted": true}}`` at once, cancels the rest of the reply,
  and starts the next caller turn. No ``turnComplete`` is sent for an interrupted reply.
* Test control: ``clock`` (default ``time.monotonic``) is the double's notion of now for that
  playback window and for the records' timestamps, so a test can hold it still and advance it
  by the audio it has received instead of sleeping; a :class:`Hold` on a reply
  (``ScriptedTurn.hold``, ``CallScript.greeting_hold``) or on the handshake
  (``Failure.hold_handshake``) stops the double there until the test releases it.

* Faults and resumption (:class:`Failure`, or ``FakeGeminiLive.drop``/``go_away`` for a test to
  fire them itself): the connection is cut (TCP abort, no close frame, or a close with a chosen
  code) or ``goAway`` is sent, at a point in a reply or in the caller's speech; after ``goAway``
  the connection is closed (1011 "Deadline expired ...") when ``timeLeft`` is up. Each
  ``sessionResumptionUpdate`` handle (``resumable: true``, issued after an initial history and
  after every completed reply, never mid-reply, as the real service marks such points not
  resumable) restores the context as it was then: script position, greeting, history, usage
  counters. A setup carrying ``sessionResumption.handle`` resumes from it; an unknown, expired
  (``handle_ttl_s``, the documented 2 hours after the session closed) or refused handle gets
  close 1007. What a resumed session does not have: the reply in flight and any caller audio
  received after the handle (the client must send it again). With ``record_audio=True`` each
  session keeps the caller audio it received, and the audio offset of each handle, so a test can
  check what reached which session, in order.

SDK behaviour worth knowing: ``session.receive()`` ends after every ``turnComplete``; any
server close (even 1000) while receiving raises ``errors.APIError`` with the close code
(1011 → ``APIError(code=1011)``; codes 4xx/5xx would map to ClientError/ServerError).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import re
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from receptionist.sim.double import Double
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD, synth_speech
from receptionist.sim.tls import TestCA

__all__ = [
    "AGENT_MIME",
    "AGENT_SAMPLE_RATE",
    "AUDIO_TOKENS_PER_S",
    "INVALID_KEY_CLOSE_CODE",
    "INVALID_KEY_REASON",
    "PATH_SUFFIX",
    "AgentReply",
    "CallScript",
    "CallerTurn",
    "Failure",
    "FakeGeminiLive",
    "Hold",
    "LiveSessionRecord",
    "ScriptedTurn",
    "serve_forever",
]

log = logging.getLogger(__name__)

PATH_SUFFIX = "GenerativeService.BidiGenerateContent"
AGENT_SAMPLE_RATE = 24000
AGENT_MIME = "audio/pcm;rate=24000"
AUDIO_TOKENS_PER_S = 25
INVALID_KEY_CLOSE_CODE = 1007
INVALID_KEY_REASON = "API key not valid. Please pass a valid API key."
HISTORY_CONFIG_REFUSED = (
    "Invalid JSON payload received. Unknown name \"historyConfig\" at 'setup': Cannot find field."
)
INTERNAL_ERROR_CODE = 1011
INTERNAL_ERROR_REASON = "Internal error encountered."
#: What the double answers a setup whose resumption handle it does not honour (close 1007, like
#: the real service's invalid-argument closes; the wording is ours).
INVALID_HANDLE_REASON = "Session resumption handle is invalid or has expired."
#: The close the real service sends when a connection's time is up after a goAway.
DEADLINE_REASON = "Deadline expired before operation could complete."
DEFAULT_REPLY = "Sure, I can help with that."
MAX_STORED_FRAMES = 2000  # per session; audio frames are never stored, only counted

#: Energy VAD window. 10 ms windows on the continuous received stream: the decision that the
#: caller stopped moves by at most one window, never by a bridge's chunk size.
_VAD_WINDOW_MS = 10


# --------------------------------------------------------------------------- data model


class Hold:
    """A gate the test opens: the double stops at it, reports that, and goes on once released.

    On a reply the double first sends ``after_ms`` of the reply's audio (with the transcription
    that goes with it), or the whole audio if it is shorter, then sets ``reached`` and sends
    the rest (and ``turnComplete``) only after :meth:`release`. Until then the reply is still
    being generated, so caller speech interrupts it however long the wait. A test that never
    releases the hold gets a reply that can only end by barge-in or hang-up. Once released it
    stays open (a reused script passes through it).
    """

    def __init__(self, after_ms: float = 0.0) -> None:
        self.after_ms = after_ms
        self.reached = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        self._released.set()

    async def wait_reached(self, within_s: float = 10.0) -> None:
        """Until the double stands at the hold (TimeoutError after ``within_s``: a failure)."""
        async with asyncio.timeout(within_s):
            await self.reached.wait()

    async def stop_here(self) -> None:
        """Called by the double: report arrival, then wait for the release."""
        self.reached.set()
        await self._released.wait()


@dataclass
class ScriptedTurn:
    """One caller turn of a script: what the model "heard" and what it replies."""

    heard: str
    reply: str
    #: Stop the reply part-way until the test releases it.
    hold: Hold | None = None


@dataclass
class CallScript:
    """What the fake model says during one session."""

    turns: list[ScriptedTurn] = field(default_factory=list)
    greeting: str | None = None
    fallback_reply: str = DEFAULT_REPLY
    #: Input transcription for caller turns beyond ``turns`` ("" → none is sent).
    fallback_heard: str = ""
    #: Think time before the first audio chunk of every reply.
    reply_delay_ms: int = 0
    #: Stop the greeting part-way until the test releases it.
    greeting_hold: Hold | None = None


@dataclass
class Failure:
    """Fault injection."""

    reject_key: bool = False  # every key is rejected (close 1007 after the setup frame)
    close_after_turns: int | None = None  # close 1011 right after the N-th completed reply
    go_away_after_s: float | None = None  # send goAway this many seconds after setupComplete
    go_away_time_left: str = "10s"
    fail_setup: bool = False  # close 1011 right after receiving setup
    #: sessions from this index on fail like ``fail_setup`` (a service that stays down)
    fail_sessions_from: int | None = None
    accept_delay_s: float = 0.0  # slow opening handshake
    hold_handshake: Hold | None = None  # the opening handshake waits until released
    #: a model whose setup takes no ``historyConfig``: close 1007 naming the unknown field
    reject_history_config: bool = False
    #: Faults at chosen points, on the first ``fault_sessions`` sessions only and never on a
    #: resumed one (so a call meets each fault once): drop the connection after this much of
    #: a scripted reply's audio (the model speaking), or after this much caller speech.
    drop_mid_reply_ms: float | None = None
    drop_mid_speech_ms: float | None = None
    #: send goAway after this much of a scripted reply's audio (then close when time is up)
    go_away_mid_reply_ms: float | None = None
    fault_sessions: int = 1
    #: how a drop looks: None = the TCP connection is cut (no close frame: the client sees
    #: 1006); else a close frame with this code (e.g. 1011)
    drop_code: int | None = None
    #: a setup carrying ``sessionResumption.handle`` is refused (close 1007): an expired or
    #: unknown handle, as the real service answers one
    refuse_resumption: bool = False
    #: refuse (close 1011) a resume while the session the handle came from is still connected
    #: (reported of the real service; the bridge must then close the old socket first)
    refuse_concurrent_resume: bool = False
    #: handles stay valid this long after their session closed (the documented 2 hours)
    handle_ttl_s: float = 7200.0


@dataclass
class CallerTurn:
    index: int
    source: str  # "audio" | "activity" | "text" | "client_content"
    heard: str
    speech_ms: float
    ended_at: float  # the double's clock
    barge_in: bool = False


@dataclass
class AgentReply:
    text: str
    kind: str  # "greeting" | "echo" | "turn" | "fallback"
    started_at: float  # the double's clock when the reply was decided
    first_audio_at: float | None = None
    ended_at: float | None = None
    audio_ms: float = 0.0  # agent audio actually sent
    chunks: int = 0
    completed: bool = False  # turnComplete sent
    interrupted: bool = False


@dataclass
class LiveSessionRecord:
    """What happened on one connection. Light: audio is only counted, never stored."""

    index: int
    path: str
    api_key: str | None
    headers: dict[str, str]
    key_ok: bool
    connected_at: float  # the double's clock
    connected_wall: float  # time.time()
    setup: dict[str, Any] | None = None
    model: str | None = None
    system_instruction: str | None = None
    setup_at: float | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)  # non-audio client frames
    #: Initial history (setup `historyConfig.initialHistoryInClientContent`): {"role", "text"}
    history: list[dict[str, str]] = field(default_factory=list)
    frames_dropped: int = 0
    frame_counts: dict[str, int] = field(default_factory=dict)
    audio_chunks: int = 0
    audio_bytes: int = 0
    audio_ms: float = 0.0
    caller_turns: list[CallerTurn] = field(default_factory=list)
    replies: list[AgentReply] = field(default_factory=list)
    interruptions: list[float] = field(default_factory=list)  # the double's clock
    usage: list[dict[str, Any]] = field(default_factory=list)  # usageMetadata sent
    resumption_handles: list[str] = field(default_factory=list)
    #: the handle this session resumed from (its context restored), if any
    resumed_from: str | None = None
    #: received caller audio, kept only when the double was made with ``record_audio=True``
    audio_pcm: bytearray = field(default_factory=bytearray)
    #: ``audio_bytes`` at each handle issued (what the handle's context includes)
    handle_audio_bytes: dict[str, int] = field(default_factory=dict)
    #: faults injected on this session: ("drop" | "go_away", the double's clock)
    faults: list[tuple[str, float]] = field(default_factory=list)
    go_away_sent_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    close_reason: str | None = None
    error: str | None = None

    @property
    def heard(self) -> list[str]:
        return [t.heard for t in self.caller_turns]

    @property
    def reply_texts(self) -> list[str]:
        return [r.text for r in self.replies]

    @property
    def completed_replies(self) -> int:
        return sum(1 for r in self.replies if r.completed)


# --------------------------------------------------------------------------- helpers


_QUOTED = re.compile(r"«(.+?)»", re.S)


@lru_cache(maxsize=256)
def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _get(d: Any, snake: str) -> Any:
    """``d[snake]`` or ``d[camelCase(snake)]``; None if ``d`` is not a dict or has neither."""
    if not isinstance(d, dict):
        return None
    v = d.get(snake)
    if v is None:
        v = d.get(_camel(snake))
    return v


_RATE_RE = re.compile(r"rate\s*=\s*(\d+)")


@lru_cache(maxsize=64)
def _rate_from_mime(mime: str) -> int:
    m = _RATE_RE.search(mime or "")
    return int(m.group(1)) if m else 16000


def _content_text(content: Any) -> str:
    """Text of a Content dict, a list of them, a Part or a plain string."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(t for t in (_content_text(c) for c in content) if t)
    if isinstance(content, dict):
        text = _get(content, "text")
        if isinstance(text, str):
            return text
        return _content_text(_get(content, "parts"))
    return ""


def _split_pieces(text: str) -> list[str]:
    """Word pieces carrying their leading whitespace; ``"".join(pieces) == text.rstrip()``."""
    return re.findall(r"\s*\S+", text)


def _two_pieces(text: str) -> list[str]:
    pieces = _split_pieces(text)
    if len(pieces) < 2:
        return [text] if text else []
    mid = len(pieces) // 2
    return ["".join(pieces[:mid]), "".join(pieces[mid:])]


def _b64decode(data: str) -> bytes:
    """Standard or URL-safe base64, padding optional (the SDK sends URL-safe base64)."""
    if len(data) % 4:
        data += "=" * (-len(data) % 4)
    return base64.b64decode(data, altchars=b"-_")


def _dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


_GENERATION_COMPLETE = _dumps({"serverContent": {"generationComplete": True}})
_INTERRUPTED = _dumps({"serverContent": {"interrupted": True}})
_SETUP_COMPLETE = _dumps({"setupComplete": {}})


@lru_cache(maxsize=64)
def _reply_plan(
    text: str, chunk_ms: int, audio: bool, transcribe: bool
) -> tuple[tuple[bytes, float], ...]:
    """Pre-serialized frames of one reply as ``(frame, audio_seconds)``.

    Audio mode: ``inlineData`` chunks with ``outputTranscription`` word pieces placed just
    before the chunk in which the word starts. Text mode: ``modelTurn`` text pieces.
    """
    pieces = _split_pieces(text)
    if not audio:
        return tuple(
            (_dumps({"serverContent": {"modelTurn": {"parts": [{"text": p}]}}}), 0.0)
            for p in pieces
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
                (_dumps({"serverContent": {"outputTranscription": {"text": pieces[k]}}}), 0.0)
            )
            k += 1
        data = base64.b64encode(chunk).decode("ascii")
        part = {"inlineData": {"mimeType": AGENT_MIME, "data": data}}
        frames.append((_dumps({"serverContent": {"modelTurn": {"parts": [part]}}}), secs))
        t += secs
    while transcribe and k < len(pieces):
        frames.append(
            (_dumps({"serverContent": {"outputTranscription": {"text": pieces[k]}}}), 0.0)
        )
        k += 1
    return tuple(frames)


def _voiced_windows(pcm: bytes, rate: int) -> tuple[list[bool], float]:
    """Per-window voicing of whole windows of ``pcm`` and the window duration in seconds.

    Only whole windows: the caller (:class:`_WindowVad`) carries the rest to the next chunk, so
    the windows sit on the continuous stream whatever size the chunks are.
    """
    win = max(1, rate * _VAD_WINDOW_MS // 1000)
    n = (len(pcm) // 2) // win * win
    if n == 0:
        return [], win / rate
    x = np.frombuffer(pcm, dtype="<i2", count=n).astype(np.float32)
    w = x.reshape(-1, win)
    voiced = (np.sqrt(np.einsum("ij,ij->i", w, w) / win) >= SPEECH_RMS_THRESHOLD).tolist()
    return voiced, win / rate


class _WindowVad:
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
        win_bytes = 2 * max(1, rate * _VAD_WINDOW_MS // 1000)
        whole = len(pcm) // win_bytes * win_bytes
        self._carry = pcm[whole:]
        return _voiced_windows(pcm[:whole], rate)


# --------------------------------------------------------------------------- one session


class _Session:
    def __init__(self, fake: FakeGeminiLive, ws: ServerConnection, rec: LiveSessionRecord):
        self.fake = fake
        self.ws = ws
        self.rec = rec
        self.script: CallScript = CallScript()
        self.clock = fake.clock
        self.turn_idx = 0
        self.greeted = False
        self.history_open = False  # client content is initial history until turnComplete
        # setup options
        self.audio_out = True
        self.input_transcription = False
        self.output_transcription = False
        self.resumption = False
        self.auto_vad = True
        # caller VAD state
        self.vad = _WindowVad()
        self.in_speech = False
        self.speech_s = 0.0
        self.silence_s = 0.0
        self.barge_in = False
        # agent state
        self.reply_task: asyncio.Task[None] | None = None
        self.current: AgentReply | None = None
        self.playback_end = 0.0
        self.replies_done = 0
        # usage (context grows over the session)
        self.text_in_chars = 0
        self.audio_in_s = 0.0
        self.ctx_out_audio_tokens = 0
        self.ctx_out_text_tokens = 0
        self.go_away_task: asyncio.Task[None] | None = None
        self.deadline_task: asyncio.Task[None] | None = None
        self.dropped = False  # the connection was cut by a fault: ignore what still arrives
        self.faulty = rec.index < fake.failure.fault_sessions

    # ---- plumbing

    async def _send(self, frame: bytes) -> None:
        await self.ws.send(frame)

    def _store(self, msg: dict[str, Any]) -> None:
        if len(self.rec.frames) < MAX_STORED_FRAMES:
            self.rec.frames.append(msg)
        else:
            self.rec.frames_dropped += 1

    def _count(self, kind: str) -> None:
        fc = self.rec.frame_counts
        fc[kind] = fc.get(kind, 0) + 1

    # ---- lifecycle

    async def run(self) -> None:
        ws, fake, rec = self.ws, self.fake, self.rec
        try:
            first = orjson.loads(await ws.recv())
        except ConnectionClosed:
            return
        except orjson.JSONDecodeError:
            await ws.close(1007, "Invalid JSON payload received.")
            return
        if not rec.key_ok or fake.failure.reject_key:
            rec.error = "invalid api key"
            await ws.close(INVALID_KEY_CLOSE_CODE, INVALID_KEY_REASON)
            return
        setup = _get(first, "setup")
        if not isinstance(setup, dict):
            rec.error = "first frame is not setup"
            await ws.close(1007, "Invalid JSON payload: the first message must be setup.")
            return
        self._count("setup")
        if fake.failure.reject_history_config and _get(setup, "history_config") is not None:
            rec.error = "historyConfig refused"
            await ws.close(1007, HISTORY_CONFIG_REFUSED)
            return
        self._apply_setup(setup)
        down_from = fake.failure.fail_sessions_from
        if fake.failure.fail_setup or (down_from is not None and rec.index >= down_from):
            rec.error = "setup failed (fault)"
            await ws.close(INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
            return
        handle = _get(_get(setup, "session_resumption"), "handle")
        if handle:
            refusal = fake._resume_refusal(handle)
            if refusal is not None:
                rec.error = f"resumption refused: {refusal[1]}"
                await ws.close(*refusal)
                return
            self._restore(handle)
        await self._send(_SETUP_COMPLETE)
        if fake.failure.go_away_after_s is not None:
            self.go_away_task = asyncio.create_task(self._go_away_later())
        async for raw in ws:
            if self.dropped:
                return
            try:
                msg = orjson.loads(raw)
            except orjson.JSONDecodeError:
                await ws.close(1007, "Invalid JSON payload received.")
                return
            if isinstance(msg, dict):
                await self._on_frame(msg)

    # ---- resumption and faults

    def _snapshot(self) -> dict[str, Any]:
        """The context a handle issued now restores (the in-flight reply is not part of it)."""
        return {
            "turn_idx": self.turn_idx,
            "greeted": self.greeted,
            "text_in_chars": self.text_in_chars,
            "audio_in_s": self.audio_in_s,
            "ctx_out_audio_tokens": self.ctx_out_audio_tokens,
            "ctx_out_text_tokens": self.ctx_out_text_tokens,
            "history": [dict(h) for h in self.rec.history],
        }

    def _restore(self, handle: str) -> None:
        _, snap = self.fake._handles[handle]
        self.rec.resumed_from = handle
        self.turn_idx = snap["turn_idx"]
        self.greeted = snap["greeted"]
        self.text_in_chars = snap["text_in_chars"]  # it counted the same instruction
        self.audio_in_s = snap["audio_in_s"]
        self.ctx_out_audio_tokens = snap["ctx_out_audio_tokens"]
        self.ctx_out_text_tokens = snap["ctx_out_text_tokens"]
        self.rec.history = [dict(h) for h in snap["history"]]
        self.history_open = False  # a resumed session has its history already
        self.faulty = False  # faults hit a call's first session, not the one resumed after

    async def _issue_handle(self) -> None:
        rec = self.rec
        handle = f"fake-{rec.index}-{self.replies_done}"
        rec.resumption_handles.append(handle)
        rec.handle_audio_bytes[handle] = rec.audio_bytes
        self.fake._handles[handle] = (rec.index, self._snapshot())
        await self.ws.send(
            _dumps({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})
        )

    async def drop(self, code: int | None = None) -> None:
        """Cut this connection now: TCP abort (no close frame) or a close with ``code``."""
        if self.dropped:
            return
        self.dropped = True
        self.rec.faults.append(("drop", self.clock()))
        if code is None:
            self.ws.transport.abort()
        else:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.close(code, INTERNAL_ERROR_REASON)

    async def go_away(self, time_left: str) -> None:
        """Send goAway; close the connection (1011, as the service does) when the time is up."""
        if self.rec.go_away_sent_at is not None or self.dropped:
            return
        self.rec.faults.append(("go_away", self.clock()))
        with contextlib.suppress(ConnectionClosed):
            await self._send(_dumps({"goAway": {"timeLeft": time_left}}))
        self.rec.go_away_sent_at = self.clock()
        seconds = float(time_left.rstrip("s") or 0)
        self.deadline_task = asyncio.create_task(self._close_when_time_is_up(seconds))

    async def _close_when_time_is_up(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close(INTERNAL_ERROR_CODE, DEADLINE_REASON)

    async def shutdown(self) -> None:
        for task in (self.reply_task, self.go_away_task, self.deadline_task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])

    def _apply_setup(self, setup: dict[str, Any]) -> None:
        rec, fake = self.rec, self.fake
        rec.setup = setup
        rec.setup_at = self.clock()
        model = _get(setup, "model")
        rec.model = model if isinstance(model, str) else None
        si = _content_text(_get(setup, "system_instruction"))
        rec.system_instruction = si or None
        self.text_in_chars += len(si)
        gen = _get(setup, "generation_config") or {}
        modalities = _get(gen, "response_modalities") or ["AUDIO"]
        self.audio_out = any(str(m).upper() == "AUDIO" for m in modalities)
        self.input_transcription = _get(setup, "input_audio_transcription") is not None
        self.output_transcription = _get(setup, "output_audio_transcription") is not None
        self.resumption = _get(setup, "session_resumption") is not None
        aad = _get(_get(setup, "realtime_input_config"), "automatic_activity_detection")
        self.auto_vad = not bool(_get(aad, "disabled"))
        history = _get(setup, "history_config")
        self.history_open = bool(_get(history, "initial_history_in_client_content"))
        script = fake.script
        if callable(script):
            script = script(setup)
        self.script = script if isinstance(script, CallScript) else CallScript()

    async def _go_away_later(self) -> None:
        assert self.fake.failure.go_away_after_s is not None
        await asyncio.sleep(self.fake.failure.go_away_after_s)
        await self.go_away(self.fake.failure.go_away_time_left)

    # ---- client frames

    async def _on_frame(self, msg: dict[str, Any]) -> None:
        ri = _get(msg, "realtime_input")
        if ri is not None:
            await self._on_realtime_input(ri, msg)
            return
        cc = _get(msg, "client_content")
        if cc is not None:
            self._count("client_content")
            self._store(msg)
            await self._on_client_content(cc)
            return
        if _get(msg, "tool_response") is not None:
            self._count("tool_response")
        else:
            self._count("other")
        self._store(msg)

    async def _on_realtime_input(self, ri: dict[str, Any], msg: dict[str, Any]) -> None:
        audio = _get(ri, "audio")
        chunks = _get(ri, "media_chunks")
        if audio is None and not chunks:
            self._count("realtime_input")
            self._store(msg)
        else:
            self._count("realtime_input.audio")
        if _get(ri, "activity_start") is not None:
            await self._speech_started()
        if isinstance(audio, dict):
            await self._on_audio(audio)
        if isinstance(chunks, list):
            for blob in chunks:
                if isinstance(blob, dict):
                    await self._on_audio(blob)
        if _get(ri, "activity_end") is not None and self.in_speech:
            await self._end_caller_turn("activity")
        if _get(ri, "audio_stream_end") and self.in_speech:
            await self._end_caller_turn("audio")
        text = _get(ri, "text")
        if isinstance(text, str) and text:
            self.text_in_chars += len(text)
            await self._caller_turn_done("text", heard_override=text)

    async def _on_audio(self, blob: dict[str, Any]) -> None:
        data = _get(blob, "data")
        if not data:
            return
        pcm = _b64decode(data) if isinstance(data, str) else bytes(data)
        rate = _rate_from_mime(_get(blob, "mime_type") or "")
        rec = self.rec
        dur = len(pcm) / (2 * rate)
        rec.audio_chunks += 1
        rec.audio_bytes += len(pcm)
        rec.audio_ms += dur * 1000.0
        self.audio_in_s += dur
        if self.fake.record_audio:
            rec.audio_pcm += pcm
        if not self.auto_vad:
            if self.in_speech:
                self.speech_s += dur
            return
        voiced, w = self.vad.push(pcm, rate)
        eot_s = self.fake.end_of_turn_silence_ms / 1000.0
        for v in voiced:
            if v:
                if not self.in_speech:
                    await self._speech_started()
                self.speech_s += w
                self.silence_s = 0.0
                drop_at = self.fake.failure.drop_mid_speech_ms
                if drop_at is not None and self.faulty and self.speech_s * 1000.0 >= drop_at:
                    await self.drop(self.fake.failure.drop_code)
                    return
            elif self.in_speech:
                self.silence_s += w
                if self.silence_s >= eot_s - 1e-9:
                    await self._end_caller_turn("audio")

    async def _on_client_content(self, cc: dict[str, Any]) -> None:
        if self.history_open:
            self._on_history(cc)
            if not self.history_open and self.resumption:
                await self._issue_handle()  # a resumable point: the context is complete
            return
        text = _content_text(_get(cc, "turns"))
        quoted = _QUOTED.search(text)
        if quoted:  # "say these words: «...»", as a real model would, speaks only the words
            text = quoted.group(1).strip()
        self.text_in_chars += len(text)
        if not _get(cc, "turn_complete"):
            return
        if not self.greeted:
            self.greeted = True
            reply = self.script.greeting or text
            if reply:
                await self._start_reply(reply, "greeting", self.script.greeting_hold)
                return
        if text:
            await self._start_reply(text, "echo")
        else:
            await self._caller_turn_done("client_content")

    def _on_history(self, cc: dict[str, Any]) -> None:
        """Initial history, as the real service takes it: every turn joins the context, none is
        answered (even with ``turnComplete``, and even if the last turn is the model's); a model
        turn means the agent has spoken, so the session does not greet again."""
        turns = _get(cc, "turns")
        for turn in turns if isinstance(turns, list) else [turns]:
            if not isinstance(turn, dict):
                continue
            role = _get(turn, "role")
            role = role if role in ("user", "model") else "user"
            text = _content_text(turn)
            self.rec.history.append({"role": role, "text": text})
            self.text_in_chars += len(text)
            if role == "model":
                self.greeted = True
        if _get(cc, "turn_complete"):
            self.history_open = False
            # A fresh session given the conversation so far carries on the script after it:
            # each model turn beyond the greeting was one scripted reply.
            said = sum(1 for h in self.rec.history if h["role"] == "model")
            self.turn_idx = max(self.turn_idx, said - 1)

    # ---- caller turns and barge-in

    def _generating(self) -> bool:
        """A reply is under way: decided and neither complete nor interrupted (a completed
        reply's task may still be sending its resumption update: that is not speaking)."""
        reply = self.current
        return reply is not None and not reply.completed and not reply.interrupted

    def _agent_busy(self) -> bool:
        return self._generating() or self.clock() < self.playback_end

    async def _speech_started(self) -> None:
        self.in_speech = True
        self.speech_s = 0.0
        self.silence_s = 0.0
        self.barge_in = False
        if self._agent_busy():
            self.barge_in = True
            await self._interrupt()

    async def _interrupt(self) -> None:
        task = self.reply_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.wait([task])
        reply = self.current
        now = self.clock()
        if reply is not None:
            reply.interrupted = True
            if not reply.completed:
                reply.ended_at = now
                self._add_output_context(reply)
        self.playback_end = 0.0
        self.rec.interruptions.append(now)
        with contextlib.suppress(ConnectionClosed):
            await self._send(_INTERRUPTED)

    async def _end_caller_turn(self, source: str) -> None:
        self.in_speech = False
        self.silence_s = 0.0
        await self._caller_turn_done(source)

    async def _caller_turn_done(self, source: str, heard_override: str | None = None) -> None:
        script = self.script
        hold: Hold | None = None
        if self.turn_idx < len(script.turns):
            st = script.turns[self.turn_idx]
            heard, reply, kind, hold = st.heard, st.reply, "turn", st.hold
        else:
            heard, reply, kind = script.fallback_heard, script.fallback_reply, "fallback"
        self.turn_idx += 1
        if heard_override is not None:
            heard = heard_override
        self.rec.caller_turns.append(
            CallerTurn(
                index=len(self.rec.caller_turns),
                source=source,
                heard=heard,
                speech_ms=self.speech_s * 1000.0 if source in ("audio", "activity") else 0.0,
                ended_at=self.clock(),
                barge_in=self.barge_in,
            )
        )
        self.barge_in = False
        self.speech_s = 0.0
        if heard and source in ("audio", "activity") and self.input_transcription:
            for piece in _two_pieces(heard):
                await self._send(_dumps({"serverContent": {"inputTranscription": {"text": piece}}}))
        await self._start_reply(reply, kind, hold)

    # ---- agent replies

    async def _start_reply(self, text: str, kind: str, hold: Hold | None = None) -> None:
        task = self.reply_task
        if task is not None and not task.done():
            if self._generating():
                await self._interrupt()
            else:  # complete: only its bookkeeping frames are left to send
                await asyncio.wait([task])
        reply = AgentReply(text=text, kind=kind, started_at=self.clock())
        self.rec.replies.append(reply)
        self.current = reply
        self.reply_task = asyncio.create_task(self._speak(reply, hold))

    def _add_output_context(self, reply: AgentReply) -> int:
        if self.audio_out:
            tokens = round(reply.audio_ms / 1000.0 * AUDIO_TOKENS_PER_S)
            self.ctx_out_audio_tokens += tokens
        else:
            tokens = math.ceil(len(reply.text) / 4)
            self.ctx_out_text_tokens += tokens
        return tokens

    def _usage(self, reply: AgentReply) -> dict[str, Any]:
        text_in = math.ceil(self.text_in_chars / 4) + self.ctx_out_text_tokens
        audio_in = round(self.audio_in_s * AUDIO_TOKENS_PER_S) + self.ctx_out_audio_tokens
        prompt = text_in + audio_in
        out = self._add_output_context(reply)
        modality = "AUDIO" if self.audio_out else "TEXT"
        return {
            "promptTokenCount": prompt,
            "responseTokenCount": out,
            "totalTokenCount": prompt + out,
            "promptTokensDetails": [
                {"modality": "TEXT", "tokenCount": text_in},
                {"modality": "AUDIO", "tokenCount": audio_in},
            ],
            "responseTokensDetails": [{"modality": modality, "tokenCount": out}],
        }

    async def _speak(self, reply: AgentReply, hold: Hold | None = None) -> None:
        fake, ws = self.fake, self.ws
        try:
            if self.script.reply_delay_ms > 0:
                await asyncio.sleep(self.script.reply_delay_ms / 1000.0)
            plan = _reply_plan(reply.text, fake.chunk_ms, self.audio_out, self.output_transcription)
            pace_start: float | None = None  # real time: pacing is against the event loop
            sent_s = 0.0
            for frame, secs in plan:
                if secs:
                    if hold is not None and sent_s * 1000.0 >= hold.after_ms - 1e-6:
                        await hold.stop_here()
                        hold = None
                        if pace_start is not None:  # carry on pacing from now
                            pace_start = time.monotonic() - sent_s
                    if pace_start is None:
                        pace_start = time.monotonic()
                        reply.first_audio_at = self.clock()
                    elif fake.realtime:
                        wait = pace_start + sent_s - time.monotonic()
                        if wait > 0:
                            await asyncio.sleep(wait)
                    now = self.clock()
                    if self.playback_end < now:
                        self.playback_end = now
                    self.playback_end += secs
                    sent_s += secs
                    reply.chunks += 1
                    reply.audio_ms += secs * 1000.0
                await ws.send(frame)
                if secs and self.faulty and reply.kind in ("turn", "fallback"):
                    failure = fake.failure
                    at = failure.go_away_mid_reply_ms
                    if at is not None and sent_s * 1000.0 >= at:
                        await self.go_away(failure.go_away_time_left)
                    at = failure.drop_mid_reply_ms
                    if at is not None and sent_s * 1000.0 >= at:
                        await self.drop(failure.drop_code)
                        return
            if hold is not None:  # the reply was shorter than the hold: stop before its end
                await hold.stop_here()
            await ws.send(_GENERATION_COMPLETE)
            usage = self._usage(reply)
            reply.completed = True
            reply.ended_at = self.clock()
            self.rec.usage.append(usage)
            await ws.send(_dumps({"serverContent": {"turnComplete": True}, "usageMetadata": usage}))
            self.replies_done += 1
            if self.resumption:
                await self._issue_handle()
            n = fake.failure.close_after_turns
            if n is not None and self.replies_done >= n:
                await ws.close(INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
        except ConnectionClosed:
            pass


# --------------------------------------------------------------------------- the server

ScriptArg = CallScript | Callable[[dict[str, Any]], CallScript] | None


class FakeGeminiLive(Double):
    """In-process Gemini Live double over TLS WebSocket (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        script: ScriptArg = None,
        realtime: bool = False,
        chunk_ms: int = 40,
        end_of_turn_silence_ms: int = 500,
        failure: Failure | None = None,
        tls: TestCA | None = None,
        clock: Callable[[], float] = time.monotonic,
        record_audio: bool = False,
    ) -> None:
        self.api_key = api_key  # None: any non-empty key is accepted
        self.script: ScriptArg = script
        self.realtime = realtime
        self.chunk_ms = chunk_ms
        self.end_of_turn_silence_ms = end_of_turn_silence_ms
        self.failure = failure or Failure()
        #: Now, for the playback window (barge-in) and the records' timestamps; realtime pacing
        #: stays on real time.
        self.clock = clock
        self.tls = tls or TestCA()
        self._server_ssl = self.tls.server_ssl_context()
        self._client_ssl = self.tls.client_ssl_context()
        self.sessions: list[LiveSessionRecord] = []
        #: keep every session's received caller audio (``LiveSessionRecord.audio_pcm``)
        self.record_audio = record_audio
        #: handle -> (the session that issued it, the context it restores)
        self._handles: dict[str, tuple[int, dict[str, Any]]] = {}
        self._live: dict[int, _Session] = {}
        self.rejected_paths: list[str] = []
        self._session_added = asyncio.Event()
        self._session_closed = asyncio.Event()
        self._server: Server | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    # ---- properties

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeGeminiLive is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{self.port}"

    @property
    def client_ssl_context(self) -> ssl.SSLContext:
        return self._client_ssl

    @property
    def ca_file(self) -> str:
        return self.tls.ca_file

    # ---- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeGeminiLive:
        self._host = host
        self._server = await serve(
            self._handler,
            host,
            port,
            ssl=self._server_ssl,
            process_request=self._process_request,
            compression=None,
            max_size=2**24,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def answer_delay_ms(self, script: CallScript | None = None) -> float:
        """How long the double itself waits, after the caller's speech ends in the audio it
        receives, before it sends the first audio of its reply: the end-of-turn silence plus the
        script's think time (``script``, else this double's script if it is a plain
        :class:`CallScript`, else the defaults). A bench subtracts this from the caller-perceived
        response time to get what the bridge adds."""
        if script is None:
            script = self.script if isinstance(self.script, CallScript) else CallScript()
        return float(self.end_of_turn_silence_ms) + float(script.reply_delay_ms)

    async def drop(self, index: int = -1, code: int | None = None) -> None:
        """Cut session ``index`` (default: the newest) now, as a fault: no close frame, or a close
        with ``code``."""
        session = self._live.get(self.sessions[index].index)
        if session is not None:
            await session.drop(code)

    async def go_away(self, index: int = -1, time_left: str = "10s") -> None:
        """Send goAway on session ``index`` now; it is closed when ``time_left`` is up."""
        session = self._live.get(self.sessions[index].index)
        if session is not None:
            await session.go_away(time_left)

    def _resume_refusal(self, handle: str) -> tuple[int, str] | None:
        """Why a setup resuming from ``handle`` is refused, as (close code, reason); None: OK."""
        found = self._handles.get(handle)
        if self.failure.refuse_resumption or found is None:
            return (1007, INVALID_HANDLE_REASON)
        source = self.sessions[found[0]]
        if source.closed_at is None:
            if self.failure.refuse_concurrent_resume:
                return (INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
        elif self.clock() - source.closed_at > self.failure.handle_ttl_s:
            return (1007, INVALID_HANDLE_REASON)
        return None

    async def wait_closed(self, index: int, within_s: float = 5.0) -> None:
        """Wait until session ``index`` has closed (TimeoutError after ``within_s``)."""
        async with asyncio.timeout(within_s):
            while len(self.sessions) <= index or self.sessions[index].closed_at is None:
                self._session_closed.clear()
                await self._session_closed.wait()

    async def wait_for_sessions(self, n: int, within_s: float = 5.0) -> None:
        """Wait until at least ``n`` sessions have connected (TimeoutError after ``within_s``)."""
        async with asyncio.timeout(within_s):
            while len(self.sessions) < n:
                self._session_added.clear()
                await self._session_added.wait()

    # ---- websockets callbacks

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self.failure.accept_delay_s > 0:
            await asyncio.sleep(self.failure.accept_delay_s)
        if self.failure.hold_handshake is not None:
            await self.failure.hold_handshake.stop_here()
        path = urlsplit(request.path).path
        if not path.endswith(PATH_SUFFIX):
            self.rejected_paths.append(request.path)
            return connection.respond(404, "Not Found\n")
        return None

    def _key_of(self, request: Request) -> str | None:
        key = request.headers.get("x-goog-api-key")
        if key:
            return key
        keys = parse_qs(urlsplit(request.path).query).get("key")
        return keys[0] if keys else None

    def _key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        return self.api_key is None or key == self.api_key

    async def _handler(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        key = self._key_of(request)
        rec = LiveSessionRecord(
            index=len(self.sessions),
            path=request.path,
            api_key=key,
            headers={k.lower(): v for k, v in request.headers.raw_items()},
            key_ok=self._key_ok(key),
            connected_at=self.clock(),
            connected_wall=time.time(),
        )
        self.sessions.append(rec)
        self._session_added.set()
        session = _Session(self, ws, rec)
        self._live[rec.index] = session
        try:
            await session.run()
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug in the double: record it and fail the session
            log.exception("FakeGeminiLive session %d failed", rec.index)
            rec.error = repr(exc)
            with contextlib.suppress(Exception):
                await ws.close(INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
        finally:
            self._live.pop(rec.index, None)
            await session.shutdown()
            rec.closed_at = self.clock()
            if ws.close_code is None:
                with contextlib.suppress(Exception):
                    await ws.close()
            rec.close_code = ws.close_code
            rec.close_reason = ws.close_reason
            self._session_closed.set()


async def serve_forever(host: str = "127.0.0.1", port: int = 0, **kw: Any) -> None:
    """Run a :class:`FakeGeminiLive` until cancelled (prints its base URL and CA file)."""
    fake = FakeGeminiLive(**kw)
    await fake.start(host, port)
    print(f"FakeGeminiLive on {fake.base_url} (CA file: {fake.ca_file})", flush=True)
    try:
        await asyncio.Future()
    finally:
        await fake.stop()
