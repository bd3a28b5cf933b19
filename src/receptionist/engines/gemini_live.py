"""Gemini Live through the official google-genai SDK (`client.aio.live.connect`).

One `genai.Client` per process (it holds the HTTP/TLS set-up); one Live session per call, opened
by the SDK (URL, key, setup frame, errors) which also sends the text turns. Audio frames and
server messages go over the SDK session's own socket through `live_wire` (the SDK's per-frame
pydantic round trips were ~40 % of the bridge's CPU). A `goAway` is answered by opening a new
session with the latest resumption handle and swapping it in between turns, so a long call
survives the server's connection limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google import genai
from google.genai import types
from websockets.exceptions import ConnectionClosed

from receptionist.engines.base import (
    EngineClosed,
    EngineError,
    EngineEvent,
    EngineRequest,
    GoingAway,
    TurnComplete,
)
from receptionist.engines.live_wire import audio_frame, parse_server_message

log = logging.getLogger(__name__)

INPUT_RATE = 16_000
OUTPUT_RATE = 24_000


@dataclass(frozen=True)
class GeminiLiveConfig:
    api_key: str
    model: str
    api_version: str = "v1beta"
    base_url: str | None = None
    ca_file: Path | None = None
    connect_timeout_s: float = 10.0
    default_voice: str | None = None


def make_client(cfg: GeminiLiveConfig) -> genai.Client:
    """A client for the real service, or for any endpoint given by base_url (the local double)."""
    opts: dict[str, Any] = {"api_version": cfg.api_version}
    if cfg.base_url:
        opts["base_url"] = cfg.base_url
    if cfg.ca_file:
        ctx = ssl.create_default_context(cafile=str(cfg.ca_file))
        # `ssl` reaches websockets.connect for Live; `verify` keeps the HTTP client consistent.
        opts["async_client_args"] = {"ssl": ctx, "verify": ctx}
    return genai.Client(api_key=cfg.api_key, http_options=types.HttpOptions(**opts))


# Models whose Live setup refused `historyConfig` in this process: their calls greeted from the
# cache are told so in the system instruction instead (see GeminiLiveEngine.connect).
_NO_INITIAL_HISTORY: set[str] = set()


def greeted_note(text: str) -> str:
    """The system instruction's last words when the greeting was played from the cache and the
    model takes no initial history."""
    return (
        f"\n\nThe call is already under way: you have just greeted the caller with «{text}». "
        "Do not greet again; listen, and answer what the caller says.\n"
    )


def say_instruction(text: str) -> str:
    """How we ask the voice model to speak fixed words (greeting, prompts, goodbyes)."""
    return f"(Say this to the caller now, word for word, then wait: «{text}»)"


class GeminiLiveEngine:
    name = "gemini-live"
    input_rate = INPUT_RATE
    output_rate = OUTPUT_RATE

    def __init__(self, client: genai.Client, cfg: GeminiLiveConfig, request: EngineRequest) -> None:
        self._client = client
        self._cfg = cfg
        self._request = request
        self.model = request.model or cfg.model
        self._session: Any = None
        self._ws: Any = None
        self._stack: AsyncExitStack | None = None
        self._handle: str | None = None
        self._resume_pending = False
        self._closing = False
        self._greeted: str | None = None  # the greeting the caller heard from the bridge's cache
        self._history = False  # this session opens with the greeting as initial history
        voice = request.voice or cfg.default_voice or "default"
        self.voice_id = f"{self.name}:{self.model}:{voice}"

    def _connect_config(self) -> types.LiveConnectConfig:
        voice = self._request.voice or self._cfg.default_voice
        speech = (
            types.SpeechConfig(
                voice_config=types.VoiceConfig(
                    prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice)
                )
            )
            if voice
            else None
        )
        return types.LiveConnectConfig(
            response_modalities=[types.Modality.AUDIO],
            system_instruction=self._system_instruction(),
            speech_config=speech,
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(handle=self._handle),
            context_window_compression=types.ContextWindowCompressionConfig(
                sliding_window=types.SlidingWindow()
            ),
            realtime_input_config=types.RealtimeInputConfig(
                automatic_activity_detection=types.AutomaticActivityDetection(
                    start_of_speech_sensitivity=types.StartSensitivity.START_SENSITIVITY_HIGH,
                    end_of_speech_sensitivity=types.EndSensitivity.END_SENSITIVITY_HIGH,
                    prefix_padding_ms=20,
                    silence_duration_ms=500,
                )
            ),
            # The greeting was played from the cache: the session starts from a history that
            # already holds it, and that history must not make the model speak. A resumed
            # session (a handle) has its history on the server already.
            history_config=(
                types.HistoryConfig(initial_history_in_client_content=True)
                if self._history and self._handle is None
                else None
            ),
        )

    async def _open(self) -> tuple[AsyncExitStack, Any]:
        stack = AsyncExitStack()
        try:
            session = await asyncio.wait_for(
                stack.enter_async_context(
                    self._client.aio.live.connect(model=self.model, config=self._connect_config())
                ),
                timeout=self._cfg.connect_timeout_s,
            )
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, asyncio.CancelledError):
                raise
            raise EngineError(f"Gemini Live connect failed: {_describe(exc)}") from exc
        return stack, session

    def greeting_played(self, text: str) -> None:
        """Before connect(): the caller hears `text` from the cache; the session opens with it as
        said (see GreetsFromCache)."""
        self._greeted = text

    def _system_instruction(self) -> str:
        text = self._request.system_instruction
        if self._greeted is not None and not self._history:  # resumed sessions: the same
            text += greeted_note(self._greeted)
        return text

    async def connect(self) -> None:
        self._history = self._greeted is not None and self.model not in _NO_INITIAL_HISTORY
        try:
            self._stack, self._session = await self._open()
        except EngineError as exc:
            if not self._history:
                raise
            # A model (or API version) whose setup refuses `historyConfig`: once more without
            # it, the greeting told in the system instruction; the process remembers the model.
            log.warning("Live setup with initial history failed (%s); retrying without", exc)
            self._history = False
            self._stack, self._session = await self._open()
            _NO_INITIAL_HISTORY.add(self.model)
        self._ws = _socket_of(self._session)
        if self._history and self._greeted is not None:
            await self._send_greeting_history(self._greeted)

    async def _send_greeting_history(self, text: str) -> None:
        """The same conversation a spoken greeting leaves behind (our request, the model's
        words), sent as the session's initial history: with `initial_history_in_client_content`
        the server takes client content up to `turn_complete` as history and does not answer
        it, so the model neither greets again nor forgets that it did."""
        try:
            await self._session.send_client_content(
                turns=[
                    types.Content(role="user", parts=[types.Part(text=say_instruction(text))]),
                    types.Content(role="model", parts=[types.Part(text=text)]),
                ],
                turn_complete=True,
            )
        except (ConnectionClosed, OSError) as exc:
            await self.close()
            raise EngineError(f"Gemini Live connect failed: {_describe(exc)}") from exc

    async def say(self, text: str, kind: str | None = None) -> None:
        await self._session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text=say_instruction(text))]),
            turn_complete=True,
        )

    async def send_audio(self, pcm: bytes) -> None:
        await self._ws.send(audio_frame(pcm))

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            session, ws = self._session, self._ws
            try:
                while session is self._session:
                    parsed = parse_server_message(await ws.recv(decode=False), self.model)
                    if parsed.resumption_handle:
                        self._handle = parsed.resumption_handle
                    for event in parsed.events:
                        yield event
                        if isinstance(event, GoingAway):
                            # Swap sessions between turns, not in the middle of a reply.
                            self._resume_pending = True
                        elif isinstance(event, TurnComplete) and self._resume_pending:
                            await self._resume()
            except (ConnectionClosed, OSError, ValueError) as exc:
                if self._closing:
                    yield EngineClosed()
                    return
                if session is not self._session:
                    continue  # the old session closed after we swapped in a new one
                if self._resume_pending and await self._resume():
                    continue  # the server closed as announced; carry on where it left off
                yield EngineClosed(error=f"Gemini Live session ended: {_describe(exc)}")
                return

    async def _resume(self) -> bool:
        """Swap in a new session resumed from the last handle; keep the old one on failure."""
        if not self._handle:
            log.warning("goAway without a resumption handle; the session will end when closed")
            return False
        try:
            stack, session = await self._open()
        except EngineError as exc:
            log.warning("session resumption failed: %s", exc)
            return False
        self._resume_pending = False
        old = self._stack
        self._stack, self._session = stack, session
        self._ws = _socket_of(session)
        if old is not None:
            with contextlib.suppress(Exception):
                await old.aclose()
        return True

    async def close(self) -> None:
        self._closing = True
        stack, self._stack = self._stack, None
        if stack is not None:
            with contextlib.suppress(Exception):
                await stack.aclose()


def _socket_of(session: Any) -> Any:
    """The SDK session's WebSocket, used for the per-frame path (see live_wire)."""
    ws = getattr(session, "_ws", None)
    if ws is None or not hasattr(ws, "recv"):
        raise EngineError("this google-genai version exposes no Live socket; pin google-genai")
    return ws


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ConnectionClosed):
        frame = exc.rcvd
        code, reason = (frame.code, frame.reason) if frame else (1006, "connection lost")
        return f"closed {code} {reason}".strip()[:300]
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        text = "timed out"
    return f"{type(exc).__name__}: {text}"[:300]
