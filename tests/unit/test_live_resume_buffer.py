"""The Gemini Live engine's replay of caller audio across a session switch: bounded, in order,
nothing sent twice; and the bookkeeping that keeps a re-heard question out of the transcript."""

from __future__ import annotations

import binascii

import numpy as np
import orjson
from websockets.exceptions import ConnectionClosedError

from receptionist.audio import StreamResampler, ulaw_decode, ulaw_encode
from receptionist.engines.base import CallerTranscript, EngineRequest, TurnComplete
from receptionist.engines.gemini_live import GeminiLiveConfig, GeminiLiveEngine


class Socket:
    """Stands in for the Live socket (the edge of the machine): records what is sent."""

    def __init__(self, *, dead: bool = False) -> None:
        self.sent: list[bytes] = []
        self.dead = dead

    async def send(self, frame: str) -> None:
        if self.dead:
            raise ConnectionClosedError(None, None)
        data = orjson.loads(frame)["realtime_input"]["audio"]["data"]
        self.sent.append(binascii.a2b_base64(data))


def _engine(buffer_s: float, caller_rate: int | None = None) -> GeminiLiveEngine:
    cfg = GeminiLiveConfig(api_key="k", model="m", resume_buffer_s=buffer_s)
    request = EngineRequest(
        call_sid="CA1",
        tenant_id="t",
        system_instruction="",
        language="en",
        caller_sample_rate=caller_rate,
    )
    return GeminiLiveEngine(client=None, cfg=cfg, request=request)  # type: ignore[arg-type]


def _chunk(i: int) -> bytes:
    return bytes([0, 40 + i]) * 800  # 50 ms at 16 kHz, loud (speech)


def _heard(pcm: bytes) -> bytes:
    """What the replay gives back of `pcm` from a 16 kHz line: it is kept as mu-law."""
    return ulaw_decode(ulaw_encode(pcm))


async def test_audio_since_the_handle_is_replayed_in_order_and_bounded() -> None:
    engine = _engine(buffer_s=0.1)  # 3200 bytes: two chunks
    engine._ws = Socket()
    await engine.send_audio(_chunk(1))
    engine._new_handle("h1")  # the server's state includes chunk 1: never replayed
    for i in (2, 3, 4):
        await engine.send_audio(_chunk(i))
    engine._switching = True
    await engine.send_audio(_chunk(5))  # while no session is up: kept only
    assert engine._ws.sent == [_chunk(i) for i in (1, 2, 3, 4)]
    new = Socket()
    sent = await engine._flush_replay(new)
    assert new.sent == [_heard(_chunk(4)), _heard(_chunk(5))]  # the newest, in order; 2 and
    # 3 over the cap (0.1 s: 1,600 bytes of mu-law, two chunks)
    assert sent == 3200 and engine._replay_dropped == 1600 and not engine._switching
    engine._ws = new
    await engine.send_audio(_chunk(6))
    assert new.sent[-1] == _chunk(6)


async def test_audio_into_a_dead_socket_is_kept_for_the_next_session() -> None:
    engine = _engine(buffer_s=10)
    engine._ws = Socket(dead=True)
    await engine.send_audio(_chunk(7))  # no error: the event loop replaces the session
    new = Socket()
    await engine._flush_replay(new)
    assert new.sent == [_heard(_chunk(7))]


async def test_long_silence_is_kept_short_in_the_replay() -> None:
    engine = _engine(buffer_s=10)
    engine._ws = Socket()
    quiet = bytes(1600)  # 50 ms of silence
    for _ in range(40):  # 2 s: only the first second is kept
        await engine.send_audio(quiet)
    await engine.send_audio(_chunk(1))
    await engine.send_audio(quiet)  # a new stretch starts
    new = Socket()
    await engine._flush_replay(new)
    assert new.sent == [quiet] * 20 + [_heard(_chunk(1)), quiet]
    assert len(engine._ws.sent) == 42  # the live session got all of it


async def test_an_8khz_callers_audio_is_kept_at_a_quarter_and_replayed_faithfully() -> None:
    # what the bridge sends for an 8 kHz line: speech-band audio upsampled to 16 kHz
    t = np.arange(8000) / 8000.0
    line = (6000 * np.sin(2 * np.pi * 440 * t) + 3000 * np.sin(2 * np.pi * 1900 * t)).astype("<i2")
    up = StreamResampler(8000, 16000)
    sent16 = up.process(line.tobytes()) + up.flush()
    engine = _engine(buffer_s=10, caller_rate=8000)
    engine._ws = Socket()
    chunks = [sent16[i : i + 3200] for i in range(0, len(sent16), 3200)]  # 100 ms frames
    for chunk in chunks:
        await engine.send_audio(chunk)
    assert abs(engine._replay_bytes - len(sent16) / 4) <= 1  # a byte per 8 kHz sample
    new = Socket()
    replayed = await engine._flush_replay(new)
    got = np.frombuffer(b"".join(new.sent), dtype="<i2").astype(np.float64)
    ref = np.frombuffer(sent16, dtype="<i2").astype(np.float64)
    assert replayed == len(b"".join(new.sent))
    # the replay is the same signal, a few samples later (the re-upsampling filter's delay)
    lag = StreamResampler(8000, 16000).delay_out_samples
    mid = slice(400, len(ref) - 400)
    err = got[lag:][mid] - ref[: len(ref) - lag][mid]
    snr_db = 10 * np.log10(np.sum(ref[mid] ** 2) / np.sum(err**2))
    assert snr_db > 30, snr_db


def test_a_reheard_question_is_not_passed_on_twice() -> None:
    engine = _engine(buffer_s=10)
    engine._mute_caller = True  # after a cut turn: the new session hears the question again
    assert not engine._track(CallerTranscript("I want a cake."))
    engine._model_busy = True  # its answer starts (events() unmutes on its first audio)
    engine._mute_caller = False
    assert engine._track(CallerTranscript("And candles."))
    assert engine._track(TurnComplete())
    assert engine._log[-1] == ("user", "And candles.") and not engine._model_busy
