"""The local engine's turn handling without models: a scripted turn detector, a speech-to-text
that holds each answer until the test releases it, an instant voice and a fixed brain.

Speculative transcription: a ``Pause`` starts transcribing the turn so far; the turn's
``Utterance`` uses that result when its audio is the same, and drops it when the caller spoke on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from receptionist.engines.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    EngineEvent,
    EngineNote,
    EngineRequest,
    TurnComplete,
)
from receptionist.engines.local.brain import BrainReply, DialogueState
from receptionist.engines.local.engine import LocalEngine, LocalSpeech
from receptionist.engines.local.stt import Transcription
from receptionist.engines.local.vad import Pause, TurnEvent, Utterance
from receptionist.tenants.model import Tenant
from receptionist.tenants.repository import TenantRepository

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"


@dataclass
class HeldStt:
    """Each transcription waits until the test answers it; ``asked`` lists the audio asked for."""

    asked: list[bytes] = field(default_factory=list)
    answers: dict[bytes, asyncio.Future[str]] = field(default_factory=dict)
    cancelled: list[bytes] = field(default_factory=list)
    language: str = "en"  # what every transcription says it heard

    async def transcribe(self, pcm: bytes, hint: str | None = None) -> Transcription:
        self.asked.append(pcm)
        future = self.answers.setdefault(pcm, asyncio.get_running_loop().create_future())
        try:
            text = await future
        except asyncio.CancelledError:
            self.cancelled.append(pcm)
            raise
        return Transcription(text, self.language, -0.2, 0.01, len(pcm) / 16000, 0.05)

    def answer(self, pcm: bytes, text: str) -> None:
        self.answers.setdefault(pcm, asyncio.get_running_loop().create_future()).set_result(text)

    async def warm_up(self) -> None:
        pass


class InstantTts:
    async def synthesize(self, text: str, rate: int) -> bytes:
        return b"\x01\x00" * 80  # 10 ms: the caller hears it at once

    async def warm_up(self) -> None:
        pass


class EchoBrain:
    def __init__(self) -> None:
        self.state = DialogueState()
        self.heard: list[str] = []
        self.answer: str | None = None  # what to say instead of the echo
        self.languages: list[str] = []  # as the engine told them (heard_in)

    def heard_in(self, language: str) -> None:
        self.languages.append(language)

    def opening(self) -> BrainReply:
        return BrainReply("Hello.")

    async def reply(self, caller_text: str) -> BrainReply:
        self.heard.append(caller_text)
        return BrainReply(self.answer or f"You said {caller_text}")


class ScriptedDetector:
    """Returns the events the test queues, one batch per ``feed``."""

    def __init__(self) -> None:
        self.batches: list[list[TurnEvent]] = []
        self.position_ms = 0
        self.in_speech = False  # a turn open (the caller is talking now)

    def feed(self, pcm: bytes) -> list[TurnEvent]:
        self.position_ms += 100
        return self.batches.pop(0) if self.batches else []


def _utterance(pcm: bytes, ended_ms: int) -> Utterance:
    return Utterance(pcm=pcm, started_ms=0, ended_ms=ended_ms, cut=False)


@pytest.fixture
def tenant() -> Tenant:
    return TenantRepository(EXAMPLES).get("bakery")


@dataclass
class Harness:
    engine: LocalEngine
    stt: HeldStt
    brain: EchoBrain
    detector: ScriptedDetector

    async def events_until(self, kind: type) -> list[EngineEvent]:
        seen: list[EngineEvent] = []
        async with asyncio.timeout(5):  # only a hung test waits this long
            while not any(isinstance(e, kind) for e in seen):
                seen.append(await self.engine._events.get())
        return seen

    async def step(self, *events: TurnEvent) -> None:
        self.detector.batches.append(list(events))
        await self.engine.send_audio(b"\x00\x00" * 800)
        for _ in range(5):  # let the tasks the events started run up to their next wait
            await asyncio.sleep(0)


@pytest.fixture
def continue_ms() -> int:
    """How long an unfinished sentence waits for its rest; a test overrides it by parametrize:
    long (only the test's next step ends the wait) or 0 (no wait)."""
    return 60_000


@pytest.fixture
async def harness(tenant: Tenant, continue_ms: int) -> Iterator[Harness]:
    stt, brain, detector = HeldStt(), EchoBrain(), ScriptedDetector()
    speech = LocalSpeech(stt=stt, tts=InstantTts())  # type: ignore[arg-type]
    request = EngineRequest("CA1", "bakery", "", "en-IN", tenant=tenant)
    engine = LocalEngine(
        speech,
        lambda t, n: brain,  # type: ignore[arg-type,return-value]
        request,
        continue_ms=continue_ms,
    )
    await engine.connect()
    engine._detector = detector  # type: ignore[assignment]
    while not engine._events.empty():  # the usage records from connect
        engine._events.get_nowait()
    yield Harness(engine, stt, brain, detector)
    await engine.close()


async def test_a_pause_result_is_used_when_the_turn_ends_with_the_same_audio(
    harness: Harness,
) -> None:
    turn = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    await harness.step(Pause(turn, at_ms=1140))
    assert harness.stt.asked == [turn.pcm]  # started before the end of the turn
    await harness.step(turn)
    assert harness.stt.asked == [turn.pcm]  # the end of the turn asks for nothing more
    harness.stt.answer(turn.pcm, "two kilos please")
    events = await harness.events_until(TurnComplete)
    assert [e.text for e in events if isinstance(e, CallerTranscript)] == ["two kilos please"]
    assert any(isinstance(e, AgentAudio) for e in events)
    assert harness.brain.heard == ["two kilos please"]
    stats = harness.engine.stats
    assert (stats.speculative_used, stats.speculative_dropped) == (1, 0)
    assert [t.speculative for t in stats.timings] == [True]


async def test_a_pause_result_is_dropped_when_the_caller_spoke_on(harness: Harness) -> None:
    early = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    turn = _utterance(early.pcm + b"\x07\x00" * 4000, ended_ms=1900)
    await harness.step(Pause(early, at_ms=1140))
    await harness.step(turn)
    assert harness.stt.asked == [early.pcm, turn.pcm]
    assert harness.stt.cancelled == [early.pcm]
    harness.stt.answer(turn.pcm, "two kilos of chocolate cake please")
    events = await harness.events_until(TurnComplete)
    heard = [e.text for e in events if isinstance(e, CallerTranscript)]
    assert heard == ["two kilos of chocolate cake please"]
    assert harness.brain.heard == heard
    stats = harness.engine.stats
    assert (stats.speculative_used, stats.speculative_dropped) == (0, 1)
    assert [t.speculative for t in stats.timings] == [False]


async def test_a_later_pause_replaces_an_earlier_one(harness: Harness) -> None:
    first = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    second = _utterance(first.pcm + b"\x07\x00" * 4000, ended_ms=1900)
    await harness.step(Pause(first, at_ms=1140))
    await harness.step(Pause(second, at_ms=2140))
    assert harness.stt.cancelled == [first.pcm]
    await harness.step(second)
    harness.stt.answer(second.pcm, "two kilos")
    await harness.events_until(TurnComplete)
    assert harness.brain.heard == ["two kilos"]
    assert harness.stt.asked == [first.pcm, second.pcm]


async def test_each_answered_turn_is_timed_and_noted(harness: Harness) -> None:
    turn = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    harness.detector.position_ms = 1400  # the step adds 100: 600 ms after the speech ended
    await harness.step(turn)
    harness.stt.answer(turn.pcm, "hello")
    events = await harness.events_until(TurnComplete)
    (timing,) = harness.engine.stats.timings
    assert timing.silence == 600
    assert timing.stt_compute == pytest.approx(50)
    assert timing.brain > 0
    assert timing.response >= timing.silence + timing.stt
    notes = [e for e in events if isinstance(e, EngineNote) and e.kind == "turn_timing"]
    assert len(notes) == 1
    assert "silence=600" in notes[0].detail and "speculative=0" in notes[0].detail


async def test_a_long_first_sentence_is_spoken_from_its_first_clause(harness: Harness) -> None:
    harness.brain.answer = (
        "Address: 14, 5th Cross, 6th Block, Koramangala, Bengaluru 560095. Anything else? "
        "We are open from nine, every day, including Sundays and all public holidays."
    )
    turn = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    await harness.step(turn)
    harness.stt.answer(turn.pcm, "where are you")
    events = await harness.events_until(TurnComplete)
    spoken = [e.text.strip() for e in events if isinstance(e, AgentTranscript)]
    assert spoken == [
        "Address: 14, 5th Cross,",  # the caller hears this while the rest is synthesized
        "6th Block, Koramangala, Bengaluru 560095.",
        "Anything else?",
        # only the answer's first piece is cut: later long sentences stay whole
        "We are open from nine, every day, including Sundays and all public holidays.",
    ]


# --- the rest of a turn ----------------------------------------------------------------------


def _heard(events: list[EngineEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, CallerTranscript)]


async def test_a_piece_said_before_the_answer_joins_the_turn(harness: Harness) -> None:
    """ "Name is Kavita Mishra | number 98...": the second piece ended before the first was
    transcribed; one turn, both pieces, in order."""
    first = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    second = _utterance(b"\x07\x00" * 4000, ended_ms=2900)
    await harness.step(first)
    await harness.step(second)
    harness.stt.answer(first.pcm, "Name is Kavita Mishra.")
    harness.stt.answer(second.pcm, "Number 9839445566.")
    events = await harness.events_until(TurnComplete)
    assert _heard(events) == ["Name is Kavita Mishra. Number 9839445566."]
    assert harness.brain.heard == _heard(events)
    assert harness.engine.stats.joined_pieces == 1
    assert len(harness.engine.stats.timings) == 1


async def test_a_turn_cut_mid_sentence_waits_for_its_rest(harness: Harness) -> None:
    first = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    await harness.step(first)
    harness.stt.answer(first.pcm, "Name is Kavita,")
    for _ in range(5):
        await asyncio.sleep(0)
    assert harness.brain.heard == []  # not answered: the caller has not finished
    second = _utterance(b"\x07\x00" * 4000, ended_ms=2900)
    await harness.step(second)
    harness.stt.answer(second.pcm, "number 9839445566.")
    events = await harness.events_until(TurnComplete)
    assert harness.brain.heard == _heard(events) == ["Name is Kavita, number 9839445566."]


@pytest.mark.parametrize("continue_ms", [0])
async def test_an_unfinished_turn_is_answered_when_nothing_follows(harness: Harness) -> None:
    first = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    await harness.step(first)
    harness.stt.answer(first.pcm, "I want a cake and")
    await harness.events_until(TurnComplete)
    assert harness.brain.heard == ["I want a cake and"]
    # what the caller says after the answer is the next turn, not lost
    second = _utterance(b"\x07\x00" * 4000, ended_ms=5900)
    await harness.step(second)
    harness.stt.answer(second.pcm, "a chocolate one.")
    await harness.events_until(TurnComplete)
    assert harness.brain.heard == ["I want a cake and", "a chocolate one."]


@pytest.mark.parametrize("continue_ms", [0])
async def test_a_turn_is_not_answered_while_the_caller_speaks_again(harness: Harness) -> None:
    first = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    await harness.step(first)
    harness.detector.in_speech = True  # the caller went on after the end-of-turn silence
    harness.stt.answer(first.pcm, "Two kilos of Black Forest.")
    for _ in range(5):
        await asyncio.sleep(0)
    assert harness.brain.heard == []
    harness.detector.in_speech = False
    second = _utterance(b"\x07\x00" * 4000, ended_ms=2900)
    await harness.step(second)
    harness.stt.answer(second.pcm, "For Saturday.")
    await harness.events_until(TurnComplete)
    assert harness.brain.heard == ["Two kilos of Black Forest. For Saturday."]


async def test_a_noise_piece_joined_to_a_turn_adds_nothing(harness: Harness) -> None:
    first = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    noise = _utterance(b"\x07\x00" * 4000, ended_ms=2900)
    await harness.step(first)
    await harness.step(noise)
    harness.stt.answer(first.pcm, "Two kilos.")
    harness.stt.answer(noise.pcm, "")
    await harness.events_until(TurnComplete)
    assert harness.brain.heard == ["Two kilos."]
    assert harness.engine.stats.empty_turns == 1


async def test_the_brain_is_told_the_language_each_turn_was_heard_in(harness: Harness) -> None:
    turn = _utterance(b"\x05\x00" * 4000, ended_ms=900)
    harness.stt.language = "hi"
    await harness.step(turn)
    harness.stt.answer(turn.pcm, "malik se baat karni hai")
    await harness.events_until(TurnComplete)
    assert harness.brain.languages == ["hi"]
