"""The Gemini Live engine's replay of caller audio across a session switch: bounded, in order,
nothing sent twice; and the bookkeeping that keeps a re-heard question out of the transcript."""

from __future__ import annotations

import binascii

import orjson
from websockets.exceptions import ConnectionClosedError

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


def _engine(buffer_s: float) -> GeminiLiveEngine:
    cfg = GeminiLiveConfig(api_key="k", model="m", resume_buffer_s=buffer_s)
    request = EngineRequest(call_sid="CA1", tenant_id="t", system_instruction="", language="en")
    return GeminiLiveEngine(client=None, cfg=cfg, request=request)  # type: ignore[arg-type]


def _chunk(i: int) -> bytes:
    return bytes([0, 40 + i]) * 800  # 50 ms at 16 kHz, loud (speech)


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
    assert new.sent == [_chunk(4), _chunk(5)]  # the newest, in order; 2 and 3 over the cap
    assert sent == 3200 and engine._replay_dropped == 3200 and not engine._switching
    engine._ws = new
    await engine.send_audio(_chunk(6))
    assert new.sent[-1] == _chunk(6)


async def test_audio_into_a_dead_socket_is_kept_for_the_next_session() -> None:
    engine = _engine(buffer_s=10)
    engine._ws = Socket(dead=True)
    await engine.send_audio(_chunk(7))  # no error: the event loop replaces the session
    new = Socket()
    await engine._flush_replay(new)
    assert new.sent == [_chunk(7)]


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
    assert new.sent == [quiet] * 20 + [_chunk(1), quiet]
    assert len(engine._ws.sent) == 42  # the live session got all of it


def test_a_reheard_question_is_not_passed_on_twice() -> None:
    engine = _engine(buffer_s=10)
    engine._mute_caller = True  # after a cut turn: the new session hears the question again
    assert not engine._track(CallerTranscript("I want a cake."))
    engine._model_busy = True  # its answer starts (events() unmutes on its first audio)
    engine._mute_caller = False
    assert engine._track(CallerTranscript("And candles."))
    assert engine._track(TurnComplete())
    assert engine._log[-1] == ("user", "And candles.") and not engine._model_busy
