"""The simulated caller's raw timestamps, which benches share (bridge_load.py, peer_pipecat.py):
`start_sent_at`, `turn_end_ms`, `reply_start_ms`, and which frame counts as the end of a turn."""

from __future__ import annotations

import numpy as np
import pytest

from receptionist.sim.caller import VOICE_WINDOW_MS, place_call
from receptionist.sim.caller.clips import clip_from_pcm
from receptionist.sim.speech import SPEECH_RMS_THRESHOLD, rms_int16, silence
from tests.integration.test_sim_caller import FakeBot, opts, quick_script, running


async def test_timestamps_line_up_with_the_latencies() -> None:
    bot = FakeBot(greeting_ms=300, reply_ms=300)
    async with running(bot) as base:
        result = await place_call(opts(base), quick_script(["hello there", "table for two"]))
    assert result.ok, result.error
    assert result.start_sent_at is not None
    assert len(result.turn_end_ms) == 2
    assert len(result.reply_start_ms) == len(result.response_ms) == 2
    starts = [e.t_ms for e in result.events if e.kind == "agent_audio_start"]
    said = [e.t_ms for e in result.events if e.kind == "caller_said"]
    assert result.reply_start_ms == starts[1:]  # the replies, not the greeting
    for i in range(2):
        # each turn ends after its line starts and before its reply; the response is the gap
        assert said[i] < result.turn_end_ms[i] < result.reply_start_ms[i]
        gap = result.reply_start_ms[i] - result.turn_end_ms[i]
        assert result.response_ms[i] == pytest.approx(gap, abs=0.11)  # each rounded to 0.1


def test_a_frame_with_a_short_speech_tail_is_voiced() -> None:
    # 10 ms of speech-level tone then 90 ms of silence: the frame's RMS is under the threshold,
    # but it carries the end of the speech, so it is the turn's last voiced frame
    rate = 8000
    n = rate * VOICE_WINDOW_MS // 1000
    t = np.arange(n) / rate
    tail = np.round(1000 * np.sin(2 * np.pi * 200 * t)).astype("<i2").tobytes()
    frame = tail + silence(90, rate)
    assert rms_int16(frame) < SPEECH_RMS_THRESHOLD < rms_int16(tail)
    loud = np.full(rate // 10, 3000, dtype="<i2").tobytes()
    clip = clip_from_pcm(loud + frame + silence(600, rate), rate, 100)
    assert clip.voiced[:3] == (True, True, False)
    assert clip.turn_ends == frozenset({1})
