"""The simulated caller against a tiny fake bot playing the bridge's side of the Exotel stream."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
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
    _MediaFrames,
    exotel_url,
    place_call,
    run_load,
)
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD, rms_int16, silence, synth_speech
from receptionist.telephony.exotel import caller_media_frame

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
    marks_sent: dict[str, float] = field(default_factory=dict)
    marks_echoed: dict[str, float] = field(default_factory=dict)
    dtmf: str = ""
    media_times: list[float] = field(default_factory=list)
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
        call.marks_sent[name] = time.monotonic()
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
                call.media_times.append(time.monotonic())
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
                call.marks_echoed[name] = time.monotonic()
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
    ours = _MediaFrames('MZ"odd\\sid').build(
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
    # greeting measured, one reply per utterance, one latency per caller turn
    assert result.greeting_ms is not None and 0 < result.greeting_ms < 1000
    assert call.utterances == 2 and call.replies_sent == 2
    assert len(result.response_ms) == 2 and all(0 < ms < 1000 for ms in result.response_ms)
    assert result.unanswered_turns == 0 and result.turn_timeouts == 0
    # every mark echoed, and only after the audio before it had played
    assert set(call.marks_echoed) == {"greeting", "reply-1", "reply-2"}
    assert result.marks_echoed == 3
    assert call.marks_echoed["greeting"] - call.marks_sent["greeting"] >= 0.35
    assert call.marks_echoed["reply-1"] - call.marks_sent["reply-1"] >= 0.25
    assert result.clears == 0 and result.bad_frames == 0
    assert result.agent_audio_ms == pytest.approx(call.media_bytes * 1000 / 16000)
    kinds = [e.kind for e in result.events]
    assert kinds.count("caller_said") == 2
    assert kinds.count("agent_audio_start") == 3 and kinds.count("agent_audio_end") == 3
    assert kinds[-1] == "closed"
    assert seen == result.events  # on_event saw everything, live
    assert [e.text for e in result.events if e.kind == "caller_said"] == [
        "hello there",
        "table for two",
    ]


async def test_barge_in_gets_cleared() -> None:
    bot = FakeBot(greeting_ms=3000, reply_ms=300)
    async with running(bot) as base:
        result = await place_call(opts(base), quick_script(["wait a moment"], barge_in={0: 300}))
    assert result.ok, result.error
    call = bot.calls[0]
    assert call.clears_sent == 1 and result.clears == 1
    assert result.cleared_ms > 1500  # most of the 3 s greeting was still queued
    # the greeting's mark came back at the clear, long before the greeting could have played
    assert call.marks_echoed["greeting"] - call.marks_sent["greeting"] < 1.5
    assert call.replies_sent == 1 and len(result.response_ms) == 1
    kinds = [e.kind for e in result.events]
    assert kinds.index("agent_audio_start") < kinds.index("caller_said") < kinds.index("clear")


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
    bot = FakeBot()
    async with running(bot) as base:
        # realtime: the bot's reply to the first turn must come during the gap, as on a phone
        result = await place_call(opts(base, wav_in=src, realtime=True), quick_script([]))
    assert result.ok, result.error
    call = bot.calls[0]
    assert call.start is not None and call.start["media_format"]["sample_rate"] == "8000"
    assert call.utterances == 2
    assert len(result.response_ms) == 2 and result.unanswered_turns == 0
    assert any(e.kind == "caller_said" and "caller.wav" in e.text for e in result.events)


async def test_server_close_1008_is_reported() -> None:
    bot = FakeBot(close_with=(1008, "unknown tenant"))
    t = time.monotonic()
    async with running(bot) as base:
        result = await place_call(opts(base), quick_script(["hello"]))
    assert time.monotonic() - t < 3
    assert not result.ok
    assert result.close_code == 1008 and result.close_reason == "unknown tenant"
    assert result.closed_by == "server"
    assert result.error is not None and "1008" in result.error
    assert result.events[-2].kind == "closed" and result.events[-1].kind == "error"


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


async def test_realtime_pacing() -> None:
    bot = FakeBot(greeting_ms=300)
    async with running(bot) as base:
        result = await place_call(opts(base, realtime=True), quick_script(["hi"], pause_ms=600))
    assert result.ok, result.error
    times = bot.calls[0].media_times
    # frames arrive at 100 ms spacing on average, with no drift
    span = times[-1] - times[0]
    assert span == pytest.approx((len(times) - 1) * 0.1, abs=0.15)
    assert len(result.response_ms) == 1


async def test_no_greeting_times_out_turn_and_max_call() -> None:
    bot = FakeBot(silent=True)
    async with running(bot) as base:
        r1 = await place_call(opts(base), quick_script([], turn_timeout_s=0.5))
        r2 = await place_call(opts(base, max_call_s=0.8), quick_script([], turn_timeout_s=5))
    assert r1.ok and r1.turn_timeouts == 1 and r1.greeting_ms is None
    assert not r2.ok and r2.error is not None and r2.error.startswith("timeout")
    assert r2.duration_s < 2


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


async def test_sim_caller_against_event_loop_stays_responsive() -> None:
    # sanity: a short script must not block the loop (no await-less busy loops)
    bot = FakeBot()
    async with running(bot) as base:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        task = asyncio.create_task(ticker())
        result = await place_call(opts(base), quick_script(["hello"]))
        task.cancel()
    assert result.ok, result.error
    assert ticks > result.duration_s * 50
