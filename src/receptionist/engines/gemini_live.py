"""Gemini Live through the official google-genai SDK (`client.aio.live.connect`).

One `genai.Client` per process (it holds the HTTP/TLS set-up); one Live session per call. The SDK's
`receive()` stops after every `turnComplete`, so `events()` loops over it. A `goAway` is answered
by opening a new session with the latest resumption handle and swapping it in, so a long call
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
from google.genai import errors, types

from receptionist.engines.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    EngineClosed,
    EngineError,
    EngineEvent,
    EngineRequest,
    GoingAway,
    Interrupted,
    TurnComplete,
    Usage,
)

log = logging.getLogger(__name__)

INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
_AUDIO_MIME = f"audio/pcm;rate={INPUT_RATE}"


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


def _parse_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value.rstrip("s"))
    except ValueError:
        return None


def _modality_tokens(details: list[types.ModalityTokenCount] | None) -> tuple[int, int]:
    audio = text = 0
    for d in details or ():
        modality = str(getattr(d.modality, "value", d.modality) or "").upper()
        if modality == "AUDIO":
            audio += d.token_count or 0
        elif modality == "TEXT":
            text += d.token_count or 0
    return audio, text


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
        self._stack: AsyncExitStack | None = None
        self._handle: str | None = None
        self._resume_pending = False
        self._closing = False

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
            system_instruction=self._request.system_instruction,
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

    async def connect(self) -> None:
        self._stack, self._session = await self._open()

    async def say(self, text: str) -> None:
        await self._session.send_client_content(
            turns=types.Content(role="user", parts=[types.Part(text=text)]), turn_complete=True
        )

    async def send_audio(self, pcm: bytes) -> None:
        await self._session.send_realtime_input(audio=types.Blob(data=pcm, mime_type=_AUDIO_MIME))

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            session = self._session
            try:
                while True:
                    async for msg in session.receive():
                        for event in self._map(msg):
                            yield event
                            if isinstance(event, GoingAway):
                                # Swap sessions between turns, not in the middle of a reply.
                                self._resume_pending = True
                            elif isinstance(event, TurnComplete) and self._resume_pending:
                                await self._resume()
                    if session is not self._session:
                        break  # resumed: continue on the new session
            except (errors.APIError, OSError, ValueError) as exc:
                if self._closing:
                    yield EngineClosed()
                    return
                if session is not self._session:
                    continue  # the old session closed after we swapped in a new one
                if self._resume_pending and await self._resume():
                    continue  # the server closed as announced; carry on where it left off
                yield EngineClosed(error=f"Gemini Live session ended: {_describe(exc)}")
                return

    def _map(self, msg: types.LiveServerMessage) -> list[EngineEvent]:
        out: list[EngineEvent] = []
        sc = msg.server_content
        if sc is not None:
            if sc.interrupted:
                out.append(Interrupted())
            if sc.input_transcription is not None and sc.input_transcription.text:
                out.append(CallerTranscript(sc.input_transcription.text))
            if sc.model_turn is not None:
                for part in sc.model_turn.parts or ():
                    if part.inline_data is not None and part.inline_data.data:
                        out.append(AgentAudio(part.inline_data.data))
            if sc.output_transcription is not None and sc.output_transcription.text:
                out.append(AgentTranscript(sc.output_transcription.text))
            if sc.turn_complete:
                out.append(TurnComplete())
        um = msg.usage_metadata
        if um is not None:
            in_audio, in_text = _modality_tokens(um.prompt_tokens_details)
            out_audio, out_text = _modality_tokens(um.response_tokens_details)
            out.append(
                Usage(
                    model=self.model,
                    input_tokens=um.prompt_token_count or 0,
                    output_tokens=um.response_token_count or 0,
                    total_tokens=um.total_token_count or 0,
                    input_audio_tokens=in_audio,
                    input_text_tokens=in_text,
                    output_audio_tokens=out_audio,
                    output_text_tokens=out_text,
                )
            )
        sru = msg.session_resumption_update
        if sru is not None and sru.resumable and sru.new_handle:
            self._handle = sru.new_handle
        if msg.go_away is not None:
            out.append(GoingAway(_parse_seconds(msg.go_away.time_left)))
        return out

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


def _describe(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        text = "timed out"
    return f"{type(exc).__name__}: {text}"[:300]
