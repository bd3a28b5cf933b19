"""Caller audio pacing (CALLER_AUDIO_MAX_SPEED) against a late server: a caller who sends in
real time loses nothing when the bridge's event loop is held and then reads a backlog at once,
while a caller who sends twice as fast as real time is still cut back to real time.

The callers run in a thread with a blocking WebSocket client, so they keep sending on their own
clock while the test holds the bridge's event loop (the bridge runs on the test's loop)."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.sync.client import connect

from receptionist.sim.gemini_live import CallScript, FakeGeminiLive, ScriptedTurn
from receptionist.store.db import Database
from receptionist.telephony import exotel
from tests.integration.bridge_harness import row_for, running_bridge, sid

FRAME_S = 0.1  # 100 ms of 8 kHz 16-bit audio per frame
FRAME = b"\x01\x00" * 800
TURNS = [ScriptedTurn(heard="Are you open today?", reply="Yes, till nine.")]


@dataclass
class PacedCaller:
    """Sends `frames` media frames, frame i once (i + 1) * FRAME_S / speed seconds have passed
    since its connection opened (a real-time caller cannot send audio before it is spoken),
    then `stop`. `held` is set once `hold_frames` frames are out: the test holds the bridge
    until then."""

    url: str
    frames: int
    speed: float
    hold_frames: int
    call_sid: str = field(default_factory=sid)
    started: threading.Event = field(default_factory=threading.Event)  # `start` sent
    holding: threading.Event = field(default_factory=threading.Event)  # the test holds the loop
    held: threading.Event = field(default_factory=threading.Event)  # hold_frames sent

    def run(self) -> None:
        stream_sid = "MZ" + self.call_sid
        with connect(self.url, max_queue=None) as ws:
            opened = time.monotonic()
            ws.send(exotel.connected_frame())
            ws.send(
                exotel.start_frame(
                    stream_sid=stream_sid,
                    call_sid=self.call_sid,
                    from_number="+919800000042",
                    to_number="+918000000001",
                )
            )
            self.started.set()
            # the first frame goes out only once the bridge is held: it must find all of them
            # waiting in its socket, never one read on time
            self.holding.wait(30)
            for i in range(self.frames):
                wait = opened + (i + 1) * FRAME_S / self.speed - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                seq = i + 2
                ws.send(
                    exotel.caller_media_frame(
                        stream_sid, FRAME, sequence=seq, chunk=seq, timestamp_ms=i * 100
                    )
                )
                if i + 1 == self.hold_frames:
                    self.held.set()
            ws.send(exotel.stop_frame(stream_sid, self.call_sid, sequence=self.frames + 2))
            for _ in ws:  # until the bridge closes the call
                pass


async def _call_with_held_server(
    db: Database, tmp_path: Path, *, frames: int, speed: float, hold_frames: int
) -> tuple[dict[str, Any], float]:
    """Place a PacedCaller, hold the bridge's event loop (a blocking wait on the loop's thread,
    as an overloaded server does) from before its first media frame until `hold_frames` frames
    were sent; return the call row and the wall time from before the connection to the row."""
    async with (
        FakeGeminiLive(script=CallScript(turns=TURNS)) as fake,
        running_bridge(db, tmp_path, fake, caller_audio_max_speed=1.0) as bridge,
    ):
        caller = PacedCaller(bridge.url("bakery"), frames, speed, hold_frames)
        began = time.monotonic()
        thread = asyncio.create_task(asyncio.to_thread(caller.run))
        assert await asyncio.to_thread(caller.started.wait, 30), "the caller never connected"
        caller.holding.set()
        assert caller.held.wait(30), "the caller stopped sending"  # blocks the loop on purpose
        async with asyncio.timeout(60):
            await thread
        row = await row_for(db, caller.call_sid)
        return row, time.monotonic() - began


async def test_a_real_time_caller_read_late_in_a_backlog_loses_no_audio(
    db: Database, tmp_path: Path
) -> None:
    # 3 s of audio wait in the socket while the loop is held (1 s beyond the 2 s burst), then
    # 1 s more arrives in real time
    row, _ = await _call_with_held_server(db, tmp_path, frames=40, speed=1.0, hold_frames=30)
    assert row["stats"]["bad_frames"].get("over_realtime", 0) == 0, row["stats"]["bad_frames"]
    assert row["stats"]["frames_in"] == 40
    assert row["status"] == "completed" and row["end_reason"].startswith("stop:")


async def test_a_double_speed_caller_is_still_cut_back_to_real_time_by_a_held_server(
    db: Database, tmp_path: Path
) -> None:
    # 8 s of audio in 4 s of wall time, the first 4 s of it read late in one backlog
    frames = 80
    row, elapsed = await _call_with_held_server(
        db, tmp_path, frames=frames, speed=2.0, hold_frames=40
    )
    forwarded = row["stats"]["frames_in"]
    dropped = row["stats"]["bad_frames"].get("over_realtime", 0)
    assert forwarded + dropped == frames
    # never more than the wall time since the connection plus the burst (and the frame that
    # crossed the line): the hold gave the flooder nothing
    assert forwarded <= (elapsed + 2.0) / FRAME_S + 1, (forwarded, elapsed)
    assert dropped > 0
    assert row["status"] == "completed" and row["end_reason"].startswith("stop:")
