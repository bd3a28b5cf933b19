"""One simulated call over the Exotel WebSocket (`place_call`), and many at once (`run_load`)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import math
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from receptionist.sim.caller.clips import (
    Clip,
    MediaFrames,
    clip_from_pcm,
    load_wav_clip,
    silence_payload,
    utterance_clip,
    write_wav,
)
from receptionist.sim.caller.script import CallerScript, CallOptions, CallResult, TranscriptEvent
from receptionist.telephony.exotel import (
    connected_frame,
    dtmf_frame,
    mark_frame,
    parse_outbound,
    start_frame,
    stop_frame,
)

# --- one call ----------------------------------------------------------------------------------


class Closed(Exception):
    """The connection closed under the sender."""


class Call:
    def __init__(
        self,
        opts: CallOptions,
        script: CallerScript | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        # `clock` and `sleep` drive the pacing and the playback model; tests replace them to run
        # the player on a clock they set.
        self._clock = clock
        self._sleep = sleep
        self.opts = opts
        self.script = script
        self.cfg = script or CallerScript()
        self.res = CallResult(call_sid=opts.call_sid)
        self.ws: ClientConnection | None = None
        self.receiver: asyncio.Task[None] | None = None
        self.frames = MediaFrames(opts.stream_sid)
        self.silence_b64 = silence_payload(opts.sample_rate, opts.frame_ms)
        self.frame_s = opts.frame_ms / 1000.0
        self.bytes_per_s = opts.sample_rate * 2
        self.quiet_s = self.cfg.agent_quiet_ms / 1000.0
        self.t0 = self._clock()
        self.next_t = 0.0
        self.seq = 0
        self.chunk = 0
        self.closed = False
        self.hung_up = False
        self.aborted = False
        # caller turn state
        self.in_turn = False
        self.turn_no = 0
        self.awaiting_since: float | None = None  # end of caller turn, no reply seen yet
        self.reply_seen = False  # agent audio since the caller's last turn end (or call start)
        self.reply_started: float | None = None
        self.spoken: dict[int, Clip] = {}  # utterance index -> clip in the chosen voice
        # agent playback state
        self.speaking = False
        self.seg_start = 0.0
        self.seg_bytes = 0
        self.last_arrival = 0.0
        self.playback_end = 0.0
        self.pending_marks: list[tuple[float, str]] = []
        self.agent_bytes = 0
        self.agent_pcm: bytearray | None = bytearray() if opts.wav_out else None

    # events

    def _emit(self, kind: str, text: str = "", now: float | None = None) -> None:
        t = (now if now is not None else self._clock()) - self.t0
        ev = TranscriptEvent(round(t * 1000.0, 1), kind, text)
        self.res.events.append(ev)
        cb = self.opts.on_event
        if cb is not None:
            with contextlib.suppress(Exception):  # a printing problem must not break the call
                cb(ev)

    # sending

    async def _send(self, text: str) -> None:
        ws = self.ws
        assert ws is not None
        if self.closed:
            raise Closed
        await ws.send(text)
        self.res.frames_sent += 1

    async def _send_media(self, payload: str, *, paced: bool) -> float:
        """Send one media frame (on schedule when paced); returns its send time."""
        if paced:
            delay = self.next_t - self._clock()
            if delay > 0:
                await self._sleep(delay)
            elif -delay * 1000.0 > self.res.max_send_lag_ms:
                self.res.max_send_lag_ms = round(-delay * 1000.0, 1)
            self.next_t += self.frame_s
        else:
            await asyncio.sleep(0)  # let the receiver run between burst frames
            self.next_t = self._clock() + self.frame_s
        self.seq += 1
        self.chunk += 1
        await self._send(
            self.frames.build(
                payload,
                sequence=self.seq,
                chunk=self.chunk,
                timestamp_ms=self.chunk * self.opts.frame_ms,
            )
        )
        self.res.media_sent += 1
        now = self._clock()
        self._update(now)
        await self._echo_due_marks(now)
        return now

    async def _play(self, clip: Clip, *, paced: bool) -> None:
        for i, payload in enumerate(clip.payloads):
            voiced = clip.voiced[i]
            if voiced and not self.in_turn:
                self.in_turn = True
                if self.awaiting_since is not None:  # spoke again without a reply
                    self.res.unanswered_turns += 1
                    self.awaiting_since = None
            sent = await self._send_media(payload, paced=paced)
            if i in clip.turn_ends:
                self.in_turn = False
                self.turn_no += 1
                self.awaiting_since = sent
                self.res.turn_end_ms.append(round((sent - self.t0) * 1000.0, 1))
                self.reply_seen = False
                self.reply_started = None

    async def _silence(self, ms: float, *, paced: bool) -> None:
        for _ in range(math.ceil(ms / self.opts.frame_ms)):
            await self._send_media(self.silence_b64, paced=paced)

    async def _wait(self, cond: Callable[[], bool], timeout_s: float) -> bool:
        """Stream paced silence until `cond()` holds; False on timeout."""
        deadline = self._clock() + timeout_s
        while True:
            now = self._clock()
            self._update(now)
            if cond():
                return True
            if now >= deadline:
                self.res.turn_timeouts += 1
                self._emit("turn_timeout", f"no agent reply within {timeout_s:g} s", now)
                return False
            await self._send_media(self.silence_b64, paced=True)

    def _agent_done(self) -> bool:
        return self.reply_seen and not self.speaking

    def _barge_in_due(self, after_s: float) -> bool:
        started = self.reply_started
        return started is not None and self._clock() >= started + after_s

    async def _echo_due_marks(self, now: float) -> None:
        if not self.pending_marks or self.pending_marks[0][0] > now:
            return
        while self.pending_marks and self.pending_marks[0][0] <= now:
            _, name = self.pending_marks.pop(0)
            self.seq += 1
            await self._send(mark_frame(self.opts.stream_sid, name, sequence=self.seq))
            self.res.marks_echoed += 1
            self._emit("mark", name, now)

    def _update(self, now: float) -> None:
        """Time-driven state: the agent's audio segment ends after `agent_quiet_ms` of quiet."""
        if self.speaking and now - max(self.last_arrival, self.playback_end) >= self.quiet_s:
            self._end_segment(now, "")

    def _end_segment(self, now: float, why: str) -> None:
        self.speaking = False
        ms = self.seg_bytes * 1000.0 / self.bytes_per_s
        self._emit("agent_audio_end", f"{ms:.0f} ms{why}", now)

    # the script

    async def _script(self) -> None:
        opts, cfg = self.opts, self.cfg
        fast = not opts.realtime
        if opts.wav_in is not None:
            path = Path(opts.wav_in)
            clip = await asyncio.to_thread(load_wav_clip, path, opts.sample_rate, opts.frame_ms)
            self._emit("caller_said", f"[wav {path.name}, {clip.duration_ms / 1000:.1f} s]")
            await self._play(clip, paced=not fast)
            await self._silence(cfg.pause_ms, paced=not fast)
        elif self.script is not None:
            for i, text in enumerate(cfg.utterances):
                if i in cfg.barge_in:
                    await self._wait(
                        functools.partial(self._barge_in_due, cfg.barge_in[i] / 1000.0),
                        cfg.turn_timeout_s,
                    )
                elif cfg.wait_for_agent:
                    await self._wait(self._agent_done, cfg.turn_timeout_s)
                for digit in cfg.dtmf.get(i, ""):
                    self.seq += 1
                    await self._send(dtmf_frame(opts.stream_sid, digit, sequence=self.seq))
                    self._emit("dtmf", digit)
                    await self._silence(opts.frame_ms, paced=not fast)
                clip = self.spoken.get(i) or utterance_clip(text, opts.sample_rate, opts.frame_ms)
                self._emit("caller_said", text)
                await self._play(clip, paced=not fast)
                await self._silence(cfg.pause_after_ms.get(i, cfg.pause_ms), paced=not fast)
        await self._wait(self._agent_done, cfg.turn_timeout_s)  # the final reply
        await self._silence(cfg.hangup_after_ms, paced=True)
        self.seq += 1
        await self._send(stop_frame(opts.stream_sid, opts.call_sid, sequence=self.seq))
        self.hung_up = True
        self._emit("hangup")

    # receiving

    async def _receive(self) -> None:
        ws = self.ws
        assert ws is not None
        try:
            async for raw in ws:
                self.res.frames_received += 1
                self._on_frame(raw)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            if not self.res.closed_by:
                self.res.closed_by = "caller" if self.hung_up or self.aborted else "server"

    def _bad(self, why: str) -> None:
        self.res.bad_frames += 1
        self._emit("bad_frame", why)

    def _on_frame(self, raw: str | bytes) -> None:
        try:
            msg = parse_outbound(raw)
        except ValueError as exc:  # ProtocolError and orjson.JSONDecodeError
            self._bad(str(exc)[:120])
            return
        event = msg.get("event")
        now = self._clock()
        if event == "media":
            pcm = msg["pcm"]
            if len(pcm) & 1:
                self._bad(f"odd-length media payload ({len(pcm)} bytes)")
                return
            self._on_agent_audio(pcm, now)
        elif event == "mark":
            body = msg.get("mark")
            name = body.get("name") if isinstance(body, dict) else None
            if not isinstance(name, str):
                self._bad("mark without a name")
                return
            # Exotel answers once the audio queued before the mark has been played.
            self.pending_marks.append((max(now, self.playback_end), name))
        elif event == "clear":
            self.res.clears += 1
            dropped = max(0.0, self.playback_end - now)
            self.res.cleared_ms += dropped * 1000.0
            self.playback_end = min(self.playback_end, now)
            self.pending_marks = [(now, name) for _, name in self.pending_marks]
            self._emit("clear", f"dropped {dropped * 1000:.0f} ms of queued agent audio", now)
            if self.speaking:
                self._end_segment(now, " (cut by clear)")
        else:
            self._bad(f"unexpected event {str(event)[:40]!r}")

    def _on_agent_audio(self, pcm: bytes, now: float) -> None:
        res = self.res
        res.media_received += 1
        n = len(pcm)
        self.agent_bytes += n
        if self.agent_pcm is not None:
            self.agent_pcm += pcm
        if res.greeting_ms is None:
            res.greeting_ms = round((now - self.t0) * 1000.0, 1)
        if not self.speaking:
            self.speaking = True
            self.seg_start = now
            self.seg_bytes = 0
            label = "greeting" if self.turn_no == 0 else f"reply to turn {self.turn_no}"
            self._emit("agent_audio_start", label, now)
            if self.awaiting_since is not None:
                res.response_ms.append(round((now - self.awaiting_since) * 1000.0, 1))
                res.reply_start_ms.append(round((now - self.t0) * 1000.0, 1))
                self.awaiting_since = None
        if not self.reply_seen:
            self.reply_seen = True
            self.reply_started = now
        self.seg_bytes += n
        self.last_arrival = now
        self.playback_end = max(now, self.playback_end) + n / self.bytes_per_s

    # the whole call

    async def _session(self) -> None:
        opts = self.opts
        headers: dict[str, str] = {}
        if opts.auth is not None:
            token = base64.b64encode(f"{opts.auth[0]}:{opts.auth[1]}".encode()).decode()
            headers["Authorization"] = "Basic " + token
        try:
            self.ws = await connect(
                opts.url,
                additional_headers=headers or None,
                max_size=2**22,
                compression=None,
                ping_interval=None,
                open_timeout=opts.connect_timeout_s,
                close_timeout=5,
                proxy=None,
            )
        except InvalidStatus as exc:
            self.res.error = f"connect: HTTP {exc.response.status_code}"
            return
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            self.res.error = f"connect: {type(exc).__name__}: {exc}"[:200]
            return
        ws = self.ws
        self.receiver = receiver = asyncio.create_task(self._receive())
        try:
            await self._send(connected_frame())
            self.seq = 1
            await self._send(
                start_frame(
                    stream_sid=opts.stream_sid,
                    call_sid=opts.call_sid,
                    from_number=opts.from_number,
                    to_number=opts.to_number,
                    account_sid=opts.account_sid,
                    custom_parameters=opts.custom_parameters,
                    sample_rate=opts.sample_rate,
                    sequence=self.seq,
                )
            )
            self.t0 = self._clock()
            self.res.start_sent_at = self.t0
            self.next_t = self.t0
            self._emit("connected", opts.url, self.t0)
            await self._script()
        except (Closed, ConnectionClosed):
            pass
        await ws.close()
        await receiver

    async def _speak_lines(self) -> None:
        """Render every line in the chosen voice before dialling (the caller never waits for
        its own voice mid-call)."""
        voice, opts = self.opts.voice, self.opts
        if voice is None or self.script is None:
            return
        for i, text in enumerate(self.cfg.utterances):
            pcm = await voice(text, opts.sample_rate)
            self.spoken[i] = clip_from_pcm(pcm, opts.sample_rate, opts.frame_ms)

    async def run(self) -> CallResult:
        res = self.res
        await self._speak_lines()
        started = self._clock()
        try:
            async with asyncio.timeout(self.opts.max_call_s):
                await self._session()
        except TimeoutError:
            res.error = f"timeout: call still running after {self.opts.max_call_s:g} s"
        except Exception as exc:
            res.error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            ws = self.ws
            if ws is not None and ws.state is not State.CLOSED:
                self.aborted = True
                ws.transport.abort()
            if self.receiver is not None and not self.receiver.done():
                self.receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.receiver
        now = self._clock()
        if self.speaking:
            self._end_segment(now, " (call ended)")
        if ws is not None:
            res.close_code = ws.close_code
            res.close_reason = ws.close_reason or ""
            if not res.closed_by:
                res.closed_by = "caller" if self.hung_up else "server"
            self._emit("closed", f"{res.close_code} {res.close_reason}".strip(), now)
            if res.error is None and res.close_code not in (1000, 1001):
                res.error = f"closed {res.close_code} {res.close_reason}".strip()
        if res.error is not None:
            self._emit("error", res.error, now)
        res.ok = res.error is None
        res.agent_audio_ms = round(self.agent_bytes * 1000.0 / self.bytes_per_s, 1)
        res.duration_s = round(now - started, 3)
        if self.opts.wav_out is not None and self.agent_pcm is not None:
            try:
                await asyncio.to_thread(
                    write_wav,
                    Path(self.opts.wav_out),
                    bytes(self.agent_pcm),
                    self.opts.sample_rate,
                )
            except OSError as exc:
                res.ok = False
                res.error = res.error or f"wav_out: {exc}"[:200]
        return res


async def place_call(opts: CallOptions, script: CallerScript | None = None) -> CallResult:
    """Place one simulated Exotel call. Never raises for call failures (they land in
    `CallResult.error`) and never runs longer than `opts.max_call_s` (+ the close)."""
    return await Call(opts, script).run()


async def run_load(
    make_opts: Callable[[int], CallOptions],
    script: CallerScript,
    *,
    calls: int,
    concurrency: int,
    on_done: Callable[[CallResult], None] | None = None,
) -> list[CallResult]:
    """Place `calls` calls, at most `concurrency` at a time; results in call-index order.

    An exception inside one call (even from `make_opts`) becomes a failed CallResult; it never
    aborts the run.
    """
    results: list[CallResult | None] = [None] * calls
    sem = asyncio.Semaphore(max(1, concurrency))

    async def one(i: int) -> None:
        async with sem:
            try:
                res = await place_call(make_opts(i), script)
            except Exception as exc:
                res = CallResult(call_sid=f"call-{i}", error=f"{type(exc).__name__}: {exc}"[:200])
            results[i] = res
            if on_done is not None:
                with contextlib.suppress(Exception):
                    on_done(res)

    await asyncio.gather(*(one(i) for i in range(calls)))
    return [r for r in results if r is not None]
