"""Gemini Live through the official google-genai SDK (`client.aio.live.connect`).

One `genai.Client` per process (it holds the HTTP/TLS set-up); one Live session per call, opened
by the SDK (URL, key, setup frame, errors) which also sends the text turns. Audio frames and
server messages go over the SDK session's own socket through `live_wire` (the SDK's per-frame
pydantic round trips were ~40 % of the bridge's CPU).

A lost session does not end the call. After `goAway` the session is replaced at the first
moment between turns with a fresh resumption handle, or just before the announced time is up
whatever the model is doing; a connection that drops or errors is replaced at once. The new
session resumes from the latest handle (`sessionResumptionUpdate` with `resumable: true`; the
service keeps them ~2 h); if there is none, or the service refuses it, a fresh session is told
the conversation so far as initial history. Tries are bounded (attempts and a deadline, with
backoff), then the call ends through the engine-failure path. A handle's state holds neither
the model's turn in flight nor the caller audio sent after it, so the caller's audio since the
latest handle is kept (bounded; long silences kept short) and sent to the new session first,
in order, with what the caller says while no session is up; the lost turn is reported as cut
(`Reconnected.cut_turn`) and the new session answers afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google import genai
from google.genai import types
from websockets.exceptions import ConnectionClosed

from receptionist.audio import StreamResampler, rms, ulaw_decode, ulaw_encode
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
    Reconnected,
    ToolSpec,
    TurnComplete,
)
from receptionist.engines.live_wire import ToolCall, audio_frame, parse_server_message
from receptionist.observe import metrics

log = logging.getLogger(__name__)

INPUT_RATE = 16_000
OUTPUT_RATE = 24_000
# After goAway the session is switched at the first moment between turns with a fresh handle,
# or this long before the announced time is up whatever the model is doing.
GO_AWAY_MARGIN_S = 1.0
GO_AWAY_DEFAULT_S = 10.0  # a goAway without timeLeft
RECONNECT_BACKOFF_S = 0.2  # the first wait between tries to open a replacement, then doubled
RECONNECT_BACKOFF_MAX_S = 2.0
MAX_LOG_TURNS = 60  # turns of text kept for a fresh replacement session's history
# The replay keeps at most this much of each stretch of caller silence (RMS below the level):
# enough for the model to end a turn the same way, while the buffer holds mostly speech
# (a caller listening to a long answer would otherwise fill it with silence, 32 KB a second).
REPLAY_SILENCE_KEEP_S = 1.0
REPLAY_SILENCE_RMS = 500.0
MAX_TOOL_TASKS = 8  # tool calls running at once on one call; more are answered "busy"
TOOL_TIMES_KEPT = 256  # round trips kept per call (bench figures)


def _count_reconnect(outcome: str) -> None:
    """A session replaced, by outcome: "resumed" (from a handle), "fresh" (the handle was
    refused or there was none: the conversation so far sent as history), "failed" (given up;
    the call ended)."""
    metrics.ENGINE_RESUMPTIONS.labels("gemini-live", outcome).inc()


@dataclass(frozen=True)
class GeminiLiveConfig:
    api_key: str
    model: str
    api_version: str = "v1beta"
    base_url: str | None = None
    ca_file: Path | None = None
    connect_timeout_s: float = 10.0
    default_voice: str | None = None
    reconnect_attempts: int = 4
    reconnect_deadline_s: float = 8.0
    resume_buffer_s: float = 10.0


def make_client(cfg: GeminiLiveConfig) -> genai.Client:
    """A client for the real service, or for any endpoint given by base_url (the local double)."""
    opts: dict[str, Any] = {"api_version": cfg.api_version}
    if cfg.base_url:
        opts["base_url"] = cfg.base_url
    # google-genai passes on to websockets.connect the arguments it accepts. Without
    # `compression=None` the Live socket offers permessage-deflate; a server that accepted it
    # would cost each call more CPU than the whole bridge (deflating the caller's base64 audio)
    # and ~190 KB of zlib state, to save a quarter of the bytes (bench/ws_deflate.py).
    client_args: dict[str, Any] = {"compression": None}
    if cfg.ca_file:
        ctx = ssl.create_default_context(cafile=str(cfg.ca_file))
        # `ssl` reaches websockets.connect for Live; `verify` keeps the HTTP client consistent.
        client_args |= {"ssl": ctx, "verify": ctx}
    opts["async_client_args"] = client_args
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


def conversation_note(turns: list[tuple[str, str]]) -> str:
    """The system instruction's last words for a fresh session replacing a lost one, on a model
    that takes no initial history."""
    lines = "\n".join(f"{'Caller' if r == 'user' else 'You'}: {t}" for r, t in turns)
    return (
        "\n\nThe call is already under way; the line dropped for a moment. The conversation so"
        f" far:\n{lines}\nDo not greet again; carry on from there.\n"
    )


def say_instruction(text: str) -> str:
    """How we ask the voice model to speak fixed words (greeting, prompts, goodbyes)."""
    return f"(Say this to the caller now, word for word, then wait: «{text}»)"


class _Refused(EngineError):
    """The service answered the setup with a close that retrying the same setup cannot fix
    (1007 invalid argument, 1008 policy): e.g. a resumption handle it does not honour."""


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
        self._closing = False
        self._greeted: str | None = None  # the greeting the caller heard from the bridge's cache
        self._history = False  # this session opens with the greeting as initial history
        voice = request.voice or cfg.default_voice or "default"
        self.voice_id = f"{self.name}:{self.model}:{voice}"
        # Replacing the session (goAway, a dropped connection). The caller's audio since the
        # last resumption handle is kept (bounded): the handle's state does not include it, so
        # a resumed session is sent it again first, in order; while no session is up it only
        # goes there. It is kept small, as mu-law at the caller's own rate (a telephone line's
        # 8 kHz audio upsampled to 16 carries nothing above 4 kHz): a byte per caller sample,
        # a quarter of the 16-bit 16 kHz PCM sent (it was ~95 KB a call at 100 calls).
        self._switching = False
        self._replay: deque[bytes] = deque()
        rate = request.caller_sample_rate
        self._replay_step = max(1, INPUT_RATE // rate) if rate else 1
        self._replay_rate = INPUT_RATE // self._replay_step  # bytes kept a second
        self._replay_bytes = 0
        self._replay_first = 0  # sequence number of _replay[0]
        self._replay_next = 0  # sequence number of the next chunk appended
        self._replay_cap = int(cfg.resume_buffer_s * self._replay_rate)
        self._replay_dropped = 0  # bytes kept, then lost to the cap, since the last handle
        self._replay_quiet = 0  # bytes of the current stretch of caller silence
        self._replay_quiet_keep = int(REPLAY_SILENCE_KEEP_S * INPUT_RATE * 2)
        self._go_away_at: float | None = None  # switch by then (monotonic), turn or not
        self._model_busy = False  # a model turn is being produced
        self._output_since_handle = False  # model output since the last handle
        self._caller_since_handle = False  # caller transcription since the last handle
        self._mute_caller = False  # the new session re-hears a question already transcribed
        self._pending_says: list[str] = []  # asked for while no session was up
        # The conversation so far as text (committed at each turn's end), for a fresh session
        # when the service does not honour the handle; the open turn's pieces beside it.
        self._log: list[tuple[str, str]] = []
        self._says_open: list[str] = []
        self._caller_open: list[str] = []
        self._agent_open: list[str] = []
        self._fail_reason = ""
        self.reconnects = 0  # sessions replaced on this call
        self._unsettled = 0  # replacements since the model last finished a turn
        self.audio_dropped_ms = 0.0  # caller audio lost to the replay cap, whole call
        # Tool calls run as tasks of their own (never on the audio path), by call id, so a
        # `toolCallCancellation` can stop one; each answer goes to the session that asked.
        self._tools = request.tools
        self._tool_tasks: dict[str, asyncio.Task[None]] = {}
        #: `toolCall` received -> `toolResponse` sent, ms (the latest TOOL_TIMES_KEPT)
        self.tool_round_trips_ms: deque[float] = deque(maxlen=TOOL_TIMES_KEPT)

    def _connect_config(self, handle: str | None, history: bool) -> types.LiveConnectConfig:
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
            system_instruction=self._system_instruction(history),
            speech_config=speech,
            input_audio_transcription=types.AudioTranscriptionConfig(),
            output_audio_transcription=types.AudioTranscriptionConfig(),
            session_resumption=types.SessionResumptionConfig(handle=handle),
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
            # The conversation so far (the greeting played from the cache, or the turns before
            # a fresh replacement session) is sent as initial history, which must not make the
            # model speak. A resumed session (a handle) has its history on the server already.
            history_config=(
                types.HistoryConfig(initial_history_in_client_content=True)
                if history and handle is None and self.model not in _NO_INITIAL_HISTORY
                else None
            ),
            tools=_declarations(self._tools.specs) if self._tools is not None else None,
        )

    async def _open(
        self, handle: str | None = None, history: bool = False, timeout_s: float | None = None
    ) -> tuple[AsyncExitStack, Any]:
        stack = AsyncExitStack()
        config = self._connect_config(handle, history)
        try:
            session = await asyncio.wait_for(
                stack.enter_async_context(
                    self._client.aio.live.connect(model=self.model, config=config)
                ),
                timeout=timeout_s or self._cfg.connect_timeout_s,
            )
        except BaseException as exc:
            await stack.aclose()
            if isinstance(exc, asyncio.CancelledError):
                raise
            kind = _Refused if getattr(exc, "code", None) in (1007, 1008) else EngineError
            raise kind(f"Gemini Live connect failed: {_describe(exc)}") from exc
        return stack, session

    def greeting_played(self, text: str) -> None:
        """Before connect(): the caller hears `text` from the cache; the session opens with it as
        said (see GreetsFromCache)."""
        self._greeted = text
        self._log = [("user", say_instruction(text)), ("model", text)]

    def _system_instruction(self, history: bool) -> str:
        text = self._request.system_instruction
        if self._tools is not None and self._tools.specs:
            text += self._tools.instruction
        if history and self.model in _NO_INITIAL_HISTORY and self._log:
            # a fresh replacement session on a model that takes no initial history
            return text + conversation_note(self._log)
        if self._greeted is not None and not self._history:  # resumed sessions: the same
            text += greeted_note(self._greeted)
        return text

    async def connect(self) -> None:
        self._history = self._greeted is not None and self.model not in _NO_INITIAL_HISTORY
        try:
            self._stack, self._session = await self._open(history=self._history)
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
        if self._history and self._log:
            try:
                await self._send_history(self._session)
            except (ConnectionClosed, OSError) as exc:
                await self.close()
                raise EngineError(f"Gemini Live connect failed: {_describe(exc)}") from exc

    async def _send_history(self, session: Any) -> None:
        """The conversation so far as the session's initial history: with
        `initial_history_in_client_content` the server takes client content up to
        `turn_complete` as history and does not answer it, so the model neither greets again
        nor forgets what was said."""
        turns = [
            types.Content(role=role, parts=[types.Part(text=text)]) for role, text in self._log
        ]
        await session.send_client_content(turns=turns, turn_complete=True)

    async def say(self, text: str, kind: str | None = None) -> None:
        if self._switching:
            self._pending_says.append(text)
            return
        self._says_open.append(text)
        try:
            await self._session.send_client_content(
                turns=types.Content(role="user", parts=[types.Part(text=say_instruction(text))]),
                turn_complete=True,
            )
        except (ConnectionClosed, OSError):
            # the session is gone: the event loop replaces it and says this on the new one
            self._says_open.remove(text)
            self._pending_says.append(text)

    async def send_audio(self, pcm: bytes) -> None:
        if rms(pcm) >= REPLAY_SILENCE_RMS:
            self._replay_quiet = 0
        else:
            self._replay_quiet += len(pcm)
        if self._replay_quiet <= self._replay_quiet_keep:
            self._keep(pcm)
        if self._switching:
            return
        try:  # noqa: SIM105 (per frame: a try costs nothing, a suppress() context does)
            await self._ws.send(audio_frame(pcm))
        except (ConnectionClosed, OSError):
            pass  # the event loop sees the loss and replaces the session; this is in the replay

    def _keep(self, pcm: bytes) -> None:
        replay = self._replay
        kept = ulaw_encode(pcm, self._replay_step)
        replay.append(kept)
        self._replay_next += 1
        self._replay_bytes += len(kept)
        while self._replay_bytes > self._replay_cap and replay:
            lost = len(replay.popleft())
            self._replay_bytes -= lost
            self._replay_first += 1
            self._replay_dropped += lost

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            ws = self._ws
            try:
                while ws is self._ws:
                    if self._go_away_at is None:
                        raw = await ws.recv(decode=False)
                    else:
                        left = self._go_away_at - time.monotonic()
                        try:
                            raw = await asyncio.wait_for(ws.recv(decode=False), max(0.0, left))
                        except TimeoutError:
                            break  # time is nearly up and the turn is still going: switch now
                    parsed = parse_server_message(raw, self.model)
                    if parsed.resumption_handle:
                        self._new_handle(parsed.resumption_handle)
                    if parsed.tool_calls or parsed.cancelled_calls:
                        self._on_tool_calls(parsed.tool_calls, parsed.cancelled_calls, ws)
                    for event in parsed.events:
                        if type(event) is AgentAudio:
                            self._model_busy = self._output_since_handle = True
                            self._mute_caller = False
                        elif not self._track(event):
                            continue
                        yield event
                    if self._go_away_at is not None and self._at_safe_point():
                        break  # between turns with a fresh handle: the moment to switch
                else:
                    continue  # swapped while a message was being handled
                cause = "go_away"
            # Nothing is yielded inside an `except`: a generator suspended there keeps the
            # exception alive, and its traceback holds this frame (a cycle): the session's
            # socket and replay buffer would then wait for the garbage collector after the call
            # ends (~100 KB per call at the peak as calls end together).
            except (ConnectionClosed, OSError) as exc:
                if ws is not self._ws and not self._closing:
                    continue  # the old session closed after we swapped in a new one
                cause = "go_away" if self._go_away_at is not None else "dropped"
                if not self._closing:
                    self._fail_reason = f"Gemini Live session ended: {_describe(exc)}"
                    log.warning("Live session lost (%s); replacing it", self._fail_reason)
            except ValueError as exc:
                cause, self._fail_reason = "", f"Gemini Live session ended: {_describe(exc)}"
            if self._closing:
                yield EngineClosed()
                return
            if not cause:  # a message we cannot read: the session cannot go on
                yield EngineClosed(error=self._fail_reason)
                return
            replaced = await self._replace(cause)
            if replaced is None:
                yield EngineClosed(error=self._fail_reason)
                return
            yield replaced

    def _track(self, event: EngineEvent) -> bool:
        """Bookkeeping for every event but agent audio; False: do not pass it on."""
        kind = type(event)
        if kind is CallerTranscript:
            if self._mute_caller:
                return False  # the replayed question, already in the transcript
            self._caller_open.append(event.text)  # type: ignore[union-attr]
            self._caller_since_handle = True
        elif kind is AgentTranscript:
            self._model_busy = self._output_since_handle = True
            self._mute_caller = False
            self._agent_open.append(event.text)  # type: ignore[union-attr]
        elif kind is TurnComplete or kind is Interrupted:
            self._model_busy = self._mute_caller = False
            self._unsettled = 0
            self._commit_turn()
        elif kind is GoingAway:
            left = event.time_left_s  # type: ignore[union-attr]
            left = GO_AWAY_DEFAULT_S if left is None else left
            self._go_away_at = time.monotonic() + max(0.0, left - GO_AWAY_MARGIN_S)
        return True

    def _commit_turn(self) -> None:
        entries = self._log
        entries += [("user", say_instruction(t)) for t in self._says_open]
        for role, parts in (("user", self._caller_open), ("model", self._agent_open)):
            text = "".join(parts).strip()
            if text:
                entries.append((role, text))
        if len(entries) > MAX_LOG_TURNS:
            del entries[: len(entries) - MAX_LOG_TURNS]
        self._says_open, self._caller_open, self._agent_open = [], [], []

    def _new_handle(self, handle: str) -> None:
        """The server's state now includes everything sent so far: the replay starts afresh."""
        self._handle = handle
        self._replay.clear()
        self._replay_first = self._replay_next
        self._replay_bytes = self._replay_dropped = 0
        self._output_since_handle = self._caller_since_handle = False

    def _at_safe_point(self) -> bool:
        return self._handle is not None and not self._model_busy and not self._output_since_handle

    async def _replace(self, cause: str) -> Reconnected | None:
        """A new session in place of the current one: resumed from the latest handle, else (no
        handle, or the service refuses it) fresh with the conversation so far as history;
        bounded tries with backoff. The caller's audio since the handle is replayed into it.
        None: given up (`_fail_reason` says why)."""
        # (a goAway is the service's routine, not a failing line)
        if cause == "dropped" and not self._may_replace_again():
            return None
        self._switching = True
        t0 = time.monotonic()
        cut = self._model_busy
        redo = self._caller_since_handle
        self._go_away_at = None
        opened = await self._open_replacement(t0 + self._cfg.reconnect_deadline_s)
        if opened is None:
            return None
        replayed = await self._switch_to(opened, cut=cut, redo=redo)
        gap_ms = (time.monotonic() - t0) * 1000.0
        dropped_ms = self._replay_dropped / self._replay_rate * 1000.0
        self.audio_dropped_ms += dropped_ms
        self._replay_dropped = 0
        self.reconnects += 1
        _count_reconnect("resumed" if opened.resumed else "fresh")
        return Reconnected(
            cause=cause,
            resumed=opened.resumed,
            attempts=opened.attempts,
            gap_ms=round(gap_ms, 1),
            replayed_ms=round(replayed / (2 * INPUT_RATE) * 1000.0, 1),
            dropped_ms=round(dropped_ms, 1),
            cut_turn=cut,
            redo_caller=redo and not cut,
        )

    def _may_replace_again(self) -> bool:
        """A dropped session is replaced unless as many replacements in a row died before the
        model could finish a turn (sessions that open, then die)."""
        if self._unsettled >= self._cfg.reconnect_attempts:
            _count_reconnect("failed")
            self._fail_reason = (
                f"{self._fail_reason}; {self._unsettled} replacement sessions lost before"
                " the model could finish a turn"
            )[:300]
            return False
        self._unsettled += 1
        return True

    async def _open_replacement(self, deadline: float) -> _Replacement | None:
        """Open the new session: tries with backoff until the deadline (None: given up)."""
        cfg = self._cfg
        old = self._stack
        resume = self._handle is not None
        attempts = 0
        delay = RECONNECT_BACKOFF_S
        while True:
            attempts += 1
            left = deadline - time.monotonic()
            try:
                handle = self._handle if resume else None
                timeout = min(left, cfg.connect_timeout_s)
                stack, session = await self._open(handle, history=not resume, timeout_s=timeout)
                try:
                    new_ws = _socket_of(session)
                    if not resume and self._log and self.model not in _NO_INITIAL_HISTORY:
                        await self._send_history(session)
                except BaseException:
                    await _close_quietly(stack)  # never leave a session open (it is billed)
                    raise
                return _Replacement(stack, session, new_ws, old, resumed=resume, attempts=attempts)
            except (EngineError, ConnectionClosed, OSError) as exc:
                error = _describe(exc) if not isinstance(exc, EngineError) else str(exc)
                log.warning("Live session replacement attempt %d failed: %s", attempts, error)
                if old is not None:  # the service may refuse a resume while it is still open
                    await _close_quietly(old)
                    old = self._stack = None
                refused = resume and isinstance(exc, _Refused)
                if refused:
                    resume = False  # not honoured: a fresh session told the conversation so far
                if attempts >= cfg.reconnect_attempts or time.monotonic() + delay >= deadline:
                    _count_reconnect("failed")
                    self._switching = False
                    self._fail_reason = (
                        f"{self._fail_reason or 'Gemini Live goAway'}; no new session after"
                        f" {attempts} attempts: {error}"
                    )[:300]
                    return None
                if not refused:
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_BACKOFF_MAX_S)

    async def _switch_to(self, new: _Replacement, *, cut: bool, redo: bool) -> int:
        """Carry on in the new session: close the old, replay the caller's audio (ending the
        switch), say again what was cut short; the replayed bytes."""
        self._stack, self._session, self._ws = new.stack, new.session, new.ws
        if new.old is not None:
            await _close_quietly(new.old)
        if cut:  # the lost turn's words were never finished: the bridge records it as cut
            self._commit_turn()
        again = self._says_open if cut else []  # a spoken line cut short is said again
        self._says_open = []
        replayed = await self._flush_replay(new.ws)  # ends the switch
        for text in again + self._pending_says:
            await self.say(text)
        self._pending_says = []
        self._model_busy = self._output_since_handle = False  # the new session: none yet
        self._mute_caller = cut and redo
        return replayed

    async def _flush_replay(self, ws: Any) -> int:
        """Send the kept caller audio to `ws` in order, including what arrives meanwhile, then
        let live audio through again; returns the bytes sent."""
        sent = 0
        seq = self._replay_first
        up = StreamResampler(self._replay_rate, INPUT_RATE) if self._replay_step > 1 else None
        try:
            while True:
                seq = max(seq, self._replay_first)  # the cap may drop the oldest meanwhile
                if seq >= self._replay_next:
                    break
                pcm = ulaw_decode(self._replay[seq - self._replay_first])
                if up is not None:
                    pcm = up.process(pcm)
                await ws.send(audio_frame(pcm))
                sent += len(pcm)
                seq += 1
            tail = up.flush() if up is not None else b""
            if tail:
                await ws.send(audio_frame(tail))
                sent += len(tail)
        except (ConnectionClosed, OSError):
            pass  # lost again: the event loop sees it and replaces this one too
        self._switching = False
        return sent

    # --- tools ----------------------------------------------------------------------------

    def _on_tool_calls(self, calls: list[ToolCall], cancelled: list[str], ws: Any) -> None:
        """Start each call as a task (the receive loop goes straight on); cancel withdrawn ones."""
        for call_id in cancelled:
            task = self._tool_tasks.pop(call_id, None)
            if task is not None:
                task.cancel()  # the model no longer wants it: no answer is sent
        t0 = time.perf_counter()
        for call in calls:
            if call.call_id in self._tool_tasks:
                continue  # a repeated id: the first one answers
            task = asyncio.create_task(self._answer_tool(call, ws, t0), name=f"tool-{call.name}")
            self._tool_tasks[call.call_id] = task
            task.add_done_callback(functools.partial(self._forget_tool, call.call_id))

    def _forget_tool(self, call_id: str, task: asyncio.Task[None]) -> None:
        if self._tool_tasks.get(call_id) is task:
            del self._tool_tasks[call_id]

    async def _answer_tool(self, call: ToolCall, ws: Any, t0: float) -> None:
        tools = self._tools
        if tools is None:
            result: dict[str, Any] = {"error": "no tools are available on this call"}
        elif len(self._tool_tasks) > MAX_TOOL_TASKS:
            result = {"error": "too many requests at once; ask the caller to wait a moment"}
        else:
            result = await tools.run(call.name, call.args)
        if ws is not self._ws or self._switching:
            return  # the session that asked is gone; the new one does not know this call id
        blocking = tools is None or all(s.blocking for s in tools.specs if s.name == call.name)
        response = types.FunctionResponse(
            id=call.call_id,
            name=call.name,
            response=result,
            # a NON_BLOCKING call's answer is told once the model is idle, not over its words
            scheduling=None if blocking else types.FunctionResponseScheduling.WHEN_IDLE,
        )
        try:
            await self._session.send_tool_response(function_responses=[response])
        except (ConnectionClosed, OSError):
            return  # the session is being replaced; the model asks again if it still needs it
        if tools is not None:  # on the socket: a hold it carries is the caller's (not before)
            tools.delivered(result)
        self.tool_round_trips_ms.append((time.perf_counter() - t0) * 1000.0)

    async def close(self) -> None:
        self._closing = True
        for task in list(self._tool_tasks.values()):
            task.cancel()
        stack, self._stack = self._stack, None
        if stack is not None:
            await _close_quietly(stack)


async def _close_quietly(stack: AsyncExitStack) -> None:
    with contextlib.suppress(Exception):
        await stack.aclose()


@dataclass(frozen=True, slots=True)
class _Replacement:
    """A session opened to replace the current one (GeminiLiveEngine._open_replacement)."""

    stack: AsyncExitStack
    session: Any
    ws: Any
    old: AsyncExitStack | None  # the session replaced, unless closed already
    resumed: bool
    attempts: int


def _declarations(specs: tuple[ToolSpec, ...]) -> list[Any] | None:
    """The call's tools as Live function declarations (NON_BLOCKING where the spec says the
    model may go on talking while it runs)."""
    if not specs:
        return None
    return [
        types.Tool(
            function_declarations=[
                types.FunctionDeclaration(
                    name=spec.name,
                    description=spec.description,
                    parameters_json_schema=spec.parameters,
                    behavior=None if spec.blocking else types.Behavior.NON_BLOCKING,
                )
                for spec in specs
            ]
        )
    ]


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
