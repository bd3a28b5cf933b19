"""The cached greeting's player (bridge/greeting_player.py) with plain callables: no socket,
no session. Pacing is not timed here (the integration tests do); what is: every frame goes out
in order and ends the turn, barge-in needs sustained speech, and stop tells an open turn from
one heard out."""

from __future__ import annotations

import asyncio
import struct
import time

from receptionist.bridge.greeting_player import GREETING_BARGE_IN_MS, GreetingPlayer

RATE = 8000
LOUD = struct.pack("<160h", *([8000, -8000] * 80))  # 20 ms at 8 kHz, well over the threshold
QUIET = bytes(320)


def player(frames: list[bytes], sent: list[bytes], *, heard_until: float = 0.0) -> GreetingPlayer:
    async def send_frame(chunk: bytes) -> None:
        sent.append(chunk)

    async def end_turn() -> str:
        return "agent-turn-1"

    return GreetingPlayer(
        iter(frames),
        rate=RATE,
        threshold=500.0,
        send_frame=send_frame,
        heard_until=lambda: heard_until,
        end_turn=end_turn,
        name="greet-test",
    )


async def test_heard_out_once_all_sent_and_played() -> None:
    sent: list[bytes] = []
    p = player([b"a", b"b"], sent)
    for _ in range(5):  # let its task run to the end
        await asyncio.sleep(0)
    assert sent == [b"a", b"b"] and p.mark == "agent-turn-1"
    assert p.barged_in(LOUD) is None  # nothing left to interrupt
    assert await p.stop() is False  # its turn was ended, not cut


async def test_barge_in_needs_sustained_speech() -> None:
    sent: list[bytes] = []
    p = player([b"a"], sent, heard_until=time.monotonic() + 60.0)  # still playing
    frames_needed = int(GREETING_BARGE_IN_MS // 20)
    for _ in range(frames_needed - 1):
        assert p.barged_in(LOUD) is False
    assert p.barged_in(QUIET) is False  # a pause starts the count afresh
    for _ in range(frames_needed - 1):
        assert p.barged_in(LOUD) is False
    assert p.barged_in(LOUD) is True


async def test_stop_while_sending_leaves_the_turn_open() -> None:
    sent: list[bytes] = []
    gate = asyncio.Event()

    async def send_frame(chunk: bytes) -> None:
        sent.append(chunk)
        await gate.wait()  # the first frame is still going out

    async def end_turn() -> str:
        raise AssertionError("a stopped greeting does not end its turn")

    p = GreetingPlayer(
        iter([b"a", b"b"]),
        rate=RATE,
        threshold=500.0,
        send_frame=send_frame,
        heard_until=lambda: 0.0,
        end_turn=end_turn,
        name="greet-test",
    )
    await asyncio.sleep(0)
    assert sent == [b"a"]
    assert await p.stop() is True
    assert p.mark is None
