"""CallSession: one Exotel call, bridged to one voice engine.

Two pumps and a watchdog per call: the WebSocket receive loop (caller → engine) runs in the
connection's own task, the engine's event loop (engine → caller) in a second task, and a 1 Hz
watchdog handles silence and the maximum call length. Each frame costs one parse, one resample and
one serialisation; nothing on the per-frame path logs, allocates a task or touches the database.

The session orchestrates; its parts live beside it: caller_socket.py (the WebSocket: parsing,
the wait for `start`, the close), call_record.py (the call's row: notes, usage, the writes),
call_stats.py (the counters), silence.py (the watchdog's rules), greeting_player.py (a cached
greeting played while the engine connects) and live_view.py (the owner's live view).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from receptionist import logctx, tracing
from receptionist.audio import StreamResampler, duration_ms, rms
from receptionist.bridge import callback_context, handoff, silence
from receptionist.bridge.budget import Budget
from receptionist.bridge.call_record import CallRecord, Outcome
from receptionist.bridge.call_stats import CallStats
from receptionist.bridge.caller_socket import CallerSocket
from receptionist.bridge.greeting_cache import CachedGreeting, GreetingCapture
from receptionist.bridge.greeting_player import GreetingPlayer, find_greeting
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
    HandoffRequested,
    Interrupted,
    Reconnected,
    TurnComplete,
    VoiceEngine,
)
from receptionist.observe import metrics
from receptionist.recordings.tape import CallTape
from receptionist.store import bookings
from receptionist.store.calls import FinishedCall
from receptionist.store.checkpoints import Checkpoint
from receptionist.store.search import response_times
from receptionist.telephony import exotel
from receptionist.tenants.repository import InactiveTenant, TenantError
from receptionist.tools.runner import (
    HandoffAnswer,
    HandoffRequest,
    ToolBox,
    ToolContext,
    ToolOutcome,
)
from receptionist.usage import TokenUsage

if TYPE_CHECKING:
    from receptionist.bridge.app import BridgeContext
    from receptionist.tenants.model import Tenant

log = logging.getLogger("receptionist.call")

# Digits noted on the row (and logged) per call; more are only counted, so a flood of DTMF frames
# neither logs a line per frame nor fills the row's events before what ends the call is noted.
MAX_DTMF_NOTES = 32
GOODBYE_GRACE_S = 15.0
# Caller audio may run ahead of real time by this much (network jitter delivers frames in
# bursts); beyond it frames are counted and dropped: a stream sending faster than a phone can
# speak would otherwise be forwarded, and billed by the model, at that rate.
MEDIA_BURST_S = 2.0
# A hold made during a call lasts until the call's longest possible end plus this: the end
# confirms or releases it well before, unless the process died (then the reaper releases it).
HOLD_GRACE = timedelta(minutes=5)
# How long the end of a call waits for its side writes (a hand-off's note) before saving.
SIDE_WRITES_WAIT_S = 5.0
# A caller's line starts this long before their voice was first noticed: the level is looked at
# four times a second, so the words began up to a check earlier (a recording seeks to the start).
VOICE_LEAD_MS = 300.0

# The process-wide frame latency histograms take one frame in this many per call (the call's
# own figures on its row take every frame). An observation in prometheus_client's multiprocess
# mode is two locked writes to a shared file: ~2 µs on an idle core, 4-8 µs on a busy machine
# (bench/metrics_hotpath.py), against 0.35 µs for the hand-written histogram it replaces. Every
# frame (~16 a call-second) would add 0.03-0.1 ms of CPU per call-second; one in 4 costs about
# what the old one did, keeps the distribution, and the frame totals are counted exactly.
LATENCY_SAMPLE_EVERY = 4


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
        self.stream_sid = ""
        self.caller_number = ""
        # what the engine is told of an earlier call when this one is an AI callback
        self.callback_context = ""
        # the call this one came back from (a hand-off nobody answered), None: a call of its own
        self.first_leg: str | None = None
        # database writes a call starts on the side (a hand-off's note): the end waits for them
        self._side_writes: set[asyncio.Task[None]] = set()
        self.tenant: Tenant | None = None
        self.engine: VoiceEngine | None = None
        self.stats = CallStats()
        self.transcript = TranscriptRecorder()
        self.status = "in_progress"
        self.end_reason = ""
        self.error: str | None = None
        self._t0 = time.monotonic()
        self.record = CallRecord(ctx, self.transcript, self.stats, t0=self._t0)  # the call's row
        self.socket = CallerSocket(
            ws, max_frame_bytes=ctx.settings.max_frame_bytes, stats=self.stats, note=self.note
        )
        self._start_at = self._t0  # when `start` was read
        # perf_counter() before the handshake was answered: no caller audio can have been sent
        # earlier, so the caller's real-time budget counts from here (see _caller_to_engine)
        self._connected_at = time.perf_counter() if connected_at is None else connected_at
        self.answered_at: datetime | None = None
        # caller-side state
        self._last_activity = self._t0
        self._voiced_at: float | None = None  # caller voice first heard since their last line
        self._playback_until = self._t0  # when the agent audio we sent finishes playing
        self._prompted_at: float | None = None  # when we asked "are you still there?"
        self._hangup: str | None = None  # reason, once we decided to end the call
        self._hangup_turn_done = False
        self._hangup_deadline = 0.0
        self._mark_seq = 0
        self._pending_goodbye_mark: str | None = None
        # greeting: played from the cache (a task) or captured from the engine to fill it
        self._greeting: GreetingPlayer | None = None
        self._capture: GreetingCapture | None = None
        self._watched = False  # the engine is connected and the watchdog runs (it ends a hang-up)
        self._trace: tracing.CallTrace | None = None  # this call's span, when tracing is on
        self.toolbox: ToolBox | None = None  # the tenant's tools on this call (None: none)
        self._tape: CallTape | None = None  # both sides' raw audio, when the tenant records

    # --- helpers ----------------------------------------------------------------------------

    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._t0) * 1000.0

    def note(self, kind: str, detail: str = "", *, level: int = logging.WARNING) -> None:
        """Record something that happened on the call row (bounded) and log it."""
        self.record.note(kind, detail, level=level)

    # --- lifecycle --------------------------------------------------------------------------

    async def run(self) -> None:
        start = await self.socket.await_start()
        if start is None:
            return
        self.ctx.start_gate.started()  # others' rows and sessions wait for its greeting
        start, self.first_leg = handoff.message_leg(start)  # back after an unanswered hand-off
        self._start_at = time.monotonic()
        self.call_sid, self.stream_sid = start.call_sid, start.stream_sid
        self.caller_number = start.from_number
        self.record.call_sid = self.call_sid
        tenant_id = (
            self.tenant_hint
            or start.custom_parameters.get("tenant")
            or start.custom_parameters.get("tenant_id")
            or ""
        )
        # Every log line from here on (this task and the tasks it starts) names the call; the
        # connection's task ends with the call, so nothing needs to unset it.
        logctx.bind(call_sid=self.call_sid, stream_sid=self.stream_sid, tenant=tenant_id)
        tenant = await self._admit(start, tenant_id)
        if tenant is None:
            return
        decline = await self._over_budget(tenant)
        self.ctx.registry[self.call_sid] = self
        self._trace = tracing.call_started(
            self.call_sid,
            tenant.tenant_id,
            self.stream_sid,
            t0_ns=int(self.record.started_at.timestamp() * 1e9),
            start_ms=(self._start_at - self._t0) * 1000.0,
        )
        metrics.ACTIVE_CALLS.inc()
        try:
            await self._converse(start, decline=decline)
        finally:
            self.ctx.registry.pop(self.call_sid, None)
            metrics.ACTIVE_CALLS.dec()
            try:
                await asyncio.shield(self._end())
            finally:
                self._log_end()

    async def _admit(self, start: exotel.Start, tenant_id: str) -> Tenant | None:
        """The call's tenant (also `self.tenant`), or None once the stream is refused: an
        unknown or inactive tenant, bad credentials, or a call_sid already live here."""
        try:
            self.tenant = tenant = self.ctx.tenants.get(tenant_id)
            self.record.tenant_id = tenant.tenant_id
        except InactiveTenant as exc:
            metrics.CALLS_STARTED.labels(exc.tenant.tenant_id if exc.tenant else "unknown").inc()
            # a known tenant: its owner sees the call it missed, if the stream is authentic
            known = exc.tenant is not None and self.ctx.check_tenant_auth(exc.tenant, self.ws)
            await self._reject(start, tenant_id, "tenant_unavailable", str(exc), record=known)
            return None
        except TenantError as exc:
            metrics.CALLS_STARTED.labels("unknown").inc()  # never a label from the stream
            # no tenant to own a row: an unknown id writes nothing (a stream could otherwise
            # plant rows, or reuse a real call's sid, without any credentials)
            await self._reject(start, tenant_id, "tenant_unavailable", str(exc), record=False)
            return None
        metrics.CALLS_STARTED.labels(tenant.tenant_id).inc()
        if not self.ctx.check_tenant_auth(tenant, self.ws):
            await self._reject(
                start, tenant_id, "unauthorized", "bad Exotel credentials", record=False
            )
            return None
        if self.call_sid in self.ctx.registry:
            await self._reject(
                start, tenant_id, "duplicate_call_sid", "call_sid already live", record=False
            )
            return None
        return tenant

    def _log_end(self) -> None:
        # one line per call, its outcome as fields (JSON logs): what an operator greps
        turns = len(self.transcript.turns)
        log.info(
            "call %s ended: %s (%s), %d turns",
            self.call_sid,
            self.status,
            self.end_reason,
            turns,
            extra={
                "status": self.status,
                "end_reason": self.end_reason,
                "turns": turns,
                "duration_s": round(time.monotonic() - self._start_at, 1),
            },
        )
        if self._trace is not None:
            self._trace.end(
                status=self.status,
                end_reason=self.end_reason,
                turns=turns,
                agent_turns=self.stats.agent_turns,
                interruptions=self.stats.interruptions,
                greeting_ms=self.stats.greeting_ms,
                engine=self.engine.name if self.engine is not None else None,
            )

    async def _reject(
        self, start: exotel.Start, tenant_id: str, reason: str, detail: str, *, record: bool
    ) -> None:
        """Refuse the stream; `record`: also write a `rejected` row (only for a known tenant's
        authentic stream, and never over another stream's row)."""
        metrics.CALLS_REJECTED.labels(reason).inc()
        log.error("call %s rejected (%s): %s", start.call_sid, reason, detail)
        self.status, self.end_reason, self.error = "rejected", reason, detail
        await self.socket.close(1008, detail[:120])
        if not record:
            return
        version = self.tenant.version if self.tenant is not None else None
        new = self.record.new_call(start, tenant_id, None, version)
        if await self.ctx.recorder.create(new, note=self.note) is not False:
            await asyncio.shield(self._persist_end())

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
        engine = await self._create_engine(start, tenant)
        if engine is None:
            return
        if tenant.recording is not None and not decline:
            self._start_tape(tenant)
        # The row is written while the model connects (the task runs at this call's first
        # wait, after a cached greeting's first frame): a slow database never delays a greeting.
        self.record.created = asyncio.create_task(self._create_row(start, tenant.tenant_id))
        cached = None
        if not decline:  # a miss: the engine greets, and its audio is captured for the cache
            cached, self._capture = await find_greeting(
                self.ctx.settings, engine, tenant, self._rate
            )
        if cached is not None and not await self._greet_from_cache(engine, cached):
            return
        log.info(
            "call %s: tenant=%s from=%s rate=%d engine=%s",
            self.call_sid,
            tenant.tenant_id,
            start.from_number,
            start.sample_rate,
            engine.name,
        )
        if await self._connect(engine):
            await self._bridge(engine, tenant, decline=decline, greeted=cached is not None)

    def _make_toolbox(self, start: exotel.Start, tenant: Tenant) -> ToolBox | None:
        if not tenant.tools.enabled:
            return None
        ctx = ToolContext(
            tenant=tenant,
            db=self.ctx.db,
            call_sid=start.call_sid,
            caller_number=start.from_number,
            on_handoff=self._handoff_requested,
            # a hold outlives the longest this call can last (the watchdog ends it there)
            hold_until=self.record.started_at
            + timedelta(seconds=self.ctx.settings.max_call_duration_s)
            + HOLD_GRACE,
        )
        timeout = self.ctx.settings.tool_timeout_s
        return ToolBox(ctx, timeout_s=timeout, on_outcome=self._tool_outcome)

    def _tool_outcome(self, outcome: ToolOutcome) -> None:
        """Every tool call is on the call's record; a refused, slow or failing one loudly."""
        detail = f"{outcome.name} {outcome.status} {outcome.ms:.0f}ms"
        if outcome.detail:
            detail += f": {outcome.detail}"
        self.note("tool", detail, level=logging.INFO if outcome.status == "ok" else logging.WARNING)

    async def _handoff_requested(self, request: HandoffRequest) -> HandoffAnswer:
        """The `handoff` tool: the model speaks the words, the stream ends after its turn."""
        who = f" (asked for {request.who})" if request.who else ""
        self.note("handoff_requested", f"{request.reason}{who}"[:300], level=logging.INFO)
        done = await handoff.request_handoff(self, request.reason, request.who, speak=False)
        return HandoffAnswer(done.status, done.say)

    async def _confirm_bookings(self) -> None:
        """The call is over: the holds whose answer reached the caller are confirmed, the rest
        released (a `book` cut short by the time bound, or whose answer was lost with the
        session, may have written its row, but the caller never heard of it). A database that
        is down leaves the holds to run out at their bound (ToolContext.hold_until)."""
        if self.toolbox is None or not any(o.name == "book" for o in self.toolbox.outcomes):
            return
        try:
            told = list(self.toolbox.ctx.told)
            confirmed, released = await bookings.settle_call(self.ctx.db, self.call_sid, told=told)
        except Exception as exc:
            self.note("bookings_not_confirmed", f"{type(exc).__name__}: {exc}"[:300])
            return
        if confirmed:
            self.note("bookings_confirmed", str(confirmed), level=logging.INFO)
        if released:
            self.note("bookings_released", str(released), level=logging.INFO)

    async def _create_engine(self, start: exotel.Start, tenant: Tenant) -> VoiceEngine | None:
        """The call's engine, and the caller side's framing; None (the call is over) when the
        factory refuses."""
        self.toolbox = self._make_toolbox(start, tenant)
        token = start.custom_parameters.get(callback_context.PARAM)
        if token:  # a call we placed to call someone back: the engine hears the first call
            self.callback_context = await callback_context.load(self, token, start.account_sid)
        instruction = tenant.system_instruction
        if self.callback_context:
            instruction += "\n" + self.callback_context
        if self.first_leg is not None:
            self.note("message_leg", f"back from {self.first_leg}", level=logging.INFO)
            self.in_background(handoff.came_back(self, self.first_leg))
            instruction += "\n" + handoff.MESSAGE_LEG_INSTRUCTION
        request = EngineRequest(
            call_sid=start.call_sid,
            tenant_id=tenant.tenant_id,
            system_instruction=instruction,
            language=tenant.primary_language,
            voice=tenant.voice,
            model=tenant.model,
            engine=tenant.engine,
            tenant=tenant,
            caller_number=start.from_number,
            caller_sample_rate=start.sample_rate,
            tools=self.toolbox,
        )
        try:
            engine = self.ctx.engine_factory(request)
        except EngineError as exc:
            metrics.ENGINE_ERRORS.labels(metrics.bounded(tenant.engine), "create_failed").inc()
            await self._engine_failed(str(exc))
            return None
        self.engine = engine
        self._chunker = exotel.OutboundChunker(
            start.sample_rate, min_ms=self.ctx.settings.exotel_min_chunk_ms
        )
        self._emit = exotel.Emitter(start.stream_sid)
        self._rate = start.sample_rate
        return engine

    async def _greet_from_cache(self, engine: VoiceEngine, cached: CachedGreeting) -> bool:
        """The caller hears the cached greeting now, while the engine connects; False: the
        caller is gone already (the call is over)."""
        engine.greeting_played(cached.spoken)  # type: ignore[attr-defined]
        self.stats.greeting_source = "cache"
        # Its first frame goes out now, before the engine's connect spends any CPU (100
        # calls starting together would otherwise wait for each other's session set-up).
        frames = cached.chunks(self._chunker.min_bytes)
        self.transcript.agent_text(cached.spoken, self.elapsed_ms())
        try:
            await self._send_audio([next(frames)], self.socket.send, self._emit, self._rate)
        except Exception as exc:  # the caller is gone already: nothing to connect for
            self.note("greeting_send_failed", f"{type(exc).__name__}", level=logging.INFO)
            self.status, self.end_reason = "completed", await self.socket.gone_reason()
            await engine.close()
            return False
        self._greeting = GreetingPlayer(
            frames,
            rate=self._rate,
            threshold=self.ctx.settings.speech_rms_threshold,
            send_frame=self._greeting_frame,
            heard_until=lambda: self._playback_until,
            end_turn=self._greeting_done,
            name=f"greet-{self.call_sid}",
        )
        # The engine is not needed before the caller has heard the greeting's first words:
        # its session set-up (SDK config, TLS handshake: milliseconds) waits until the calls
        # starting with this one have sent their first frames too (bridge/start_gate.py).
        await self.ctx.start_gate.wait()
        return True

    async def _connect(self, engine: VoiceEngine) -> bool:
        """Connect the engine (False: it failed and the call is over) and set up resampling."""
        try:
            await engine.connect()
        except EngineError as exc:
            metrics.ENGINE_ERRORS.labels(metrics.bounded(engine.name), "connect_failed").inc()
            await self._stop_greeting()
            await self._engine_failed(str(exc))
            return False
        except BaseException:
            await self._stop_greeting()
            raise
        self._in_rs = StreamResampler(self._rate, engine.input_rate)
        self._out_rs = StreamResampler(engine.output_rate, self._rate)
        return True

    async def _bridge(
        self, engine: VoiceEngine, tenant: Tenant, *, decline: bool, greeted: bool
    ) -> None:
        """The call proper: both pumps and the watchdog, until one of them ends it."""
        pump = asyncio.create_task(self._engine_to_caller(engine), name=f"pump-{self.call_sid}")
        watchdog = asyncio.create_task(self._watchdog(engine), name=f"watch-{self.call_sid}")
        self._watched = True
        try:
            if decline:  # over the monthly budget: a short, polite line, then hang up
                await self._begin_hangup(engine, "budget_exceeded", tenant.messages.busy, "busy")
            elif not greeted:
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
            await self.socket.close(1000, self.end_reason or "call ended")

    async def _create_row(self, start: exotel.Start, tenant_id: str) -> None:
        await self.ctx.start_gate.wait()  # greetings first (bridge/start_gate.py)
        version = self.tenant.version if self.tenant is not None else None
        if await self.record.create(start, tenant_id, self.engine, version, tenant=self.tenant):
            return
        # Another stream recorded this call_sid first (a finished call, or a live one in another
        # process): end this one and leave that row exactly as it is.
        self.status, self.end_reason = "rejected", "duplicate_call_sid"
        metrics.CALLS_REJECTED.labels("duplicate_call_sid").inc()
        log.error(
            "call %s rejected: the call_sid is already recorded by another stream", self.call_sid
        )
        await self.socket.close(1008, "duplicate call_sid")

    async def _engine_failed(self, reason: str) -> None:
        self.status, self.end_reason, self.error = "failed", "engine_unavailable", reason
        log.error("call %s: %s", self.call_sid, reason)
        # Exotel moves on to the flow's next applet (e.g. a Connect to the owner) on a clean close.
        await self.socket.close(1000, "assistant unavailable")

    # --- caller → engine --------------------------------------------------------------------

    async def _caller_to_engine(self, engine: VoiceEngine) -> None:
        """Caller audio to the engine, until the caller hangs up or stops the stream.

        The real-time budget counts from the connection, not from the first frame we process:
        when the event loop is late (overload, a burst of call starts), frames a real-time
        caller sent on time wait in the socket and reach us together; timed from our first read
        they would look faster than real time and be dropped. A caller cannot have sent more
        audio than the wall time since the handshake (plus jitter, the burst), however late we
        read it. Everything per frame is bound to a local first (no attribute chains)."""
        receive = self.ws.receive
        parse = self.socket.parse
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
        connected_at = self._connected_at
        tape = self._tape
        while True:
            msg = await receive()
            t0 = perf()
            if msg["type"] == "websocket.disconnect":
                if not self.end_reason:
                    self.end_reason = self.socket.disconnect_reason(msg)
                    self.status = "completed"
                return
            event = parse(msg)
            if type(event) is exotel.Media:
                if speed and (
                    stats.bytes_in + len(event.pcm)
                    > (t0 - connected_at) * bytes_per_s + burst_bytes
                ):
                    self.socket.bad_frame("over_realtime", "caller audio faster than real time")
                    continue
                stats.frames_in += 1
                stats.bytes_in += len(event.pcm)
                if t0 >= next_level_check:  # a few level checks a second are plenty
                    next_level_check = t0 + 0.25
                    if rms(event.pcm) > threshold:
                        self._last_activity = time.monotonic()
                        if self._voiced_at is None:
                            self._voiced_at = self._last_activity
                if tape is not None:  # a bytearray append (recordings/tape.py)
                    tape.caller_audio(event.pcm, time.monotonic())
                if self._greeting is not None and self._caller_over_greeting(event.pcm):
                    await self._cut_greeting()
                await send_audio(in_rs.process(event.pcm))
                dt = perf() - t0
                stats.latency_in.record(dt)
                if not stats.frames_in % LATENCY_SAMPLE_EVERY:  # see LATENCY_SAMPLE_EVERY
                    observe_in(dt)
            elif event is not None and self._caller_event(event):
                return

    def _caller_event(self, event: exotel.Event) -> bool:
        """A frame other than media (a handful per call); True: the stream stopped."""
        if isinstance(event, exotel.Stop):
            self.status = "completed"
            self.end_reason = self.end_reason or f"stop:{event.reason or 'callended'}"
            return True
        if isinstance(event, exotel.Mark):
            self.stats.marks_received += 1
            if event.name == self._pending_goodbye_mark:
                self._playback_until = time.monotonic()
            elif self._greeting is not None and event.name == self._greeting.mark:
                self._greeting = None  # the cached greeting was heard out
        elif isinstance(event, exotel.Dtmf):
            self.stats.dtmf += 1
            if self.stats.dtmf <= MAX_DTMF_NOTES:  # a flood is counted, not logged per frame
                self.note("dtmf", event.digit, level=logging.INFO)
            self._maybe_opt_out(event.digit)
        elif isinstance(event, exotel.Start):
            self.socket.bad_frame("duplicate_start", event.stream_sid)
        return False

    # --- engine → caller --------------------------------------------------------------------

    async def _engine_to_caller(self, engine: VoiceEngine) -> None:
        """Engine events to the caller until the engine closes: audio and transcripts (many a
        second) here, everything else (a few per turn) in `_engine_event`."""
        stats = self.stats
        observe_out = metrics.LATENCY_OUT.observe
        audio_events = 0
        out_rs, chunker, emit = self._out_rs, self._chunker, self._emit
        send = self.socket.send
        perf = time.perf_counter
        rate = self._rate
        async for ev in engine.events():
            t0 = perf()
            if type(ev) is AgentAudio:
                if self._greeting is not None:  # it answers the caller: who spoke over it
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
                if self._greeting is not None:
                    await self._cut_greeting()
                self.transcript.agent_text(ev.text, self.elapsed_ms())
            elif type(ev) is CallerTranscript:
                if self._greeting is not None:  # the engine heard the caller over it
                    await self._cut_greeting()
                self._last_activity = time.monotonic()
                voiced = self._voiced_at
                voiced_ms = None if voiced is None else (voiced - self._t0) * 1000 - VOICE_LEAD_MS
                if self.transcript.caller_text(ev.text, self.elapsed_ms(), voiced_ms=voiced_ms):
                    self._voiced_at = None  # the next line's voice is looked for from here
            elif await self._engine_event(ev, engine):
                return

    async def _engine_event(self, ev: object, engine: VoiceEngine) -> bool:
        """An engine event other than audio or a transcript; True: the engine closed."""
        if type(ev) is TurnComplete:
            await self._flush_turn(interrupted=False)
        elif type(ev) is Interrupted:
            if time.monotonic() < self._playback_until:
                self.transcript.cut_last_agent_turn(self.elapsed_ms())
            self._chunker.reset()
            self._out_rs.reset()
            await self._send_clear()
            self._playback_until = time.monotonic()
            await self._turn_done(interrupted=True)
        elif type(ev) is TokenUsage:
            self.record.add_usage(ev)
        elif type(ev) is EngineNote:
            self.note(ev.kind, ev.detail, level=ev.level)
        elif type(ev) is EndCall:
            if self._hangup is None:  # the goodbye is the turn being spoken now
                self._mark_hangup(ev.reason)
        elif type(ev) is HandoffRequested:  # its "putting you through" is being spoken now
            await handoff.request_handoff(self, ev.reason, ev.who, speak=False)
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
                await self.socket.close(1000, "assistant unavailable")
            return True
        return False

    async def _flush_turn(self, *, interrupted: bool) -> None:
        """The agent's turn ended: send the audio still held by the resampler and chunker."""
        tail = self._chunker.push(self._out_rs.flush()) + self._chunker.flush()
        if tail:
            await self._send_audio(tail, self.socket.send, self._emit, self._rate)
        await self._turn_done(interrupted=interrupted)

    async def _send_clear(self) -> None:
        """Tell Exotel to drop the agent audio it still holds (barge-in)."""
        await self.socket.send(self._emit.clear())
        if self._tape is not None:  # what Exotel drops was never heard: not on the tape
            self._tape.cut_agent(time.monotonic())
        self.stats.clears += 1
        self.stats.interruptions += 1
        metrics.CLEARS_SENT.inc()

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
            await self._flush_turn(interrupted=True)
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
        plays_at = max(self._playback_until, now)
        tape = self._tape
        for chunk in chunks:
            await send(emit.media(chunk))
            self.stats.frames_out += 1
            self.stats.bytes_out += len(chunk)
            if tape is not None:  # where it plays, after the audio still queued at Exotel
                tape.agent_audio(chunk, plays_at)
                plays_at += len(chunk) / (2 * rate)
        played = sum(duration_ms(len(c), rate) for c in chunks) / 1000.0
        self._playback_until = max(self._playback_until, now) + played

    async def _turn_done(self, *, interrupted: bool) -> None:
        self.stats.agent_turns += 1
        self._voiced_at = None  # voice heard from here on is the caller's next line
        committed = len(self.transcript.turns)
        turn = self.transcript.agent_done(self.elapsed_ms(), interrupted=interrupted)
        if self._trace is not None and turn is not None:
            self._trace.turn(self.transcript.turns[committed:], turn)
        for ms in response_times(self.transcript.turns[committed:]):  # per turn, not per frame
            metrics.RESPONSE.observe(ms / 1000.0)
        self.record.live.turns(self.transcript.turns)  # the caller's and this turn, just committed
        if self._capture is not None:  # the engine's greeting turn: keep it if heard out
            if turn is not None and not interrupted:
                self._capture.keep(str(turn.get("text") or ""))
            self._capture = None
        if turn is not None and not interrupted:
            self._mark_seq += 1
            name = f"agent-turn-{self._mark_seq}"
            await self.socket.send(self._emit.mark(name))
            self.stats.marks_sent += 1
            if self._hangup is not None and not self._hangup_turn_done:
                self._hangup_turn_done = True
                self._pending_goodbye_mark = name
        if turn is not None and self.ctx.on_turn is not None:
            caller = self.transcript.last_caller_text()
            self.ctx.on_turn(self, caller, turn)

    # --- the greeting from the cache ----------------------------------------------------------

    async def _greeting_frame(self, chunk: bytes) -> None:
        await self._send_audio([chunk], self.socket.send, self._emit, self._rate)
        self.transcript.agent_activity(self.elapsed_ms())

    async def _greeting_done(self) -> str:
        await self._turn_done(interrupted=False)
        return f"agent-turn-{self._mark_seq}"  # its mark

    def _caller_over_greeting(self, pcm: bytes) -> bool:
        """Is the caller speaking over the cached greeting (long enough to stop it)?"""
        assert self._greeting is not None
        over = self._greeting.barged_in(pcm)
        if over is None:
            self._greeting = None  # heard out: nothing left to interrupt
            return False
        return over

    async def _cut_greeting(self) -> None:
        """Barge-in on the cached greeting: stop sending it, `clear` what Exotel still holds
        and mark the turn interrupted, as for an engine's turn."""
        greeting, self._greeting = self._greeting, None
        if greeting is None:
            return
        still_open = await greeting.stop()
        now = time.monotonic()
        if now >= self._playback_until:
            return  # it had been heard out
        await self._send_clear()
        self._playback_until = now
        if still_open:
            await self._turn_done(interrupted=True)
        else:  # all sent, still playing: the committed turn was cut short
            self.transcript.cut_last_agent_turn(self.elapsed_ms())

    async def _stop_greeting(self) -> None:
        greeting, self._greeting = self._greeting, None
        if greeting is not None:
            await greeting.stop()

    # --- silence and length limits ------------------------------------------------------------

    async def _watchdog(self, engine: VoiceEngine) -> None:
        """A few times a second: the counters, then what bridge/silence.py decides."""
        s = self.ctx.settings
        assert self.tenant is not None
        messages = self.tenant.messages
        limits = silence.Limits(
            s.max_call_duration_s, s.silence_prompt_after_s, s.silence_hangup_after_s
        )
        while True:
            await asyncio.sleep(min(1.0, s.silence_prompt_after_s / 4))
            self.record.flush_counts()
            if self._tape is not None:  # the tape's bytes to disk, from a thread (never waited)
                self._tape.flush_soon()
            clocks = silence.Clocks(
                self._t0, self._last_activity, self._playback_until, self._prompted_at
            )
            pending = None
            if self._hangup is not None:
                pending = silence.Hangup(self._hangup_turn_done, self._hangup_deadline)
            verdict = silence.decide(time.monotonic(), clocks, limits, pending)
            self._prompted_at = verdict.prompted_at
            act = verdict.act
            if act is silence.Act.END:
                assert self._hangup is not None
                self.status, self.end_reason = "completed", self._hangup
                await self.socket.close(1000, self._hangup)
                return
            if act is silence.Act.MAX_DURATION:
                await self._begin_hangup(
                    engine, "max_duration", messages.goodbye_max_duration, "goodbye_max_duration"
                )
            elif act is silence.Act.PROMPT:
                self.note("silence_prompt", f"{verdict.silent_s:.0f}s silent", level=logging.INFO)
                await engine.say(messages.still_there, "still_there")
            elif act is silence.Act.SILENT:
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
        if self._hangup is not None or self.socket.closed.is_set():
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
        await self.socket.close(1000, reason)

    # --- hand-off to a person (bridge/handoff.py) ---------------------------------------------

    async def request_handoff(
        self, reason: str, who: str | None = None, *, speak: bool = True
    ) -> handoff.HandoffResult:
        """Put the caller through to a person (the `handoff` tool's entry point): the agent says
        so, the row records who and why, and the stream ends once that line is heard, so Exotel's
        flow goes on to its Connect applet. Outside the tenant's hours the call goes on and the
        agent takes a message instead (see ``HandoffResult.status``)."""
        return await handoff.request_handoff(self, reason, who, speak=speak)

    def in_background(self, write: Coroutine[Any, Any, None]) -> None:
        """Run a database write beside the call (never in a pump); the call's end waits for
        it (bounded) so its row has everything."""
        task = asyncio.create_task(write, name=f"side-{self.call_sid}")
        self._side_writes.add(task)
        task.add_done_callback(self._side_writes.discard)

    @property
    def hangup_reason(self) -> str | None:
        """Why the call is ending, once something decided it is (None: it goes on)."""
        return self._hangup

    def end_after_turn(self, reason: str) -> None:
        """End the call once the agent's turn being spoken now (or next) has been heard."""
        if self._hangup is None:
            self._mark_hangup(reason)

    def _mark_hangup(self, reason: str) -> None:
        """End the call once the turn being spoken (the goodbye) has been heard."""
        self._hangup = reason
        self._hangup_deadline = time.monotonic() + GOODBYE_GRACE_S
        self.note("hangup", reason, level=logging.INFO)

    # --- the recording --------------------------------------------------------------------------

    def _start_tape(self, tenant: Tenant) -> None:
        """Record both sides of this call (tenant's [recording]); a disk that refuses the files
        leaves the call unrecorded, never unanswered."""
        try:
            self._tape = CallTape(
                self.ctx.settings.recordings_spool_dir,
                call_sid=self.call_sid,
                tenant=tenant.tenant_id,
                session_id=self.record.session_id,
                rate=self._rate,
                t0=self._t0,
                max_s=self.ctx.settings.max_call_duration_s + GOODBYE_GRACE_S + 30.0,
            )
        except OSError as exc:
            self.note("recording_failed", f"{type(exc).__name__}: {exc}")

    def _maybe_opt_out(self, digit: str) -> None:
        """The tenant's opt-out key: nothing of this call is kept (the tape deletes its files)."""
        tape = self._tape
        policy = self.tenant.recording if self.tenant is not None else None
        if tape is None or policy is None or tape.opted_out or digit != policy.opt_out_digit:
            return
        tape.opt_out()
        self.note("recording_opt_out", f"the caller pressed {digit}", level=logging.INFO)

    async def _end(self) -> None:
        """The tape closed first (once the row is final, so is its recording), then the row."""
        if self._tape is not None:
            try:
                await self._close_tape()
            except Exception:  # a recording's bug must not cost the call its row
                log.exception("call %s: closing the recording failed", self.call_sid)
        await self._persist_end()

    async def _close_tape(self) -> None:
        """The tape's manifest for the worker's uploader (recordings/uploader.py), then wake it."""
        assert self._tape is not None
        if self.record.created is not None:  # is this stream the call's? (its row says)
            await asyncio.gather(self.record.created, return_exceptions=True)
        self._tape.cut_agent(time.monotonic())  # agent audio still queued when the line closed
        # another stream owns this call: its tape is the call's recording, this one goes
        manifest = await self._tape.close(keep=not self.record.duplicate)
        if manifest.error:
            log.warning("call %s: recording failed: %s", self.call_sid, manifest.error)
        uploader = getattr(self.ctx.worker, "recordings", None)
        if uploader is not None:
            uploader.wake.set()

    # --- persistence --------------------------------------------------------------------------

    def finished_call(self) -> FinishedCall:
        """The call as its end records it."""
        return self.record.finished_call(self._outcome())

    def checkpoint_version(self) -> tuple[Any, ...]:
        """Changes when the transcript or the tokens have something new (checkpointer.py)."""
        return self.record.checkpoint_version()

    def checkpoint(self) -> Checkpoint | None:
        """The call so far, for the checkpointer (bridge/checkpointer.py); see CallRecord."""
        return self.record.checkpoint(self.answered_at)

    def _outcome(self) -> Outcome:
        return Outcome(self.status, self.end_reason, self.error, self.answered_at)

    async def _persist_end(self) -> None:
        if self._side_writes:
            await asyncio.wait(set(self._side_writes), timeout=SIDE_WRITES_WAIT_S)
        if self.status == "in_progress":
            self.status, self.end_reason = "completed", self.end_reason or "caller_disconnected"
        await self._confirm_bookings()  # noted on the row, so before it is written
        await self.record.finish(self._outcome())
