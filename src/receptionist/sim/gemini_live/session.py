"""One Live session of the double: setup, caller turns, replies, resumption, failures."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

import orjson
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from receptionist.sim.gemini_live.model import (
    AUDIO_TOKENS_PER_S,
    DEADLINE_REASON,
    HISTORY_CONFIG_REFUSED,
    INTERNAL_ERROR_CODE,
    INTERNAL_ERROR_REASON,
    INVALID_KEY_CLOSE_CODE,
    INVALID_KEY_REASON,
    MAX_STORED_FRAMES,
    AgentReply,
    CallerTurn,
    CallScript,
    Hold,
    LiveSessionRecord,
    ScriptedTurn,
    ToolCallRecord,
)
from receptionist.sim.gemini_live.wire import (
    GENERATION_COMPLETE,
    INTERRUPTED,
    QUOTED,
    SETUP_COMPLETE,
    WindowVad,
    b64decode,
    content_text,
    dumps,
    get_key,
    rate_from_mime,
    reply_plan,
    two_pieces,
)

if TYPE_CHECKING:  # the server makes sessions; a session only calls back into it
    from receptionist.sim.gemini_live.server import FakeGeminiLive


# --------------------------------------------------------------------------- one session


class Session:
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
        self.vad = WindowVad()
        self.in_speech = False
        self.speech_s = 0.0
        self.silence_s = 0.0
        self.barge_in = False
        # agent state
        self.reply_task: asyncio.Task[None] | None = None
        self.tool_task: asyncio.Task[None] | None = None  # waiting for tool answers
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
        setup = get_key(first, "setup")
        if not isinstance(setup, dict):
            rec.error = "first frame is not setup"
            await ws.close(1007, "Invalid JSON payload: the first message must be setup.")
            return
        self._count("setup")
        if fake.failure.reject_history_config and get_key(setup, "history_config") is not None:
            rec.error = "historyConfig refused"
            await ws.close(1007, HISTORY_CONFIG_REFUSED)
            return
        self._apply_setup(setup)
        down_from = fake.failure.fail_sessions_from
        if fake.failure.fail_setup or (down_from is not None and rec.index >= down_from):
            rec.error = "setup failed (fault)"
            await ws.close(INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
            return
        handle = get_key(get_key(setup, "session_resumption"), "handle")
        if handle:
            refusal = fake._resume_refusal(handle)
            if refusal is not None:
                rec.error = f"resumption refused: {refusal[1]}"
                await ws.close(*refusal)
                return
            self._restore(handle)
        await self._send(SETUP_COMPLETE)
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
            dumps({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})
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
            await self._send(dumps({"goAway": {"timeLeft": time_left}}))
        self.rec.go_away_sent_at = self.clock()
        seconds = float(time_left.rstrip("s") or 0)
        self.deadline_task = asyncio.create_task(self._close_when_time_is_up(seconds))

    async def _close_when_time_is_up(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        with contextlib.suppress(ConnectionClosed):
            await self.ws.close(INTERNAL_ERROR_CODE, DEADLINE_REASON)

    async def shutdown(self) -> None:
        for task in (self.reply_task, self.tool_task, self.go_away_task, self.deadline_task):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.wait([task])

    def _apply_setup(self, setup: dict[str, Any]) -> None:
        rec, fake = self.rec, self.fake
        rec.setup = setup
        rec.setup_at = self.clock()
        model = get_key(setup, "model")
        rec.model = model if isinstance(model, str) else None
        si = content_text(get_key(setup, "system_instruction"))
        rec.system_instruction = si or None
        self.text_in_chars += len(si)
        gen = get_key(setup, "generation_config") or {}
        modalities = get_key(gen, "response_modalities") or ["AUDIO"]
        self.audio_out = any(str(m).upper() == "AUDIO" for m in modalities)
        self.input_transcription = get_key(setup, "input_audio_transcription") is not None
        self.output_transcription = get_key(setup, "output_audio_transcription") is not None
        self.resumption = get_key(setup, "session_resumption") is not None
        aad = get_key(get_key(setup, "realtime_input_config"), "automatic_activity_detection")
        self.auto_vad = not bool(get_key(aad, "disabled"))
        history = get_key(setup, "history_config")
        self.history_open = bool(get_key(history, "initial_history_in_client_content"))
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
        ri = get_key(msg, "realtime_input")
        if ri is not None:
            await self._on_realtime_input(ri, msg)
            return
        cc = get_key(msg, "client_content")
        if cc is not None:
            self._count("client_content")
            self._store(msg)
            await self._on_client_content(cc)
            return
        tr = get_key(msg, "tool_response")
        if tr is not None:
            self._count("tool_response")
            self._on_tool_response(tr)
        else:
            self._count("other")
        self._store(msg)

    async def _on_realtime_input(self, ri: dict[str, Any], msg: dict[str, Any]) -> None:
        audio = get_key(ri, "audio")
        chunks = get_key(ri, "media_chunks")
        if audio is None and not chunks:
            self._count("realtime_input")
            self._store(msg)
        else:
            self._count("realtime_input.audio")
        if get_key(ri, "activity_start") is not None:
            await self._speech_started()
        if isinstance(audio, dict):
            await self._on_audio(audio)
        if isinstance(chunks, list):
            for blob in chunks:
                if isinstance(blob, dict):
                    await self._on_audio(blob)
        if get_key(ri, "activity_end") is not None and self.in_speech:
            await self._end_caller_turn("activity")
        if get_key(ri, "audio_stream_end") and self.in_speech:
            await self._end_caller_turn("audio")
        text = get_key(ri, "text")
        if isinstance(text, str) and text:
            self.text_in_chars += len(text)
            await self._caller_turn_done("text", heard_override=text)

    async def _on_audio(self, blob: dict[str, Any]) -> None:
        data = get_key(blob, "data")
        if not data:
            return
        pcm = b64decode(data) if isinstance(data, str) else bytes(data)
        rate = rate_from_mime(get_key(blob, "mime_type") or "")
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
        text = content_text(get_key(cc, "turns"))
        quoted = QUOTED.search(text)
        if quoted:  # "say these words: «...»", as a real model would, speaks only the words
            text = quoted.group(1).strip()
        self.text_in_chars += len(text)
        if not get_key(cc, "turn_complete"):
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
        turns = get_key(cc, "turns")
        for turn in turns if isinstance(turns, list) else [turns]:
            if not isinstance(turn, dict):
                continue
            role = get_key(turn, "role")
            role = role if role in ("user", "model") else "user"
            text = content_text(turn)
            self.rec.history.append({"role": role, "text": text})
            self.text_in_chars += len(text)
            if role == "model":
                self.greeted = True
        if get_key(cc, "turn_complete"):
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
            await self._send(INTERRUPTED)

    async def _end_caller_turn(self, source: str) -> None:
        self.in_speech = False
        self.silence_s = 0.0
        await self._caller_turn_done(source)

    async def _caller_turn_done(self, source: str, heard_override: str | None = None) -> None:
        script = self.script
        hold: Hold | None = None
        st: ScriptedTurn | None = None
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
            for piece in two_pieces(heard):
                await self._send(dumps({"serverContent": {"inputTranscription": {"text": piece}}}))
        if st is not None and st.tool_calls:
            await self._call_tools(st, kind, hold)
            return
        await self._start_reply(reply, kind, hold)

    # ---- tools

    async def _call_tools(self, st: ScriptedTurn, kind: str, hold: Hold | None) -> None:
        """Send the turn's function calls (and withdraw those marked so); the reply follows
        once every other one is answered."""
        rec = self.rec
        calls: list[ToolCallRecord] = []
        for sc in st.tool_calls:
            call_id = f"fc-{rec.index}-{len(rec.tool_calls)}"
            call = ToolCallRecord(
                call_id, sc.name, sc.args, sent_at=self.clock(), sent_perf=time.perf_counter()
            )
            call.cancelled = sc.cancel
            rec.tool_calls.append(call)
            calls.append(call)
        fcs = [{"id": c.call_id, "name": c.name, "args": c.args} for c in calls]
        await self._send(dumps({"toolCall": {"functionCalls": fcs}}))
        withdrawn = [c.call_id for c in calls if c.cancelled]
        if withdrawn:
            await self._send(dumps({"toolCallCancellation": {"ids": withdrawn}}))
        self.tool_task = asyncio.create_task(self._reply_after_tools(st, calls, kind, hold))

    async def _reply_after_tools(
        self, st: ScriptedTurn, calls: list[ToolCallRecord], kind: str, hold: Hold | None
    ) -> None:
        waiting = [c.answered.wait() for c in calls if not c.cancelled]
        if waiting:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.script.tool_wait_s):
                    await asyncio.gather(*waiting)
        answers = {c.name: c.response for c in calls if c.response is not None}
        text = st.reply_from(answers) if st.reply_from is not None else st.reply
        with contextlib.suppress(ConnectionClosed):
            await self._start_reply(text, kind, hold)

    async def cancel_tool_calls(self, ids: list[str]) -> None:
        for call in self.rec.tool_calls:
            if call.call_id in ids:
                call.cancelled = True
                call.answered.set()  # the model stops waiting for it
        with contextlib.suppress(ConnectionClosed):
            await self._send(dumps({"toolCallCancellation": {"ids": ids}}))

    def _on_tool_response(self, tr: Any) -> None:
        responses = get_key(tr, "function_responses")
        for fr in responses if isinstance(responses, list) else ():
            if not isinstance(fr, dict):
                continue
            call_id = get_key(fr, "id")
            call = next(
                (
                    c
                    for c in self.rec.tool_calls
                    if c.call_id == call_id and not c.cancelled and c.answered_at is None
                ),
                None,
            )
            if call is None:
                if len(self.rec.stray_tool_responses) < MAX_STORED_FRAMES:
                    self.rec.stray_tool_responses.append(fr)
                continue
            call.response = get_key(fr, "response")
            scheduling = get_key(fr, "scheduling")
            call.scheduling = scheduling if isinstance(scheduling, str) else None
            call.answered_at = self.clock()
            call.answered_perf = time.perf_counter()
            call.answered.set()

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
            plan = reply_plan(reply.text, fake.chunk_ms, self.audio_out, self.output_transcription)
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
            await ws.send(GENERATION_COMPLETE)
            usage = self._usage(reply)
            reply.completed = True
            reply.ended_at = self.clock()
            self.rec.usage.append(usage)
            await ws.send(dumps({"serverContent": {"turnComplete": True}, "usageMetadata": usage}))
            self.replies_done += 1
            if self.resumption:
                await self._issue_handle()
            n = fake.failure.close_after_turns
            if n is not None and self.replies_done >= n:
                await ws.close(INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
        except ConnectionClosed:
            pass
