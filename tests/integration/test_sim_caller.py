"""The simulated caller against a tiny fake bot playing the bridge's side of the Exotel stream.

Whole calls check what happens and in which order; the caller's clock-driven parts (pacing, the
player that echoes marks and obeys `clear`) run on a clock the test sets, so no result depends on
how fast the machine is. Real-time figures (pacing lag under load) belong to bench/.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import math
import wave
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from websockets.asyncio.server import ServerConnection, serve

from receptionist.sim.call_report import (
    make_progress,
    percentile,
    print_live_event,
    summary_table,
)
from receptionist.sim.caller import (
    CallerScript,
    CallOptions,
    CallResult,
    TranscriptEvent,
    exotel_url,
    place_call,
    run_load,
)
from receptionist.sim.caller.call import Call
from receptionist.sim.caller.clips import MediaFrames, load_wav_clip, utterance_clip
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD, rms_int16, silence, synth_speech
from receptionist.telephony.exotel import Emitter, caller_media_frame

END_OF_TURN_MS = 500


@dataclass
class BotCall:
    path: str = ""
    authorization: str | None = None
    start: dict | None = None
    events: list[str] = field(default_factory=list)
    utterances: int = 0
    replies_sent: int = 0
    clears_sent: int = 0
    marks_sent: list[str] = field(default_factory=list)
    marks_echoed: list[str] = field(default_factory=list)
    dtmf: str = ""
    media_received: int = 0
    media_bytes: int = 0
    stopped: bool = False


@dataclass
class FakeBot:
    """Bridge stand-in: greets on `start`, finds caller turns by energy + 500 ms of silence,
    answers each with audio and a mark, and sends `clear` if the caller speaks before the mark of
    the audio it is playing came back."""

    greeting_ms: int = 300
    reply_ms: int = 300
    close_with: tuple[int, str] | None = None
    garbage: list[str] = field(default_factory=list)
    silent: bool = False
    calls: list[BotCall] = field(default_factory=list)
    active: int = 0
    max_active: int = 0

    def audio(self, ms: int, rate: int) -> bytes:
        # synth_speech lasts 65 ms per character (min 300 ms)
        return synth_speech("a" * max(1, ms // 65), rate)

    async def send_audio(self, ws: ServerConnection, sid: str, pcm: bytes, rate: int) -> None:
        step = rate * 2 // 10  # 100 ms chunks, sent in a burst like a fast model
        for i in range(0, len(pcm), step):
            payload = base64.b64encode(pcm[i : i + step]).decode()
            await ws.send(
                orjson.dumps(
                    {"event": "media", "stream_sid": sid, "media": {"payload": payload}}
                ).decode()
            )

    async def send_mark(self, ws: ServerConnection, call: BotCall, sid: str, name: str) -> None:
        call.marks_sent.append(name)
        await ws.send(
            orjson.dumps({"event": "mark", "stream_sid": sid, "mark": {"name": name}}).decode()
        )

    async def handler(self, ws: ServerConnection) -> None:
        call = BotCall(path=ws.request.path, authorization=ws.request.headers.get("Authorization"))
        self.calls.append(call)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await self._serve(ws, call)
        finally:
            self.active -= 1

    async def _serve(self, ws: ServerConnection, call: BotCall) -> None:
        if self.close_with is not None:
            await ws.recv()  # connected
            await ws.close(*self.close_with)
            return
        sid, rate = "", 8000
        in_speech, silent_ms = False, 0.0
        playing: set[str] = set()  # marks sent and not yet echoed: agent audio still playing
        async for raw in ws:
            msg = orjson.loads(raw)
            event = msg["event"]
            call.events.append(event)
            if event == "start":
                call.start = msg["start"]
                sid = msg["stream_sid"]
                rate = int(msg["start"]["media_format"]["sample_rate"])
                for text in self.garbage:
                    await ws.send(text)
                if not self.silent:
                    pcm = self.audio(self.greeting_ms, rate)
                    call.media_bytes += len(pcm)
                    await self.send_audio(ws, sid, pcm, rate)
                    await self.send_mark(ws, call, sid, "greeting")
                    playing.add("greeting")
            elif event == "media":
                call.media_received += 1
                pcm = base64.b64decode(msg["media"]["payload"])
                if rms_int16(pcm) > SPEECH_RMS_THRESHOLD:
                    if playing:
                        await ws.send(orjson.dumps({"event": "clear", "stream_sid": sid}).decode())
                        call.clears_sent += 1
                        playing.clear()
                    in_speech, silent_ms = True, 0.0
                elif in_speech:
                    silent_ms += len(pcm) * 500 / rate
                    if silent_ms >= END_OF_TURN_MS:
                        in_speech = False
                        call.utterances += 1
                        pcm = self.audio(self.reply_ms, rate)
                        call.media_bytes += len(pcm)
                        await self.send_audio(ws, sid, pcm, rate)
                        call.replies_sent += 1
                        name = f"reply-{call.replies_sent}"
                        await self.send_mark(ws, call, sid, name)
                        playing.add(name)
            elif event == "mark":
                name = msg["mark"]["name"]
                call.marks_echoed.append(name)
                playing.discard(name)
            elif event == "dtmf":
                call.dtmf += msg["dtmf"]["digit"]
            elif event == "stop":
                call.stopped = True
                break


@contextlib.asynccontextmanager
async def running(bot: FakeBot, process_request=None) -> AsyncIterator[str]:
    async with serve(bot.handler, "127.0.0.1", 0, process_request=process_request) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}"


def quick_script(utterances: list[str], **kw) -> CallerScript:
    kw.setdefault("agent_quiet_ms", 150)
    kw.setdefault("hangup_after_ms", 100)
    kw.setdefault("turn_timeout_s", 5.0)
    return CallerScript(utterances=utterances, **kw)


def opts(base: str, **kw) -> CallOptions:
    kw.setdefault("realtime", False)
    kw.setdefault("max_call_s", 15.0)
    return CallOptions(url=exotel_url(base, "acme"), **kw)


async def test_media_frames_match_protocol_builder() -> None:
    pcm = synth_speech("hi", 8000)[:1600]
    ours = MediaFrames('MZ"odd\\sid').build(
        base64.b64encode(pcm).decode(), sequence=7, chunk=6, timestamp_ms=600
    )
    assert ours == caller_media_frame('MZ"odd\\sid', pcm, sequence=7, chunk=6, timestamp_ms=600)


async def test_greeting_turns_and_marks() -> None:
    bot = FakeBot(greeting_ms=400, reply_ms=300)
    seen: list[TranscriptEvent] = []
    async with running(bot) as base:
        result = await place_call(
            opts(base, custom_parameters={"k": "v"}, on_event=seen.append),
            quick_script(["hello there", "table for two"]),
        )
    assert result.ok, result.error
    assert result.close_code == 1000 and result.closed_by == "caller"
    call = bot.calls[0]
    assert call.path == "/exotel/acme"
    assert call.events[:2] == ["connected", "start"]
    assert call.start is not None
    assert call.start["call_sid"] == result.call_sid
    assert call.start["custom_parameters"] == {"k": "v"}
    assert call.start["from"] == "+919800000099"
    assert call.stopped
    assert call.utterances == 2 and call.replies_sent == 2
    assert result.unanswered_turns == 0 and result.turn_timeouts == 0
    # every mark echoed once, in order (when: see test_mark_is_echoed_when_its_audio_has_played)
    assert call.marks_echoed == call.marks_sent == ["greeting", "reply-1", "reply-2"]
    assert result.marks_echoed == 3
    assert result.clears == 0 and result.bad_frames == 0
    assert result.agent_audio_ms == pytest.approx(call.media_bytes * 1000 / 16000)
    kinds = [e.kind for e in result.events]
    assert kinds.count("caller_said") == 2
    assert kinds.count("agent_audio_start") == 3 and kinds.count("agent_audio_end") == 3
    assert kinds[-1] == "closed"
    # The greeting is measured from the start frame to its first audio, each response from
    # the caller's last voiced frame (after the line started) to the reply's first audio.
    starts = [e for e in result.events if e.kind == "agent_audio_start"]
    said = [e for e in result.events if e.kind == "caller_said"]
    assert [e.text for e in starts] == ["greeting", "reply to turn 1", "reply to turn 2"]
    assert result.greeting_ms == starts[0].t_ms
    assert starts[0].t_ms < said[0].t_ms < starts[1].t_ms < said[1].t_ms < starts[2].t_ms
    assert len(result.response_ms) == 2
    for ms, line, reply in zip(result.response_ms, said, starts[1:], strict=True):
        assert 0 < ms <= reply.t_ms - line.t_ms
    assert seen == result.events  # on_event saw everything, live
    assert [e.text for e in result.events if e.kind == "caller_said"] == [
        "hello there",
        "table for two",
    ]


async def test_barge_in_gets_cleared() -> None:
    # A greeting far longer than the call needs: the caller speaks 300 ms into it, so it is
    # still playing when the clear comes back. (The exact arithmetic of what a clear drops is
    # test_clear_drops_queued_audio_and_returns_marks_at_once, on a set clock.)
    bot = FakeBot(greeting_ms=20_000, reply_ms=300)
    async with running(bot) as base:
        result = await place_call(opts(base), quick_script(["wait a moment"], barge_in={0: 300}))
    assert result.ok, result.error
    call = bot.calls[0]
    assert call.clears_sent == 1 and result.clears == 1
    greeting_ms = len(bot.audio(20_000, 8000)) * 1000 / 16000
    assert 0 < result.cleared_ms < greeting_ms
    assert call.replies_sent == 1 and len(result.response_ms) == 1
    kinds = [e.kind for e in result.events]
    assert (
        kinds.index("agent_audio_start")
        < kinds.index("caller_said")
        < kinds.index("clear")
        < kinds.index("mark")  # the greeting's mark came back at the clear, not after playing
    )
    assert call.marks_echoed == ["greeting", "reply-1"]
    greeting_end = next(e for e in result.events if e.kind == "agent_audio_end")
    assert greeting_end.text.endswith("(cut by clear)")


async def test_wav_out_and_sample_rate(tmp_path: Path) -> None:
    bot = FakeBot(greeting_ms=400, reply_ms=600)
    out = tmp_path / "agent.wav"
    async with running(bot) as base:
        result = await place_call(
            opts(base, sample_rate=16000, wav_out=out), quick_script(["hi there"])
        )
    assert result.ok, result.error
    with wave.open(str(out), "rb") as w:
        assert w.getframerate() == 16000
        assert w.getnchannels() == 1 and w.getsampwidth() == 2
        frames = w.getnframes()
    assert frames * 2 == bot.calls[0].media_bytes
    assert result.agent_audio_ms == pytest.approx(frames * 1000 / 16000)


async def test_wav_in_is_resampled_and_split_into_turns(tmp_path: Path) -> None:
    src = tmp_path / "caller.wav"
    pcm = synth_speech("hello", 16000) + silence(800, 16000) + synth_speech("ok", 16000)
    with wave.open(str(src), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm)
    # The clip: 8 kHz frames of 100 ms, two caller turns (the 800 ms gap ends the first).
    clip = load_wav_clip(src, 8000, 100)
    assert len(clip.payloads) == math.ceil(len(pcm) / 2 / 16000 * 10)
    assert {len(base64.b64decode(p)) for p in clip.payloads} == {1600}
    assert len(clip.turn_ends) == 2
    bot = FakeBot()
    async with running(bot) as base:
        result = await place_call(opts(base, wav_in=src), quick_script([]))
    assert result.ok, result.error
    call = bot.calls[0]
    assert call.start is not None and call.start["media_format"]["sample_rate"] == "8000"
    assert call.utterances == 2  # the bot heard both turns in the resampled audio
    # Each turn was answered, or counted unanswered if its reply came only after the caller
    # spoke again (streamed as a burst, the second turn can start before the first reply).
    assert len(result.response_ms) + result.unanswered_turns == 2
    assert any(e.kind == "caller_said" and "caller.wav" in e.text for e in result.events)


async def test_server_close_1008_is_reported() -> None:
    bot = FakeBot(close_with=(1008, "unknown tenant"))
    async with running(bot) as base:
        result = await place_call(opts(base), quick_script(["hello"], turn_timeout_s=5.0))
    assert not result.ok
    assert result.close_code == 1008 and result.close_reason == "unknown tenant"
    assert result.closed_by == "server"
    assert result.error == "closed 1008 unknown tenant"
    # The close ended the call at once: no waiting out the turn timeout, nothing said.
    assert result.turn_timeouts == 0
    kinds = [e.kind for e in result.events]
    assert "turn_timeout" not in kinds and "caller_said" not in kinds
    assert kinds[-2:] == ["closed", "error"]


async def test_run_load_bounded_concurrency() -> None:
    bot = FakeBot(greeting_ms=300, reply_ms=300)
    done: list[CallResult] = []
    async with running(bot) as base:
        results = await run_load(
            lambda i: opts(base, call_sid=f"CAload{i}"),
            quick_script(["hello"]),
            calls=6,
            concurrency=3,
            on_done=done.append,
        )
    assert len(results) == 6 and len(done) == 6
    assert [r.call_sid for r in results] == [f"CAload{i}" for i in range(6)]
    assert all(r.ok for r in results), [r.error for r in results]
    assert bot.max_active <= 3
    assert all(len(r.response_ms) == 1 for r in results)


async def test_run_load_turns_exceptions_into_failed_results() -> None:
    def make(i: int) -> CallOptions:
        if i == 1:
            raise RuntimeError("bad options")
        return CallOptions(url="ws://127.0.0.1:1/exotel/x", connect_timeout_s=2)

    results = await run_load(make, quick_script([]), calls=3, concurrency=2)
    assert len(results) == 3 and not any(r.ok for r in results)
    assert results[1].error == "RuntimeError: bad options"
    assert results[0].error is not None and results[0].error.startswith("connect:")


async def test_basic_auth_header_sent() -> None:
    bot = FakeBot()
    async with running(bot) as base:
        result = await place_call(opts(base, auth=("KEY", "TOKEN")), quick_script([]))
    assert result.ok, result.error
    expected = "Basic " + base64.b64encode(b"KEY:TOKEN").decode()
    assert bot.calls[0].authorization == expected


async def test_rejected_handshake_is_an_error() -> None:
    def reject(conn, request):
        if request.headers.get("Authorization") is None:
            return conn.respond(HTTPStatus.UNAUTHORIZED, "auth required\n")
        return None

    bot = FakeBot()
    async with running(bot, process_request=reject) as base:
        result = await place_call(opts(base), quick_script(["hello"]))
    assert not result.ok and result.error == "connect: HTTP 401"
    assert result.close_code is None


async def test_dtmf_and_bad_frames() -> None:
    bot = FakeBot(garbage=["not json", '{"event":"weird"}', '{"event":"media","media":{}}'])
    async with running(bot) as base:
        result = await place_call(opts(base), quick_script(["press one"], dtmf={0: "12"}))
    assert result.ok, result.error
    assert bot.calls[0].dtmf == "12"
    assert result.bad_frames == 3
    assert [e.text for e in result.events if e.kind == "dtmf"] == ["1", "2"]


async def test_realtime_call() -> None:
    bot = FakeBot(greeting_ms=300)
    async with running(bot) as base:
        result = await place_call(opts(base, realtime=True), quick_script(["hi"], pause_ms=600))
    assert result.ok, result.error
    assert bot.calls[0].media_received == result.media_sent
    assert bot.calls[0].utterances == 1 and len(result.response_ms) == 1


async def test_no_greeting_times_out_turn_and_max_call() -> None:
    bot = FakeBot(silent=True)
    async with running(bot) as base:
        r1 = await place_call(opts(base), quick_script([], turn_timeout_s=0.5))
        r2 = await place_call(opts(base, max_call_s=0.8), quick_script([], turn_timeout_s=5))
    assert r1.ok and r1.turn_timeouts == 1 and r1.greeting_ms is None
    # max_call_s (0.8 s) ended the call before the turn timeout (5 s) could
    assert not r2.ok and r2.error == "timeout: call still running after 0.8 s"
    assert r2.turn_timeouts == 0


async def test_connect_refused() -> None:
    result = await place_call(
        CallOptions(url="ws://127.0.0.1:1/exotel/x", connect_timeout_s=2), quick_script([])
    )
    assert not result.ok and result.error is not None and result.error.startswith("connect:")


def test_percentile() -> None:
    assert percentile([], 50) != percentile([], 50)  # NaN
    assert percentile([5], 99) == 5
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile([10, 1, 3], 0) == 1 and percentile([10, 1, 3], 100) == 10
    with pytest.raises(ValueError):
        percentile([1], 101)


def test_report_rendering() -> None:
    console = Console(record=True, width=120)
    print_live_event(console, "CA1", TranscriptEvent(1234.0, "caller_said", "[hello]"))
    results = [
        CallResult(call_sid="a", ok=True, greeting_ms=100, response_ms=[200, 300], clears=1),
        CallResult(call_sid="b", error="closed 1008 unknown tenant"),
        CallResult(call_sid="c", error="closed 1008 unknown tenant"),
    ]
    console.print(summary_table(results))
    text = console.export_text()
    assert "1.23s" in text and "[hello]" in text
    assert "closed 1008 unknown tenant" in text and "250 ms" in text
    progress = make_progress(3)
    assert progress.tasks[0].total == 3


# --- the caller's clock-driven parts, on a clock the test sets ---------------------------------


class Clock:
    """Moves only when told to; sleeping on it moves it by the time slept (and yields once)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class Wire:
    """Stands in for the WebSocket: records what the caller sends and when, never waits."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, dict]] = []

    async def send(self, text: str) -> None:
        self.sent.append((self.clock(), orjson.loads(text)))

    def events(self) -> list[str]:
        return [msg["event"] for _, msg in self.sent]


def clocked_call(clock: Clock, frame_ms: int = 125) -> tuple[Call, Wire]:
    """A caller mid-call (after `start`), on `clock`. 125 ms frames and 8 kHz audio keep every
    time a binary fraction, so the arithmetic below is exact."""
    call = Call(
        CallOptions(url="ws://unused", frame_ms=frame_ms),
        CallerScript(),
        clock=clock,
        sleep=clock.sleep,
    )
    wire = Wire(clock)
    call.ws = wire  # type: ignore[assignment]
    call.t0 = call.next_t = clock()
    return call, wire


async def test_paced_frames_keep_their_schedule_without_drift() -> None:
    clock = Clock()
    call, wire = clocked_call(clock)
    await call._silence(1000, paced=True)
    times = [t - call.t0 for t, _ in wire.sent]
    assert times == [i * 0.125 for i in range(8)]
    assert call.res.max_send_lag_ms == 0
    # A stall: the late frames go out at once and the schedule goes on where it was (no drift).
    # Frame 9 is due at 1 s; the caller gets to run again only at 1.3 s.
    clock.now = call.t0 + 1.3
    await call._silence(500, paced=True)
    times = [t - call.t0 for t, _ in wire.sent[8:]]
    assert times == pytest.approx([1.3, 1.3, 1.3, 1.375])
    assert call.res.max_send_lag_ms == 300.0


async def test_mark_is_echoed_when_its_audio_has_played() -> None:
    clock = Clock()
    call, wire = clocked_call(clock)
    em = Emitter("MZ1")
    call._on_frame(em.media(bytes(4000)))  # 250 ms at 8 kHz
    call._on_frame(em.media(bytes(4000)))  # queued behind it: plays until 500 ms
    call._on_frame(em.mark("m1"))
    await call._silence(750, paced=True)  # frames at 0, 125, ..., 625 ms
    sent = wire.events()
    assert sent == ["media"] * 5 + ["mark"] + ["media"]
    assert wire.sent[5][0] - call.t0 == 0.5  # right after the frame at which playback ended
    assert wire.sent[5][1]["mark"] == {"name": "m1"}
    assert call.res.marks_echoed == 1


async def test_clear_drops_queued_audio_and_returns_marks_at_once() -> None:
    clock = Clock()
    call, wire = clocked_call(clock)
    em = Emitter("MZ1")
    call._on_frame(em.media(bytes(16000)))  # 1 s
    call._on_frame(em.mark("greeting"))
    await call._silence(250, paced=True)  # frames at 0 and 125 ms
    clock.now = call.t0 + 0.25
    call._on_frame(em.clear())
    assert call.res.clears == 1
    assert call.res.cleared_ms == 750.0  # the 750 ms not yet played
    assert not call.speaking
    await call._silence(125, paced=True)  # the next frame carries the mark back
    assert wire.events() == ["media", "media", "media", "mark"]
    assert wire.sent[-1][0] - call.t0 == 0.25
    kinds = [(e.kind, e.text) for e in call.res.events]
    assert kinds == [
        ("agent_audio_start", "greeting"),
        ("clear", "dropped 750 ms of queued agent audio"),
        ("agent_audio_end", "1000 ms (cut by clear)"),
        ("mark", "greeting"),
    ]


async def test_burst_frames_yield_to_the_event_loop_between_frames() -> None:
    # Sent as fast as the socket takes them, a caller must still let other tasks (its own
    # receiver, hundreds of other calls) run between frames: count event-loop turns per frame.
    loop_turns = 0

    async def ticker() -> None:
        nonlocal loop_turns
        while True:
            loop_turns += 1
            await asyncio.sleep(0)

    clock = Clock()
    call, wire = clocked_call(clock, frame_ms=100)
    seen: list[int] = []
    record = wire.send

    async def send(text: str) -> None:
        seen.append(loop_turns)
        await record(text)

    wire.send = send  # type: ignore[method-assign]
    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        await call._play(utterance_clip("hello there", 8000, 100), paced=False)
        await call._silence(700, paced=False)
    finally:
        task.cancel()
    assert len(seen) == len(utterance_clip("hello there", 8000, 100).payloads) + 7
    assert all(b > a for a, b in itertools.pairwise(seen))  # the loop turned between frames
