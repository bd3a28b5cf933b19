"""The bridge's raw call tape (recordings/tape.py) and the stereo encoding (encode.py), on real
files in a temporary folder."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from receptionist.recordings.encode import encode_stereo
from receptionist.recordings.tape import CallTape, read_manifest

RATE = 8000


def tone(ms: int, level: int = 8000) -> bytes:
    n = RATE * ms // 1000
    return (np.sin(np.arange(n) * 0.3) * level).astype("<i2").tobytes()


def make(tmp_path: Path, max_s: float = 60.0) -> CallTape:
    return CallTape(
        tmp_path, call_sid="CA/../x", tenant="bakery", session_id="s" * 20, rate=RATE, t0=100.0,
        max_s=max_s,
    )  # fmt: skip


def samples(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), dtype="<i2")


async def test_tracks_keep_time_and_silence(tmp_path: Path) -> None:
    tape = make(tmp_path)
    # caller: 100 ms frames arriving on time from 0.1 s to 1.0 s, then a pause, then one at 3.0 s
    for i in range(1, 11):
        tape.caller_audio(tone(100), 100.0 + i * 0.1)
    tape.caller_audio(tone(100), 103.0)
    # agent: 500 ms that starts playing at 1.5 s, flushed, then 200 ms more at 4.0 s
    tape.agent_audio(tone(500), 101.5)
    await tape.flush()
    tape.agent_audio(tone(200), 104.0)
    manifest = await tape.close()

    assert ".." not in manifest.base and "/" not in Path(manifest.base).name  # the sid made safe
    caller, agent = samples(manifest.caller_path), samples(manifest.agent_path)
    assert len(caller) == 3 * RATE  # ends at 3.0 s: the last frame arrived then
    assert np.abs(caller[:RATE]).max() > 0  # 0-1 s: speech
    assert not caller[int(1.05 * RATE) : int(2.85 * RATE)].any()  # the pause is kept, as zeros
    assert np.abs(caller[int(2.95 * RATE) :]).max() > 0
    assert not agent[: int(1.5 * RATE)].any()
    assert np.abs(agent[int(1.5 * RATE) : 2 * RATE]).max() > 0
    assert not agent[2 * RATE + 1 : 4 * RATE].any()  # a hole in the file between the writes
    assert len(agent) == int(4.2 * RATE)
    again = read_manifest(Path(manifest.base + ".json"))
    assert again == manifest and again.tenant == "bakery" and not again.opted_out


async def test_caller_jitter_stays_contiguous(tmp_path: Path) -> None:
    """Frames bunched by the network (three at once, late) follow on: no gaps, no overlap."""
    tape = make(tmp_path)
    tape.caller_audio(tone(100), 100.1)
    for _ in range(3):
        tape.caller_audio(tone(100), 100.45)  # 250 ms late, then two early ones
    manifest = await tape.close()
    assert len(samples(manifest.caller_path)) == 4 * RATE // 10


async def test_barge_in_cuts_the_unplayed_agent_audio(tmp_path: Path) -> None:
    tape = make(tmp_path)
    tape.agent_audio(tone(3000), 101.0)  # sent at once, plays from 1 s to 4 s
    await tape.flush()  # already on disk: the cut truncates the file
    tape.agent_audio(tone(1000), 104.0)
    tape.cut_agent(101.5)  # the caller spoke over it at 1.5 s: the rest was dropped unplayed
    tape.agent_audio(tone(500), 102.0)  # the next reply
    manifest = await tape.close()
    agent = samples(manifest.agent_path)
    assert len(agent) == int(2.5 * RATE)
    assert np.abs(agent[RATE : int(1.5 * RATE)]).max() > 0
    assert not agent[int(1.5 * RATE) + 1 : 2 * RATE].any()


async def test_opt_out_deletes_the_tracks_and_takes_nothing_more(tmp_path: Path) -> None:
    tape = make(tmp_path)
    tape.caller_audio(tone(1000), 101.0)
    await tape.flush()
    assert any(tmp_path.glob("*.pcm"))
    tape.opt_out()
    tape.caller_audio(tone(1000), 102.0)
    manifest = await tape.close()
    assert manifest.opted_out
    assert not any(tmp_path.glob("*.pcm"))


async def test_a_track_is_bounded(tmp_path: Path) -> None:
    tape = make(tmp_path, max_s=1.0)
    for i in range(1, 30):
        tape.caller_audio(tone(100), 100.0 + i * 0.1)
    manifest = await tape.close()
    assert len(samples(manifest.caller_path)) <= RATE


async def test_a_failing_disk_stops_the_tape_not_the_call(tmp_path: Path) -> None:
    tape = make(tmp_path)
    tape.caller_audio(tone(100), 100.1)
    os.close(tape.caller.fd)  # the write fails (EBADF) as a full or failing disk would
    full = os.open(os.devnull, os.O_RDONLY)
    tape.caller.fd = full  # writing to a read-only fd fails
    await tape.flush()
    assert tape.broken is not None and not tape.on
    tape.caller_audio(tone(100), 100.2)  # taken and dropped, no error
    manifest = await tape.close()
    assert manifest.error and not any(tmp_path.glob("*.pcm"))
    with pytest.raises(OSError) as exc:
        os.write(full, b"x")
    assert exc.value.errno == errno.EBADF


@pytest.mark.parametrize("fmt", ["opus", "mp3"])
def test_encoding_puts_caller_left_and_agent_right(tmp_path: Path, fmt: str) -> None:
    caller, agent = tmp_path / "c.pcm", tmp_path / "a.pcm"
    caller.write_bytes(tone(1000) + bytes(2 * RATE))  # 1 s of speech, 1 s of silence
    agent.write_bytes(bytes(4 * RATE) + tone(500))  # 2 s of silence, then speech: the longer
    enc = encode_stereo(caller, agent, RATE, tmp_path / "out", fmt)  # type: ignore[arg-type]
    assert enc.path.name == ("out.ogg" if fmt == "opus" else "out.mp3")
    assert enc.duration_ms == 2500 and enc.size == enc.path.stat().st_size
    assert enc.size < (len(caller.read_bytes()) + len(agent.read_bytes())) / 4  # compact
    data, rate = sf.read(enc.path, dtype="float32")
    assert data.shape[1] == 2
    sec = rate  # the decoded rate (Opus decodes at 8 kHz here, MP3 at its own)

    def level(ch: int, a: float, b: float) -> float:
        return float(np.sqrt(np.mean(data[int(a * sec) : int(b * sec), ch] ** 2)))

    # left: the caller (speech 0-1 s, then quiet); right: the agent (quiet, then speech 2-2.5 s)
    assert level(0, 0.2, 0.8) > 10 * max(level(0, 1.3, 1.8), 1e-4)
    assert level(1, 2.1, 2.4) > 10 * max(level(1, 0.2, 0.8), 1e-4)
    assert level(0, 0.2, 0.8) > 10 * max(level(1, 0.2, 0.8), 1e-4)


async def test_a_cancelled_flush_neither_drops_nor_outlives_the_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The call's end cancels a task waiting on a write: the write still lands whole, and the
    tape's close waits for it before closing the files (never a descriptor closed under a
    thread still writing to it). The write is held by the test, not timed."""
    import asyncio
    import contextlib
    import threading

    from receptionist.recordings import tape as tape_module

    started, gate = threading.Event(), threading.Event()
    real = tape_module._write_all

    def held(jobs: list[tuple[int, object]]) -> None:
        started.set()
        assert gate.wait(30)
        real(jobs)  # type: ignore[arg-type]

    monkeypatch.setattr(tape_module, "_write_all", held)
    tape = make(tmp_path)
    tape.caller_audio(tone(500), 100.5)
    waiter = asyncio.create_task(tape.flush())
    assert await asyncio.to_thread(started.wait, 30)
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    tape.flush_soon()  # a write is under way: no second one beside it
    closing = asyncio.create_task(tape.close())
    await asyncio.sleep(0)
    assert not closing.done()  # close waits for the held write
    gate.set()
    manifest = await closing
    assert len(samples(manifest.caller_path)) == RATE // 2  # all of it, nothing dropped
    assert manifest.error is None
