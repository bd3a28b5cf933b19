"""CallSession: one Exotel call, bridged to one voice engine.

Two pumps and a watchdog per call: the WebSocket receive loop (caller → engine) runs in the
connection's own task, the engine's event loop (engine → caller) in a second task, and a 1 Hz
watchdog handles silence and the maximum call length. Each frame costs one parse, one resample and
one serialisation; nothing on the per-frame path logs, allocates a task or touches the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket, WebSocketState

from receptionist import logctx, tracing
from receptionist.audio import StreamResampler, duration_ms, rms
from receptionist.bridge.budget import Budget
from receptionist.bridge.greeting_cache import (
    CachedGreeting,
    GreetingCapture,
    GreetingKey,
    greeting_cache_for,
)
from receptionist.bridge.latency import LatencyHistogram
from receptionist.bridge.transcript import TranscriptRecorder
from receptionist.engines.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    EndCall,
    EngineClosed,
    EngineError,
    EngineNote,
    EngineRequest,
    GoingAway,
    GreetsFromCache,
    Interrupted,
    Reconnected,
    TurnComplete,
    VoiceEngine,
)
from receptionist.observe import metrics
from receptionist.store.calls import FinishedCall, NewCall, new_session_id
from receptionist.store.checkpoints import Checkpoint
from receptionist.store.live import LiveEvent
from receptionist.store.search import response_times
from receptionist.telephony import exotel
from receptionist.tenants.repository import InactiveTenant, TenantError
from receptionist.usage import TokenUsage

if TYPE_CHECKING:
    from receptionist.bridge.app import BridgeContext
    from receptionist.tenants.model import Tenant

log = logging.getLogger("receptionist.call")

START_TIMEOUT_S = 10.0
MAX_EVENTS = 200  # per call: beyond this only counters grow (a flood of bad frames stays bounded)
# Digits noted on the row (and logged) per call; more are only counted, so a flood of DTMF frames
# neither logs a line per frame nor fills the row's events before what ends the call is noted.
MAX_DTMF_NOTES = 32
GOODBYE_GRACE_S = 15.0
# Caller audio may run ahead of real time by this much (network jitter delivers frames in
# bursts); beyond it frames are counted and dropped: a stream sending faster than a phone can
# speak would otherwise be forwarded, and billed by the model, at that rate.
MEDIA_BURST_S = 2.0
# A cached greeting is sent this far ahead of what the caller has heard (as a model streams a
# little ahead of playback): enough to ride out a busy event loop, little to clear on barge-in.
GREETING_LEAD_S = 0.5
# Caller speech this long over a cached greeting stops it (the model is not speaking it, so its
# own barge-in cannot): a click or a single loud frame does not.
GREETING_BARGE_IN_MS = 60.0
# How long after a cached greeting starts its engine begins to connect (see _converse).
GREETING_CONNECT_AFTER_S = 0.02

# The process-wide frame latency histograms take one frame in this many per call (the call's
# own figures on its row take every frame). An observation in prometheus_client's multiprocess
# mode is two locked writes to a shared file: ~2 µs on an idle core, 4-8 µs on a busy machine
# (bench/metrics_hotpath.py), against 0.35 µs for the hand-written histogram it replaces. Every
# frame (~16 a call-second) would add 0.03-0.1 ms of CPU per call-second; one in 4 costs about
# what the old one did, keeps the distribution, and the frame totals are counted exactly.
LATENCY_SAMPLE_EVERY = 4

# How a WebSocket close code reads on the call row (RFC 6455 section 7.4.1).
_CLOSE_REASONS = {
    1002: "protocol_error",
    1007: "invalid_frame_data",  # e.g. a text frame that is not UTF-8
    1009: "frame_too_large",
    1012: "server_restart",
}


@dataclass(slots=True)
class CallStats:
    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    clears: int = 0
    marks_sent: int = 0
    marks_received: int = 0
    dtmf: int = 0
    interruptions: int = 0
    agent_turns: int = 0
    bad_frames: Counter[str] = field(default_factory=Counter)
    latency_in: LatencyHistogram = field(default_factory=LatencyHistogram)
    latency_out: LatencyHistogram = field(default_factory=LatencyHistogram)
    greeting_ms: float | None = None
    greeting_source: str = ""  # "cache" | "engine" ("" : no greeting)
    start_to_greeting_ms: float | None = None  # Exotel `start` read → first agent frame sent

    def as_json(self) -> dict[str, Any]:
        return {
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "clears": self.clears,
            "marks_sent": self.marks_sent,
            "marks_received": self.marks_received,
            "dtmf": self.dtmf,
            "interruptions": self.interruptions,
            "agent_turns": self.agent_turns,
            "bad_frames": dict(self.bad_frames),
            "greeting_ms": None if self.greeting_ms is None else round(self.greeting_ms, 2),
            "greeting_source": self.greeting_source,
            "start_to_greeting_ms": (
                None if self.start_to_greeting_ms is None else round(self.start_to_greeting_ms, 2)
            ),
            "latency_in": self.latency_in.to_json(),
            "latency_out": self.latency_out.to_json(),
        }


class CallSession:
    def __init__(
        self,
        ctx: BridgeContext,
        ws: WebSocket,
        tenant_hint: str | None,
        *,
        connected_at: float | None = None,
    ) -> None:
        self.ctx = ctx
        self.ws = ws
        self.tenant_hint = tenant_hint
        self.call_sid = ""
        self.session_id = new_session_id()  # this stream's claim on the call row
        self.stream_sid = ""
        self.tenant: Tenant | None = None
        self.engine: VoiceEngine | None = None
        self.stats = CallStats()
        self.events: list[dict[str, Any]] = []
        self.transcript = TranscriptRecorder()
        self.usage: dict[str, TokenUsage] = {}
        self.status = "in_progress"
        self.end_reason = ""
        self.error: str | None = None
        self.started_at = datetime.now(UTC)
        self._t0 = time.monotonic()
        self._start_at = self._t0  # when `start` was read
        # perf_counter() before the handshake was answered: no caller audio can have been sent
        # earlier, so the caller's real-time budget counts from here (see _caller_to_engine)
        self._connected_at = time.perf_counter() if connected_at is None else connected_at
        self.answered_at: datetime | None = None
        # caller-side state
        self._last_activity = self._t0
        self._playback_until = self._t0  # when the agent audio we sent finishes playing
        self._prompted_at: float | None = None  # when we asked "are you still there?"
        self._hangup: str | None = None  # reason, once we decided to end the call
        self._hangup_turn_done = False
        self._hangup_deadline = 0.0
        self._mark_seq = 0
        self._pending_goodbye_mark: str | None = None
        self._closed = asyncio.Event()
        self._created: asyncio.Task[None] | None = None
        self._duplicate = False  # another stream owns this call_sid's row: write nothing
        self._row_written = False  # create_call wrote this stream's row
        self._live_started = False  # call_started went to the live feed
        self._live_sent = 0  # transcript turns already on the live feed
        # greeting: played from the cache (a task) or captured from the engine to fill it
        self._greeting_task: asyncio.Task[None] | None = None
        self._greeting_voiced_ms = 0.0  # caller speech heard over the cached greeting
        self._greeting_mark: str | None = None  # its mark: Exotel echoes it once played
        self._capture: GreetingCapture | None = None
        self._watched = False  # the engine is connected and the watchdog runs (it ends a hang-up)
        self._trace: tracing.CallTrace | None = None  # this call's span, when tracing is on
        self._flushed_in = self._flushed_out = 0  # frames already added to the counters

    # --- helpers ----------------------------------------------------------------------------

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000.0

    def note(self, kind: str, detail: str = "", *, level: int = logging.WARNING) -> None:
        """Record something that happened on the call row (bounded) and log the first of a kind."""
        if len(self.events) < MAX_EVENTS:
            self.events.append(
                {"t_ms": round(self.elapsed_ms()), "kind": kind, "detail": detail[:300]}
            )
        log.log(level, "call %s: %s %s", self.call_sid or "-", kind, detail)

    def bad_frame(self, kind: str, detail: str) -> None:
        first = kind not in self.stats.bad_frames
        self.stats.bad_frames[kind] += 1
        metrics.BAD_FRAMES.labels(kind).inc()
        if first:  # later ones of the same kind are only counted: no log flood
            self.note(f"bad_frame:{kind}", detail)

    async def _send(self, text: str) -> None:
        await self.ws.send_text(text)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        start = await self._await_start()
        if start is None:
            return
        self._start_at = time.monotonic()
        self.call_sid, self.stream_sid = start.call_sid, start.stream_sid
        tenant_id = (
            self.tenant_hint
            or start.custom_parameters.get("tenant")
            or start.custom_parameters.get("tenant_id")
            or ""
        )
        # Every log line from here on (this task and the tasks it starts) names the call; the
        # connection's task ends with the call, so nothing needs to unset it.
        logctx.bind(call_sid=self.call_sid, stream_sid=self.stream_sid, tenant=tenant_id)
        try:
            self.tenant = self.ctx.tenants.get(tenant_id)
        except InactiveTenant as exc:
            metrics.CALLS_STARTED.labels(exc.tenant.tenant_id if exc.tenant else "unknown").inc()
            # a known tenant: its owner sees the call it missed, if the stream is authentic
            known = exc.tenant is not None and self.ctx.check_tenant_auth(exc.tenant, self.ws)
            await self._reject(start, tenant_id, "tenant_unavailable", str(exc), record=known)
            return
        except TenantError as exc:
            metrics.CALLS_STARTED.labels("unknown").inc()  # never a label from the stream
            # no tenant to own a row: an unknown id writes nothing (a stream could otherwise
            # plant rows, or reuse a real call's sid, without any credentials)
            await self._reject(start, tenant_id, "tenant_unavailable", str(exc), record=False)
            return
        metrics.CALLS_STARTED.labels(self.tenant.tenant_id).inc()
        if not self.ctx.check_tenant_auth(self.tenant, self.ws):
            await self._reject(
                start, tenant_id, "unauthorized", "bad Exotel credentials", record=False
            )
            return
        if self.call_sid in self.ctx.registry:
            await self._reject(
                start, tenant_id, "duplicate_call_sid", "call_sid already live", record=False
            )
            return
        decline = await self._over_budget(self.tenant)
        self.ctx.registry[self.call_sid] = self
        self._trace = tracing.call_started(
            self.call_sid,
            self.tenant.tenant_id,
            self.stream_sid,
            t0_ns=int(self.started_at.timestamp() * 1e9),
            start_ms=(self._start_at - self._t0) * 1000.0,
        )
        metrics.ACTIVE_CALLS.inc()
        try:
            await self._converse(start, decline=decline)
        finally:
            self.ctx.registry.pop(self.call_sid, None)
            metrics.ACTIVE_CALLS.dec()
            try:
                await asyncio.shield(self._persist_end())
            finally:
                # one line per call, its outcome as fields (JSON logs): what an operator greps
                log.info(
                    "call %s ended: %s (%s), %d turns",
                    self.call_sid,
                    self.status,
                    self.end_reason,
                    len(self.transcript.turns),
                    extra={
                        "status": self.status,
                        "end_reason": self.end_reason,
                        "turns": len(self.transcript.turns),
                        "duration_s": round(time.monotonic() - self._start_at, 1),
                    },
                )
                if self._trace is not None:
                    self._trace.end(
                        status=self.status,
                        end_reason=self.end_reason,
                        turns=len(self.transcript.turns),
                        agent_turns=self.stats.agent_turns,
                        interruptions=self.stats.interruptions,
                        greeting_ms=self.stats.greeting_ms,
                        engine=self.engine.name if self.engine is not None else None,
                    )

    async def _await_start(self) -> exotel.Start | None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                metrics.CALLS_REJECTED.labels("no_start").inc()
                log.warning("connection closed: no start frame within %.0fs", START_TIMEOUT_S)
                await self._close(1008, "no start frame")
                return None
            try:
                msg = await asyncio.wait_for(self.ws.receive(), remaining)
            except TimeoutError:
                continue
            if msg["type"] == "websocket.disconnect":
                return None
            event = self._parse(msg)
            if isinstance(event, exotel.Start):
                return event
            if isinstance(event, exotel.Media):
                self.bad_frame("media_before_start", "media frame before start")
            elif event is not None and not isinstance(event, exotel.Connected):
                self.bad_frame("event_before_start", type(event).__name__.lower())

    async def _reject(
        self, start: exotel.Start, tenant_id: str, reason: str, detail: str, *, record: bool
    ) -> None:
        """Refuse the stream; `record`: also write a `rejected` row (only for a known tenant's
        authentic stream, and never over another stream's row)."""
        metrics.CALLS_REJECTED.labels(reason).inc()
        log.error("call %s rejected (%s): %s", start.call_sid, reason, detail)
        self.status, self.end_reason, self.error = "rejected", reason, detail
        await self._close(1008, detail[:120])
        if not record:
            return
        if (
            await self.ctx.recorder.create(self._new_call(start, tenant_id), note=self.note)
            is not False
        ):
            await asyncio.shield(self._persist_end())

    def _parse(self, msg: Mapping[str, Any]) -> exotel.Event | None:
        text = msg.get("text")
        if text is None:
            data = msg.get("bytes")
            self.bad_frame("binary_frame", f"{len(data or b'')} bytes")
            return None
        if len(text) > self.ctx.settings.max_frame_bytes:
            self.bad_frame("oversized_frame", f"{len(text)} bytes")
            return None
        try:
            return exotel.parse_frame(text)
        except exotel.ProtocolError as exc:
            self.bad_frame(exc.kind, exc.detail)
            return None

    async def _over_budget(self, tenant: Tenant) -> bool:
        if self.ctx.budgets is None:
            return False
        verdict, spent = await self.ctx.budgets.check(tenant)
        if verdict is Budget.WARN:
            self.note(
                "budget_warning", f"${spent} spent this month (warn ${tenant.budget_warn_usd})"
            )
        elif verdict is Budget.OVER:
            metrics.CALLS_REJECTED.labels("budget_exceeded").inc()
            self.note("budget_exceeded", f"${spent} spent (limit ${tenant.budget_limit_usd})")
        return verdict is Budget.OVER

    async def _converse(self, start: exotel.Start, *, decline: bool = False) -> None:
        assert self.tenant is not None
        tenant = self.tenant
        request = EngineRequest(
            call_sid=start.call_sid,
            tenant_id=tenant.tenant_id,
            system_instruction=tenant.system_instruction,
            language=tenant.primary_language,
            voice=tenant.voice,
            model=tenant.model,
            engine=tenant.engine,
            tenant=tenant,
            caller_number=start.from_number,
            caller_sample_rate=start.sample_rate,
        )
        try:
            engine = self.ctx.engine_factory(request)
        except EngineError as exc:
            metrics.ENGINE_ERRORS.labels(metrics.bounded(tenant.engine), "create_failed").inc()
            await self._engine_failed(str(exc))
            return
        self.engine = engine
        self._chunker = exotel.OutboundChunker(
            start.sample_rate, min_ms=self.ctx.settings.exotel_min_chunk_ms
        )
        self._emit = exotel.Emitter(start.stream_sid)
        self._rate = start.sample_rate
        # The row is written while the model connects (the task runs at this call's first
        # wait, after a cached greeting's first frame): a slow database never delays a greeting.
        self._created = asyncio.create_task(self._create_row(start, tenant.tenant_id))
        cached = None if decline else await self._cached_greeting(engine, tenant, start)
        if cached is not None:  # the caller hears it now, while the engine connects
            engine.greeting_played(cached.spoken)  # type: ignore[attr-defined]
            self.stats.greeting_source = "cache"
            # Its first frame goes out now, before the engine's connect spends any CPU (100
            # calls starting together would otherwise wait for each other's session set-up).
            frames = cached.chunks(self._chunker.min_bytes)
            self.transcript.agent_text(cached.spoken, self.elapsed_ms())
            try:
                await self._send_audio([next(frames)], self._send, self._emit, self._rate)
            except Exception as exc:  # the caller is gone already: nothing to connect for
                self.note("greeting_send_failed", f"{type(exc).__name__}", level=logging.INFO)
                self.status, self.end_reason = "completed", await self._gone_reason()
                await engine.close()
                return
            self._greeting_task = asyncio.create_task(
                self._play_greeting(frames), name=f"greet-{self.call_sid}"
            )
            # The engine is not needed before the caller has heard the greeting's first words:
            # connecting a moment later lets calls whose `start` comes in with this one send
            # their first frame before any of them spends CPU on a session set-up (SDK config,
            # TLS handshake: milliseconds each, so 100 calls starting together would otherwise
            # wait for each other's).
            await asyncio.sleep(GREETING_CONNECT_AFTER_S)
        log.info(
            "call %s: tenant=%s from=%s rate=%d engine=%s",
            self.call_sid,
            tenant.tenant_id,
            start.from_number,
            start.sample_rate,
            engine.name,
        )
        try:
            await engine.connect()
        except EngineError as exc:
            metrics.ENGINE_ERRORS.labels(metrics.bounded(engine.name), "connect_failed").inc()
            await self._stop_greeting()
            await self._engine_failed(str(exc))
            return
        except BaseException:
            await self._stop_greeting()
            raise
        self._in_rs = StreamResampler(start.sample_rate, engine.input_rate)
        self._out_rs = StreamResampler(engine.output_rate, start.sample_rate)
        pump = asyncio.create_task(self._engine_to_caller(engine), name=f"pump-{self.call_sid}")
        watchdog = asyncio.create_task(self._watchdog(engine), name=f"watch-{self.call_sid}")
        self._watched = True
        try:
            if decline:  # over the monthly budget: a short, polite line, then hang up
                await self._begin_hangup(engine, "budget_exceeded", tenant.messages.busy, "busy")
            elif cached is None:
                self.stats.greeting_source = "engine"
                await engine.say(tenant.greeting, "greeting")
            await self._caller_to_engine(engine)
        except Exception as exc:  # a bug or a dead engine socket: end this call, not the server
            if self.status == "in_progress":
                self.status, self.end_reason = "failed", "bridge_error"
                self.error = f"{type(exc).__name__}: {exc}"[:300]
            log.exception("call %s: bridge error", self.call_sid)
        finally:
            await self._stop_greeting()
            for task in (pump, watchdog):
                task.cancel()
            await asyncio.gather(pump, watchdog, return_exceptions=True)
            await engine.close()
            await self._close(1000, self.end_reason or "call ended")

    async def _create_row(self, start: exotel.Start, tenant_id: str) -> None:
        created = await self.ctx.recorder.create(self._new_call(start, tenant_id), note=self.note)
        self._row_written = created is True  # None: the database failed; checkpoints insert it
        if created is not False:
            # the row exists (or the database is down and `finish` will write it): the owner's
            # live view may show the call now, with any turn already finished after it
            self._live_started = True
            self._publish(
                "call_started",
                {"from_number": start.from_number, "started_at": self.started_at.isoformat()},
            )
            self._publish_turns()
            return
        # Another stream recorded this call_sid first (a finished call, or a live one in another
        # process): end this one and leave that row exactly as it is.
        self._duplicate = True
        self.status, self.end_reason = "rejected", "duplicate_call_sid"
        metrics.CALLS_REJECTED.labels("duplicate_call_sid").inc()
        log.error(
            "call %s rejected: the call_sid is already recorded by another stream", self.call_sid
        )
        await self._close(1008, "duplicate call_sid")

    async def _engine_failed(self, reason: str) -> None:
        self.status, self.end_reason, self.error = "failed", "engine_unavailable", reason
        log.error("call %s: %s", self.call_sid, reason)
        # Exotel moves on to the flow's next applet (e.g. a Connect to the owner) on a clean close.
        await self._close(1000, "assistant unavailable")

    async def _close(self, code: int, reason: str) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        if self.ws.application_state == WebSocketState.CONNECTING:
            await self.ws.accept()
        with contextlib.suppress(Exception):
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.close(code=code, reason=reason[:120])

    def _disconnect_reason(self, msg: Mapping[str, Any]) -> str:
        """The call row's end reason for the caller's close, noted when it says what went wrong."""
        code = int(msg.get("code") or 1005)  # 1005: no code given
        if code in _CLOSE_REASONS and code != 1012:
            self.note("closed", f"WebSocket close code {code}")
        return _CLOSE_REASONS.get(code, "caller_disconnected")

    async def _gone_reason(self) -> str:
        """Why a caller we could not send to is gone. A connection the server closed for a bad
        frame (over the cap: 1009, not UTF-8: 1007) has its close queued behind the frames that
        came before it: those are read (bad ones counted) for the close code, briefly."""
        with contextlib.suppress(Exception):  # (receive after the disconnect raises)
            async with asyncio.timeout(1.0):
                while True:
                    msg = await self.ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        return self._disconnect_reason(msg)
                    self._parse(msg)
        return "caller_disconnected"

    # --- caller → engine --------------------------------------------------------------------

    async def _caller_to_engine(self, engine: VoiceEngine) -> None:
        receive = self.ws.receive
        stats = self.stats
        observe_in = metrics.LATENCY_IN.observe
        threshold = self.ctx.settings.speech_rms_threshold
        in_rs = self._in_rs
        send_audio = engine.send_audio
        perf = time.perf_counter
        next_level_check = 0.0
        speed = self.ctx.settings.caller_audio_max_speed
        bytes_per_s = self._rate * 2 * speed
        burst_bytes = MEDIA_BURST_S * self._rate * 2
        # The budget counts from the connection, not from the first frame we process: when the
        # event loop is late (overload, a burst of call starts), frames a real-time caller sent
        # on time wait in the socket and reach us together; timed from our first read they would
        # look faster than real time and be dropped. A caller cannot have sent more audio than
        # the wall time since the handshake (plus jitter, the burst), however late we read it.
        connected_at = self._connected_at
        while True:
            msg = await receive()
            t0 = perf()
            if msg["type"] == "websocket.disconnect":
                if not self.end_reason:
                    self.end_reason = self._disconnect_reason(msg)
                    self.status = "completed"
                return
            event = self._parse(msg)
            if type(event) is exotel.Media:
                if speed and (
                    stats.bytes_in + len(event.pcm)
                    > (t0 - connected_at) * bytes_per_s + burst_bytes
                ):
                    self.bad_frame("over_realtime", "caller audio faster than real time")
                    continue
                stats.frames_in += 1
                stats.bytes_in += len(event.pcm)
                if t0 >= next_level_check:  # a few level checks a second are plenty
                    next_level_check = t0 + 0.25
                    if rms(event.pcm) > threshold:
                        self._last_activity = time.monotonic()
                if self._greeting_task is not None and self._caller_over_greeting(event.pcm):
                    await self._cut_greeting()
                await send_audio(in_rs.process(event.pcm))
                dt = perf() - t0
                stats.latency_in.record(dt)
                if not stats.frames_in % LATENCY_SAMPLE_EVERY:  # see LATENCY_SAMPLE_EVERY
                    observe_in(dt)
            elif event is None:
                continue
            elif isinstance(event, exotel.Stop):
                self.status = "completed"
                self.end_reason = self.end_reason or f"stop:{event.reason or 'callended'}"
                return
            elif isinstance(event, exotel.Mark):
                stats.marks_received += 1
                if event.name == self._pending_goodbye_mark:
                    self._playback_until = time.monotonic()
                elif event.name == self._greeting_mark:
                    self._greeting_task = None  # the cached greeting was heard out
            elif isinstance(event, exotel.Dtmf):
                stats.dtmf += 1
                if stats.dtmf <= MAX_DTMF_NOTES:  # a flood is counted, not logged per frame
                    self.note("dtmf", event.digit, level=logging.INFO)
            elif isinstance(event, exotel.Start):
                self.bad_frame("duplicate_start", event.stream_sid)

    # --- engine → caller --------------------------------------------------------------------

    async def _engine_to_caller(self, engine: VoiceEngine) -> None:
        stats = self.stats
        observe_out = metrics.LATENCY_OUT.observe
        audio_events = 0
        out_rs, chunker, emit = self._out_rs, self._chunker, self._emit
        send = self._send
        perf = time.perf_counter
        rate = self._rate
        async for ev in engine.events():
            t0 = perf()
            if type(ev) is AgentAudio:
                if self._greeting_task is not None:  # it answers the caller: who spoke over it
                    await self._cut_greeting()
                chunks = chunker.push(out_rs.process(ev.pcm))
                if chunks:
                    await self._send_audio(chunks, send, emit, rate)
                dt = perf() - t0
                stats.latency_out.record(dt)
                audio_events += 1
                if not audio_events % LATENCY_SAMPLE_EVERY:
                    observe_out(dt)
                self.transcript.agent_activity(self.elapsed_ms())
            elif type(ev) is AgentTranscript:
                if self._greeting_task is not None:
                    await self._cut_greeting()
                self.transcript.agent_text(ev.text, self.elapsed_ms())
            elif type(ev) is CallerTranscript:
                if self._greeting_task is not None:  # the engine heard the caller over it
                    await self._cut_greeting()
                self._last_activity = time.monotonic()
                self.transcript.caller_text(ev.text, self.elapsed_ms())
            elif type(ev) is TurnComplete:
                tail = chunker.push(out_rs.flush()) + chunker.flush()
                if tail:
                    await self._send_audio(tail, send, emit, rate)
                await self._turn_done(interrupted=False)
            elif type(ev) is Interrupted:
                if time.monotonic() < self._playback_until:
                    self.transcript.cut_last_agent_turn(self.elapsed_ms())
                chunker.reset()
                out_rs.reset()
                await send(emit.clear())
                stats.clears += 1
                stats.interruptions += 1
                metrics.CLEARS_SENT.inc()
                self._playback_until = time.monotonic()
                await self._turn_done(interrupted=True)
            elif type(ev) is TokenUsage:
                self._add_usage(ev)
            elif type(ev) is EngineNote:
                self.note(ev.kind, ev.detail, level=ev.level)
            elif type(ev) is EndCall:
                if self._hangup is None:  # the goodbye is the turn being spoken now
                    self._mark_hangup(ev.reason)
            elif type(ev) is GoingAway:
                metrics.ENGINE_GO_AWAYS.labels(metrics.bounded(engine.name)).inc()
                self.note("engine_go_away", f"time_left={ev.time_left_s}", level=logging.INFO)
            elif type(ev) is Reconnected:
                await self._engine_reconnected(ev)
            elif type(ev) is EngineClosed:
                if ev.error and self._hangup is None:
                    metrics.ENGINE_ERRORS.labels(metrics.bounded(engine.name), "session_lost").inc()
                    self.status, self.end_reason, self.error = "failed", "engine_error", ev.error
                    log.error("call %s: %s", self.call_sid, ev.error)
                    await self._close(1000, "assistant unavailable")
                return

    async def _engine_reconnected(self, ev: Reconnected) -> None:
        """The engine replaced its model session and the call goes on. A turn the model was
        speaking is lost with the old session: what the caller heard of it is kept, marked
        interrupted (cut), and the new session answers afresh; caller words the new session
        hears again are not written twice."""
        self.note(
            "engine_resumed" if ev.resumed else "engine_reconnected",
            f"cause={ev.cause} attempts={ev.attempts} gap_ms={ev.gap_ms:.0f}"
            f" replayed_ms={ev.replayed_ms:.0f} dropped_ms={ev.dropped_ms:.0f}"
            f" cut_turn={ev.cut_turn}",
            level=logging.INFO,
        )
        if ev.cut_turn:
            chunker, out_rs = self._chunker, self._out_rs
            tail = chunker.push(out_rs.flush()) + chunker.flush()
            if tail:
                await self._send_audio(tail, self._send, self._emit, self._rate)
            await self._turn_done(interrupted=True)
        elif ev.redo_caller:
            self.transcript.drop_open_caller()

    async def _send_audio(
        self, chunks: list[bytes], send: Any, emit: exotel.Emitter, rate: int
    ) -> None:
        now = time.monotonic()
        if self.answered_at is None:
            self.answered_at = datetime.now(UTC)
            self.stats.greeting_ms = (now - self._t0) * 1000.0
            self.stats.start_to_greeting_ms = (now - self._start_at) * 1000.0
            metrics.GREETING.observe(now - self._t0)
        if self._capture is not None:
            self._capture.add(chunks)
        for chunk in chunks:
            await send(emit.media(chunk))
            self.stats.frames_out += 1
            self.stats.bytes_out += len(chunk)
        played = sum(duration_ms(len(c), rate) for c in chunks) / 1000.0
        self._playback_until = max(self._playback_until, now) + played

    async def _turn_done(self, *, interrupted: bool) -> None:
        self.stats.agent_turns += 1
        committed = len(self.transcript.turns)
        turn = self.transcript.agent_done(self.elapsed_ms(), interrupted=interrupted)
        if self._trace is not None and turn is not None:
            self._trace.turn(self.transcript.turns[committed:], turn)
        for ms in response_times(self.transcript.turns[committed:]):  # per turn, not per frame
            metrics.RESPONSE.observe(ms / 1000.0)
        self._publish_turns()  # the caller's turn and this one, committed just now
        if self._capture is not None:  # the engine's greeting turn: keep it if heard out
            self._keep_greeting(self._capture, turn, interrupted=interrupted)
            self._capture = None
        if turn is not None and not interrupted:
            self._mark_seq += 1
            name = f"agent-turn-{self._mark_seq}"
            await self._send(self._emit.mark(name))
            self.stats.marks_sent += 1
            if self._hangup is not None and not self._hangup_turn_done:
                self._hangup_turn_done = True
                self._pending_goodbye_mark = name
        if turn is not None and self.ctx.on_turn is not None:
            caller = self.transcript.last_caller_text()
            self.ctx.on_turn(self, caller, turn)

    # --- the greeting from the cache ----------------------------------------------------------

    async def _cached_greeting(
        self, engine: VoiceEngine, tenant: Tenant, start: exotel.Start
    ) -> CachedGreeting | None:
        """The tenant's greeting as this engine spoke it before, or None; on a miss the engine
        greets and its audio is captured (`_capture`) to fill the cache."""
        cache = greeting_cache_for(self.ctx.settings)
        if cache is None or not isinstance(engine, GreetsFromCache):
            return None
        key = GreetingKey(
            tenant.tenant_id, tenant.prompt_version, tenant.greeting, engine.voice_id, self._rate
        )
        found = cache.get_nowait(key) or await cache.get(key)
        if found is None:
            self._capture = cache.capture(key)
        return found

    def _keep_greeting(
        self, capture: GreetingCapture, turn: dict[str, Any] | None, *, interrupted: bool
    ) -> None:
        cache = greeting_cache_for(self.ctx.settings)
        if cache is None or interrupted or turn is None or capture.overflow:
            return
        spoken = str(turn.get("text") or "") or capture.key.text
        cache.put(capture.key, spoken, capture.pcm)

    async def _play_greeting(self, frames: Iterator[bytes]) -> None:
        """Plays the rest of the cached greeting (its turn is open, its first frame sent) like
        an agent turn: frames paced GREETING_LEAD_S ahead of what the caller has heard, the
        turn's times in the transcript, a mark once all is sent. Cancelled by barge-in
        (`_cut_greeting`)."""
        send, emit, rate = self._send, self._emit, self._rate
        for chunk in frames:
            ahead = self._playback_until - time.monotonic()
            if ahead > GREETING_LEAD_S:
                await asyncio.sleep(ahead - GREETING_LEAD_S)
            await self._send_audio([chunk], send, emit, rate)
            self.transcript.agent_activity(self.elapsed_ms())
        await self._turn_done(interrupted=False)
        self._greeting_mark = f"agent-turn-{self._mark_seq}"

    def _caller_over_greeting(self, pcm: bytes) -> bool:
        """Is the caller speaking over the cached greeting (long enough to stop it)?"""
        task = self._greeting_task
        assert task is not None
        if task.done() and time.monotonic() >= self._playback_until:
            self._greeting_task = None  # heard out: nothing left to interrupt
            return False
        if rms(pcm) > self.ctx.settings.speech_rms_threshold:
            self._greeting_voiced_ms += duration_ms(len(pcm), self._rate)
        else:
            self._greeting_voiced_ms = 0.0
        return self._greeting_voiced_ms >= GREETING_BARGE_IN_MS

    async def _cut_greeting(self) -> None:
        """Barge-in on the cached greeting: stop sending it, `clear` what Exotel still holds
        and mark the turn interrupted, as for an engine's turn."""
        task = await self._stop_greeting()
        if task is None:
            return
        now = time.monotonic()
        if now >= self._playback_until and task.done():
            return  # it had been heard out
        await self._send(self._emit.clear())
        self.stats.clears += 1
        self.stats.interruptions += 1
        metrics.CLEARS_SENT.inc()
        self._playback_until = now
        if task.cancelled():  # its turn was still open
            await self._turn_done(interrupted=True)
        else:  # all sent, still playing: the committed turn was cut short
            self.transcript.cut_last_agent_turn(self.elapsed_ms())

    async def _stop_greeting(self) -> asyncio.Task[None] | None:
        task, self._greeting_task = self._greeting_task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return task

    # --- the owner's live view (per turn, never per frame) -------------------------------------

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        tenant = self.tenant
        if tenant is not None:
            self.ctx.live.publish(LiveEvent(kind, self.call_sid, tenant.tenant_id, data))

    def _publish_turns(self) -> None:
        """Turns committed since the last call, in speaking order; held back until the call's
        own call_started has gone out (its row is written while the model connects)."""
        if not self._live_started:
            return
        turns = self.transcript.turns
        for turn in turns[self._live_sent :]:
            self._publish(
                "turn",
                {
                    "speaker": turn["speaker"],
                    "text": turn["text"],
                    "start_ms": turn["start_ms"],
                    "end_ms": turn["end_ms"],
                    "interrupted": bool(turn.get("interrupted")),
                },
            )
        self._live_sent = len(turns)

    def _add_usage(self, ev: TokenUsage) -> None:
        prev = self.usage.get(ev.model_name)
        self.usage[ev.model_name] = ev if prev is None else prev + ev

    # --- silence and length limits ------------------------------------------------------------

    async def _watchdog(self, engine: VoiceEngine) -> None:
        s = self.ctx.settings
        assert self.tenant is not None
        messages = self.tenant.messages
        while True:
            await asyncio.sleep(min(1.0, s.silence_prompt_after_s / 4))
            self._flush_counts()
            now = time.monotonic()
            if self._hangup is not None:
                played = self._hangup_turn_done and now >= self._playback_until
                if played or now >= self._hangup_deadline:
                    self.status = "completed"
                    self.end_reason = self._hangup
                    await self._close(1000, self._hangup)
                    return
                continue
            if now - self._t0 >= s.max_call_duration_s:
                await self._begin_hangup(
                    engine, "max_duration", messages.goodbye_max_duration, "goodbye_max_duration"
                )
                continue
            if self._prompted_at is not None and self._last_activity > self._prompted_at:
                self._prompted_at = None  # the caller answered
            # Silence is counted while neither side speaks: the agent's own audio pauses it,
            # and after the prompt it counts afresh from the prompt.
            silent = now - max(self._last_activity, self._playback_until, self._prompted_at or 0.0)
            if self._prompted_at is None:
                if silent >= s.silence_prompt_after_s:
                    self._prompted_at = now
                    self.note("silence_prompt", f"{silent:.0f}s silent", level=logging.INFO)
                    await engine.say(messages.still_there, "still_there")
            elif silent >= s.silence_hangup_after_s - s.silence_prompt_after_s:
                await self._begin_hangup(
                    engine, "caller_silent", messages.goodbye_inactive, "goodbye_inactive"
                )

    async def _begin_hangup(
        self, engine: VoiceEngine, reason: str, goodbye: str, kind: str
    ) -> None:
        self._mark_hangup(reason)
        await engine.say(goodbye, kind)

    async def drain_goodbye(self, reason: str) -> None:
        """The server is stopping (bridge/drain.py): say the tenant's closing line and end the
        call once it is heard, as at the maximum call length."""
        if self._hangup is not None or self._closed.is_set():
            return  # already saying goodbye, or over
        if self.engine is None or self.tenant is None or not self._watched:
            await self.drain_close(reason)  # nothing to speak with yet
            return
        # "a technical problem, please call again in a little while" is what the caller needs to
        # hear when the server goes away under them (the time-limit line would not be true)
        try:
            await self._begin_hangup(
                self.engine, reason, self.tenant.messages.technical_problem, "goodbye_shutdown"
            )
        except Exception as exc:  # the engine is gone: end without the goodbye
            self.note("goodbye_failed", f"{type(exc).__name__}: {exc}")
            await self.drain_close(reason)

    async def drain_close(self, reason: str) -> None:
        """The server is stopping and cannot wait any longer: end the call now."""
        if self.status == "in_progress":
            self.status, self.end_reason = "completed", reason
        await self._close(1000, reason)

    def _mark_hangup(self, reason: str) -> None:
        """End the call once the turn being spoken (the goodbye) has been heard."""
        self._hangup = reason
        self._hangup_deadline = time.monotonic() + GOODBYE_GRACE_S
        self.note("hangup", reason, level=logging.INFO)

    # --- persistence --------------------------------------------------------------------------

    def _new_call(self, start: exotel.Start, tenant_id: str) -> NewCall:
        """The call as its start records it."""
        engine = self.engine
        return NewCall(
            call_sid=start.call_sid,
            session_id=self.session_id,
            tenant=tenant_id,
            stream_sid=start.stream_sid,
            from_number=start.from_number,
            to_number=start.to_number,
            direction="inbound",
            custom_parameters=start.custom_parameters,
            sample_rate=start.sample_rate,
            engine=engine.name if engine else None,
            model=engine.model if engine else None,
            started_at=self.started_at,
        )

    def finished_call(self) -> FinishedCall:
        """The call as its end records it."""
        return FinishedCall(
            call_sid=self.call_sid,
            session_id=self.session_id,
            status=self.status,
            end_reason=self.end_reason or None,
            error=self.error,
            transcript=self.transcript.snapshot(self.elapsed_ms()),
            stats=self.stats.as_json(),
            events=self.events,
            answered_at=self.answered_at,
            usage=self.token_usage(),
            tenant=self.tenant.tenant_id if self.tenant else None,
            started_at=self.started_at,
        )

    def token_usage(self) -> list[TokenUsage]:
        """The tokens the live model billed for this call so far, per model."""
        # an engine reports a total of 0 when the model gave none: input + output then
        return [replace(u, total_tokens=u.total_tokens or None) for u in self.usage.values()]

    def checkpoint_version(self) -> tuple[Any, ...]:
        """Changes when the transcript or the tokens have something new (checkpointer.py)."""
        spent = tuple((u.input_tokens, u.output_tokens) for u in self.usage.values())
        return (self.transcript.version(), spent)

    def checkpoint(self) -> Checkpoint | None:
        """The call so far, for the checkpointer (bridge/checkpointer.py); None until its row
        was written or given up on (a checkpoint must not create the row before `start`'s
        write, which carries the caller's number) and for a stream that owns no row."""
        created = self._created
        if created is None or not created.done() or self._duplicate or self.tenant is None:
            return None
        return Checkpoint(
            call_sid=self.call_sid,
            session_id=self.session_id,
            tenant=self.tenant.tenant_id,
            started_at=self.started_at,
            answered_at=self.answered_at,
            transcript=self.transcript.snapshot(self.elapsed_ms()),
            row_written=self._row_written,
            usage=self.token_usage(),
        )

    def _flush_counts(self) -> None:
        """Add the frames counted since the last flush to the process's counters: once a
        second per call (the watchdog) and at the end, instead of a counter write per frame
        (in multiprocess mode each is a locked write to a shared file)."""
        stats = self.stats
        if stats.frames_in > self._flushed_in:
            metrics.FRAMES_IN.inc(stats.frames_in - self._flushed_in)
            self._flushed_in = stats.frames_in
        if stats.frames_out > self._flushed_out:
            metrics.FRAMES_OUT.inc(stats.frames_out - self._flushed_out)
            self._flushed_out = stats.frames_out

    async def _persist_end(self) -> None:
        if self.status == "in_progress":
            self.status, self.end_reason = "completed", self.end_reason or "caller_disconnected"
        if self._created is not None:
            await asyncio.gather(self._created, return_exceptions=True)
        self._flush_counts()
        if self._duplicate:
            return  # the row is another stream's
        tenant = self.tenant.tenant_id if self.tenant else "unknown"
        metrics.CALLS_ENDED.labels(self.status, metrics.bounded(self.end_reason), tenant).inc()
        await self.ctx.recorder.finish(self.finished_call())
        if self._live_started:  # after the row is final: the page that reloads it sees the end
            self._publish_turns()
            self._publish("call_ended", {"status": self.status, "end_reason": self.end_reason})
        if self.ctx.worker is not None:
            self.ctx.worker.wake.set()
