"""The Gemini Live double's end-of-speech detector must not depend on how a bridge chunks audio.

It looks at 10 ms windows of the continuous received stream; a chunk's samples that do not fill
a window wait for the next chunk. So the same audio gives the same window decisions, and the
turn ends at the same stream position, whether it arrives in 20 ms, 100 ms or ragged chunks.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from receptionist.sim.gemini_live.model import VAD_WINDOW_MS
from receptionist.sim.gemini_live.wire import WindowVad
from receptionist.sim.speech import silence, synth_speech

RATE = 16000


def stream() -> bytes:
    # speech, 230 ms of silence, speech, then a long silence; ends not on a window boundary
    return (
        silence(37, RATE)
        + synth_speech("Are you open today?", RATE)
        + silence(230, RATE)
        + synth_speech("Bye.", RATE)
        + silence(613, RATE)
    )


def feed(pcm: bytes, sizes: list[int]) -> list[bool]:
    vad = WindowVad()
    out: list[bool] = []
    pos = 0
    for size in itertools.cycle(sizes):
        if pos >= len(pcm):
            break
        voiced, win_s = vad.push(pcm[pos : pos + size], RATE)
        assert win_s == pytest.approx(VAD_WINDOW_MS / 1000)
        out += voiced
        pos += size
    return out


def ms(n: float) -> int:
    return 2 * int(RATE * n / 1000)


def test_windows_are_10_ms() -> None:
    assert VAD_WINDOW_MS == 10


@pytest.mark.parametrize(
    "sizes",
    [
        [ms(20)],
        [ms(100)],
        [ms(40), ms(60)],
        [2 * 7, 2 * 333, 2 * 1],  # ragged, not aligned to windows
        [ms(1000)],
    ],
)
def test_same_audio_same_windows_whatever_the_chunks(sizes: list[int]) -> None:
    pcm = stream()
    reference = feed(pcm, [ms(10)])
    assert feed(pcm, sizes) == reference
    # every whole window of the stream was judged once; the partial last one waits
    assert len(reference) == len(pcm) // ms(10)


def test_end_of_speech_falls_on_the_stream_position() -> None:
    pcm = stream()
    voiced = feed(pcm, [ms(100)])
    last = max(i for i, v in enumerate(voiced) if v)
    speech_end_ms = 37 + len(synth_speech("Are you open today?", RATE)) / 32 + 230
    speech_end_ms += len(synth_speech("Bye.", RATE)) / 32
    # the last voiced window is the one holding the end of speech (10 ms resolution)
    assert last == pytest.approx(speech_end_ms / 10, abs=1)


def test_a_new_rate_starts_a_new_stream() -> None:
    vad = WindowVad()
    voiced, _ = vad.push(bytes(ms(15)), RATE)  # one window judged, 5 ms carried
    assert voiced == [False]
    voiced, win_s = vad.push(np.full(80, 3000, dtype="<i2").tobytes(), 8000)
    assert voiced == [True]  # the carried 16 kHz samples were dropped, not mixed in
    assert win_s == pytest.approx(0.01)
