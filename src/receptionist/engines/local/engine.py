"""The `local` voice engine: the caller is heard (VAD + Whisper), answered by a brain that knows
only the tenant's files, and spoken to (Piper), all on this machine's CPU.

Per call: caller audio at 8 kHz goes through the turn detector on the event loop (a few
microseconds per 20 ms frame); each finished utterance is transcribed, answered and spoken by one
task, in order. Speech is synthesized sentence by sentence and handed to the bridge as soon as
each sentence is ready, so the caller hears the first words while the rest is made. The models
run on bounded thread lanes shared by all calls (models.ModelLane), so a busy call never stalls
the event loop or another call's audio.

Speculative transcription: when the caller pauses inside a turn (the detector's ``Pause``, well
before the end-of-turn silence), the turn so far is transcribed at once; if the turn then ends
with the same audio, that result is used and the brain starts without waiting for Whisper. If the
caller speaks on, the early result is dropped (or, not started yet, never computed).

Per turn, ``TurnTiming`` says where the time went (end silence, speech-to-text, brain,
first-sentence synthesis); it is logged at DEBUG and put on the call's record as a
``turn_timing`` note, which the conversation bench reads.

Turns the caller has not finished: a turn is not answered while the caller is already speaking
again or has said the next piece (both are joined to it, in order), and a turn whose words stop
mid-sentence ("Name is Kavita," / "... and") waits ``continue_ms`` more for the rest. No piece of
the caller's speech is dropped: a piece that comes after the answer has begun is the next turn.

Barge-in: the engine produces audio faster than it is played, so it keeps its own estimate of
when the caller will have heard everything; caller speech before then stops the agent (pending
sentences are dropped and `Interrupted` makes the bridge send Exotel `clear`).

Events are the same as Gemini Live's: AgentAudio, CallerTranscript, AgentTranscript,
TurnComplete, Interrupted, TokenUsage (zero tokens, the local model names, so costs show 0), plus
EndCall when the brain has said goodbye.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from receptionist.audio import duration_ms
from receptionist.engines.base import (
    AgentAudio,
    AgentTranscript,
    CallerTranscript,
    EndCall,
    EngineClosed,
    EngineError,
    EngineEvent,
    EngineNote,
    EngineRequest,
    HandoffRequested,
    Interrupted,
    ToolRunner,
    ToolSpec,
    TurnComplete,
)
from receptionist.engines.local.brain import Brain, BrainReply, StreamingBrain
from receptionist.engines.local.sentences import lead_clause, split_sentences
from receptionist.engines.local.stt import SpeechToText, Transcription
from receptionist.engines.local.tts import TextToSpeech
from receptionist.engines.local.vad import (
    Pause,
    SpeechStarted,
    TurnDetector,
    Utterance,
    VadSettings,
)
from receptionist.language.cues import sounds_unfinished
from receptionist.tenants.messages import default_messages
from receptionist.tenants.model import Tenant
from receptionist.usage import TokenUsage

log = logging.getLogger("receptionist.local")

RATE = 8000  # telephone audio both ways: no resampling in the bridge for 8 kHz Exotel streams
_NOT_SPEAKABLE = re.compile(r"[^\x00-\x7f‘’“”–—…₹]")  # scripts the English voice cannot read

BrainFactory = Callable[[Tenant, str | None], Brain]
_SORRY = "Sorry, I did not get that. Could you say it again?"


@dataclass(frozen=True, slots=True)
class _Say:
    """Words for the speaker: part of an agent turn, or its last part (then the turn ends)."""

    text: str
    last: bool
    end_call: bool = False
    handoff: bool = False  # the words put the caller through to a person (bridge/handoff.py)
    # the tool answers these words carry (a booking's reference): delivered once they are heard
    answers: tuple[dict[str, Any], ...] = ()


class _TurnTools:
    """The call's tools as the brain uses them, keeping each answer of the turn being written,
    so the engine tells the tools which were delivered: those of a reply that was spoken (a
    reply cleared by a barge-in before its first words, or never spoken before the call
    ended, delivered nothing)."""

    def __init__(self, tools: ToolRunner) -> None:
        self._tools = tools
        self._answers: list[dict[str, Any]] = []

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return self._tools.specs

    @property
    def instruction(self) -> str:
        return self._tools.instruction

    async def run(self, name: str, args: Any) -> dict[str, Any]:
        result = await self._tools.run(name, args)
        self._answers.append(result)
        return result

    def delivered(self, result: dict[str, Any]) -> None:
        self._tools.delivered(result)

    def take(self) -> tuple[dict[str, Any], ...]:
        answers, self._answers = tuple(self._answers), []
        return answers


@dataclass
class LocalSpeech:
    """The process's speech models, shared by every local call."""

    stt: SpeechToText
    tts: TextToSpeech
    stt_name: str = "local/whisper"
    tts_name: str = "local/piper"

    async def warm_up(self) -> None:
        await asyncio.gather(self.stt.warm_up(), self.tts.warm_up())


@dataclass
class TurnTiming:
    """Where one turn's response time went, in ms (see ``LocalTurnStats.timings``).

    ``response`` runs from the end of the caller's speech to the first agent audio handed to the
    bridge; it is ``silence`` (the detector waiting for the end of the turn) + ``queue`` (waiting
    for this task, e.g. behind the previous turn) + ``stt`` (not hidden by a speculative
    transcription: from the end of the turn to the text) + ``brain`` (to its first words) +
    ``tts`` (synthesis of the first sentence) + what is left (the event loop, the speaker)."""

    silence: float
    queue: float = 0.0
    stt: float = 0.0
    stt_compute: float = 0.0  # time in the model, wherever it ran (speculative or not)
    brain: float = 0.0
    tts: float = 0.0
    response: float = 0.0
    speculative: bool = False  # the text came from a transcription started at a pause

    def summary(self) -> str:
        return (
            f"silence={self.silence:.0f} queue={self.queue:.0f} stt={self.stt:.0f} "
            f"stt_compute={self.stt_compute:.0f} brain={self.brain:.0f} tts={self.tts:.0f} "
            f"response={self.response:.0f} speculative={int(self.speculative)}"
        )


@dataclass(frozen=True, slots=True)
class _Turn:
    """An utterance handed to the answering task."""

    utterance: Utterance
    ended_at: float  # monotonic time the caller stopped speaking
    timing: TurnTiming
    early: asyncio.Task[Transcription] | None = None  # speculative transcription of the same audio


@dataclass
class LocalTurnStats:
    """Per call, for logs and the bench: how fast the engine answered."""

    turns: int = 0
    # end of the caller's speech (the utterance's last voiced frame, on the call's audio clock)
    # to the first agent audio handed to the bridge, per turn
    response_ms: list[float] = field(default_factory=list)
    stt_s: float = 0.0
    tts_s: float = 0.0
    barge_ins: int = 0
    empty_turns: int = 0
    timings: list[TurnTiming] = field(default_factory=list)  # per answered turn
    speculative_used: int = 0
    speculative_dropped: int = 0
    joined_pieces: int = 0  # pieces of speech joined to the turn before them (not yet answered)


class LocalEngine:
    name = "local"
    input_rate = RATE
    output_rate = RATE

    def __init__(
        self,
        speech: LocalSpeech,
        make_brain: BrainFactory,
        request: EngineRequest,
        *,
        brain_name: str = "grounded",
        vad: VadSettings | None = None,
        continue_ms: int = 700,
    ) -> None:
        self.speech = speech
        self.request = request
        self.model = f"{speech.stt_name}+{speech.tts_name}+local/{brain_name}"
        self._make_brain = make_brain
        self._brain_name = brain_name
        self._vad_settings = vad or VadSettings()
        self._continue_s = continue_ms / 1000  # wait for the rest of an unfinished sentence
        self._brain: Brain | None = None
        self._tools: _TurnTools | None = None  # the call's tools, as the brain uses them
        self._detector: TurnDetector | None = None
        self._events: asyncio.Queue[EngineEvent] = asyncio.Queue()
        self._utterances: asyncio.Queue[_Turn] = asyncio.Queue()
        # a transcription started at the caller's last pause, and the audio it is of
        self._early: tuple[Utterance, asyncio.Task[Transcription]] | None = None
        self._timing: TurnTiming | None = None  # the turn being answered, until its first audio
        self._heard_language = ""  # what speech-to-text last heard the caller speak ("" unknown)
        self._speech: asyncio.Queue[_Say] = asyncio.Queue()
        self._generation = 0  # bumped by barge-in
        self._tasks: list[asyncio.Task[None]] = []
        self._speaking: asyncio.Task[None] | None = None
        self._heard_until = 0.0  # monotonic time the caller will have heard all our audio
        self._utterance_end: float | None = None  # monotonic end of the caller's last turn
        self._closed = False
        self._hint: str | None = None
        self._greeted: str | None = None  # the greeting the caller heard from the bridge's cache
        # what shapes the agent's audio (the bridge's greeting cache key): voice and brain (a
        # brain may word the greeting itself, see say())
        self.voice_id = f"{self.name}:{speech.tts_name}:{brain_name}"
        self.stats = LocalTurnStats()

    # --- VoiceEngine ------------------------------------------------------------------------

    async def connect(self) -> None:
        tenant = self.request.tenant
        if tenant is None:
            raise EngineError("the local engine needs the tenant's files")
        try:
            self._brain = self._make_brain(tenant, self.request.caller_number)
            use_tools = getattr(self._brain, "use_tools", None)
            if self.request.tools is not None and use_tools is not None:
                self._tools = _TurnTools(self.request.tools)
                use_tools(self._tools)  # the grounded brain books through them
            self._hint = vocabulary_hint(tenant)
            self._detector = TurnDetector(self._vad_settings)
        except Exception as exc:  # a broken brain or missing VAD: the call is refused cleanly
            raise EngineError(f"local engine could not start: {exc}") from exc
        if self._greeted is not None:  # said from the cache: the brain knows it was said
            self._brain.state.history.append(("agent", self._greeted))
        self._emit_usage()  # zero tokens: it names the local models so the call is costed at 0
        self._tasks = [
            asyncio.create_task(self._answer_turns(), name=f"local-turns-{self.request.call_sid}"),
            asyncio.create_task(self._speak_queue(), name=f"local-speak-{self.request.call_sid}"),
        ]

    def greeting_played(self, text: str) -> None:
        """Before connect(): the caller hears `text` from the bridge's cache, so no greeting is
        synthesized; it joins the brain's history as the agent's first turn."""
        self._greeted = text

    async def say(self, text: str, kind: str | None = None) -> None:
        """A fixed line from the bridge. The voice speaks English: a line in another script is
        replaced by the brain's opening (greeting) or the English default for its kind."""
        if _NOT_SPEAKABLE.search(text):
            text = self._english_for(kind) or text
        await self._speech.put(_Say(text, last=True))

    async def send_audio(self, pcm: bytes) -> None:
        if self._detector is None or self._closed:
            return
        for ev in self._detector.feed(pcm):
            if isinstance(ev, SpeechStarted):
                self._caller_started()
            elif isinstance(ev, Pause):
                self._transcribe_early(ev.utterance)
            else:
                # when the caller stopped speaking, on our clock: the detector returns the
                # utterance only after its end silence, which has just gone by
                lag_ms = self._detector.position_ms - ev.ended_ms
                early = self._take_early(ev)
                self._utterances.put_nowait(
                    _Turn(ev, time.monotonic() - lag_ms / 1000, TurnTiming(lag_ms), early)
                )

    async def events(self) -> AsyncIterator[EngineEvent]:
        while True:
            ev = await self._events.get()
            yield ev
            if isinstance(ev, EngineClosed):
                return

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_early()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._events.put_nowait(EngineClosed())

    # --- turns ------------------------------------------------------------------------------

    def _english_for(self, kind: str | None) -> str | None:
        if kind == "greeting" and self._brain is not None:
            return self._brain.opening().text
        if kind:
            return getattr(default_messages("en"), kind, None)
        return None

    def _caller_started(self) -> None:
        """Caller speech confirmed: if our audio is still playing, stop it (barge-in)."""
        if time.monotonic() < self._heard_until:
            self.stats.barge_ins += 1
            self._stop_speaking()
            self._heard_until = time.monotonic()
            self._events.put_nowait(Interrupted())

    def _stop_speaking(self) -> None:
        self._generation += 1  # a reply still being written for the old turn is dropped
        while not self._speech.empty():
            self._speech.get_nowait()
        if self._speaking is not None:
            self._speaking.cancel()

    def _transcribe_early(self, utterance: Utterance) -> None:
        """The caller paused: transcribe the turn so far now, in case it is the whole turn."""
        self._drop_early()  # an earlier pause's audio is a prefix of this: no longer wanted
        task = asyncio.create_task(self.speech.stt.transcribe(utterance.pcm, self._hint))
        task.add_done_callback(_retrieve)  # a dropped one's failure is of no interest
        self._early = (utterance, task)

    def _take_early(self, utterance: Utterance) -> asyncio.Task[Transcription] | None:
        """The speculative transcription if it is of exactly this audio, else None (dropped)."""
        if self._early is not None and self._early[0].pcm == utterance.pcm:
            task = self._early[1]
            self._early = None
            self.stats.speculative_used += 1
            return task
        self._drop_early()
        return None

    def _drop_early(self) -> None:
        if self._early is not None:
            # waiting for the model lane, it never runs; running, its result is thrown away
            self._early[1].cancel()
            self._early = None
            self.stats.speculative_dropped += 1

    async def _hear(self, turn: _Turn) -> Transcription:
        if turn.early is not None:
            try:
                heard = await turn.early
                turn.timing.speculative = True
                return heard
            except Exception as exc:  # e.g. cancelled at close: transcribe the usual way
                log.debug("call %s: early transcription lost: %r", self.request.call_sid, exc)
        return await self.speech.stt.transcribe(turn.utterance.pcm, self._hint)

    async def _answer_turns(self) -> None:
        while True:
            turn = await self._utterances.get()
            self._utterance_end, timing = turn.ended_at, turn.timing
            self._timing = None  # a turn spoken over before its first audio is not timed
            started = time.monotonic()
            timing.queue = max(0.0, (started - turn.ended_at) * 1000 - timing.silence)
            text = await self._text_of(turn, started)
            turn, text = await self._rest_of_turn(turn, text)
            if not text:
                continue
            self._events.put_nowait(CallerTranscript(text))
            heard_in = getattr(self._brain, "heard_in", None)
            if heard_in is not None and self._heard_language:
                heard_in(self._heard_language)  # the grounded brain's hand-off speaks it
            self._timing = turn.timing
            await self._answer(text)

    async def _text_of(self, turn: _Turn, started: float) -> str:
        """The words of one piece of the caller's speech ("" for noise or a failure)."""
        try:
            heard = await self._hear(turn)
        except Exception as exc:  # a failed transcription is one lost piece, not the call
            log.error("call %s: speech-to-text failed: %s", self.request.call_sid, exc)
            return ""
        turn.timing.stt = (time.monotonic() - started) * 1000
        turn.timing.stt_compute = heard.compute_s * 1000
        self._heard_language = heard.language or self._heard_language
        self.stats.stt_s += heard.compute_s
        text = heard.text.strip()
        if not text:
            self.stats.empty_turns += 1  # noise or silence: no turn
        return text

    def _caller_goes_on(self, text: str) -> bool:
        """Before answering: has the caller more to say that belongs to this turn?"""
        detector = self._detector
        speaking = detector is not None and detector.in_speech
        return not self._utterances.empty() or speaking or (bool(text) and sounds_unfinished(text))

    async def _rest_of_turn(self, turn: _Turn, text: str) -> tuple[_Turn, str]:
        """``text`` with the pieces the caller adds before it is answered: one already said,
        one being said now, or, when ``text`` stops mid-sentence, one begun within
        ``continue_ms``. The timing is the last piece's (its end is when the caller stopped)."""
        while self._caller_goes_on(text):
            if self._utterances.empty():
                detector = self._detector
                try:
                    nxt = await asyncio.wait_for(self._utterances.get(), self._continue_s)
                except TimeoutError:
                    if detector is None or not detector.in_speech:
                        return turn, text  # quiet: the caller has finished after all
                    nxt = await self._utterances.get()  # every opened turn ends in a piece
            else:
                nxt = self._utterances.get_nowait()
            self.stats.joined_pieces += 1
            more = await self._text_of(nxt, time.monotonic())
            self._utterance_end = nxt.ended_at
            nxt.timing.queue = 0.0
            turn, text = nxt, f"{text} {more}".strip()
        return turn, text

    async def _answer(self, text: str) -> None:
        """The brain's reply, queued for speech: piece by piece as a streaming brain writes it
        (the first sentence is spoken while the rest is written), else whole."""
        brain, generation = self._brain, self._generation
        assert brain is not None
        started = time.monotonic()
        if not isinstance(brain, StreamingBrain):
            reply = await self._reply(text)
            self._brain_done(started)
            handoff = reply.reason == "handoff"
            # the tools' answers this reply tells: delivered when it is spoken (_speak)
            answers = self._tools.take() if self._tools is not None else ()
            await self._speech.put(
                _Say(reply.text, last=True, end_call=reply.end_call, handoff=handoff,
                     answers=answers)
            )  # fmt: skip
            return
        pieces = brain.stream(text)
        try:
            async for piece in pieces:
                if generation != self._generation:
                    return  # the caller spoke over this reply
                self._brain_done(started)
                await self._speech.put(_Say(piece, last=False))
        except Exception:  # a brain bug must not leave the caller in silence
            log.exception("call %s: brain failed", self.request.call_sid)
            await self._speech.put(_Say(_SORRY, last=True))
            return
        finally:
            await pieces.aclose()  # type: ignore[attr-defined]
        last = brain.last_reply
        end_call = last.end_call if last is not None else False
        handoff = last is not None and last.reason == "handoff"
        self._llm_usage(brain)
        if generation == self._generation:
            await self._speech.put(_Say("", last=True, end_call=end_call, handoff=handoff))

    def _brain_done(self, started: float) -> None:
        """The brain's first words for the turn being timed are ready."""
        timing = self._timing
        if timing is not None and not timing.brain:
            timing.brain = max(0.001, (time.monotonic() - started) * 1000)

    def _first_audio(self, tts_ms: float) -> None:
        """The turn's first audio goes to the bridge now: its timing is complete."""
        assert self._utterance_end is not None
        response = (time.monotonic() - self._utterance_end) * 1000
        self.stats.response_ms.append(response)
        self._utterance_end = None
        timing, self._timing = self._timing, None
        if timing is None:
            return
        timing.tts, timing.response = tts_ms, response
        self.stats.timings.append(timing)
        # the bridge logs it (one DEBUG line per turn) and keeps it on the call's record
        self._events.put_nowait(EngineNote("turn_timing", timing.summary(), level=logging.DEBUG))

    async def _reply(self, text: str) -> BrainReply:
        assert self._brain is not None
        try:
            return await self._brain.reply(text)
        except Exception as exc:  # a brain bug must not leave the caller in silence
            log.exception("call %s: brain failed", self.request.call_sid)
            return BrainReply(_SORRY, reason=f"error: {exc}")

    async def _speak_queue(self) -> None:
        while True:
            say = await self._speech.get()
            self._speaking = asyncio.create_task(self._speak(say))
            try:
                await self._speaking
            except asyncio.CancelledError:
                if self._closed:
                    raise
                # barge-in cancelled this turn; the next one waits in the queue
            finally:
                self._speaking = None

    async def _speak(self, say: _Say) -> None:
        """Part or all of an agent turn, a sentence at a time: each is synthesized (much faster
        than it is spoken), handed over, and transcribed, so an interrupted turn keeps what was
        said. The first words of an answer are only a long sentence's first clause, so the
        caller waits for less synthesis."""
        pieces = split_sentences(say.text)
        answers = say.answers
        if pieces and self._utterance_end is not None:  # the caller is waiting for the answer
            pieces[:1] = lead_clause(pieces[0])
        for piece in pieces:
            started = time.perf_counter()
            pcm = await self.speech.tts.synthesize(piece, RATE)
            tts_s = time.perf_counter() - started
            self.stats.tts_s += tts_s
            if not pcm:
                continue
            if self._utterance_end is not None:
                self._first_audio(tts_s * 1000)
            now = time.monotonic()
            self._heard_until = max(self._heard_until, now) + duration_ms(len(pcm), RATE) / 1000
            self._events.put_nowait(AgentAudio(pcm))
            self._events.put_nowait(AgentTranscript(piece + " "))
            if answers and self._tools is not None:
                # the reply's first words are on their way to the caller ("Done, Asha: 4 pm
                # is booked."): its tools' answers were delivered
                for answer in answers:
                    self._tools.delivered(answer)
                answers = ()
        if say.last:
            if say.handoff:  # the bridge records it and ends the stream once it is heard
                self._events.put_nowait(HandoffRequested("caller_asked"))
            elif say.end_call:  # before the turn completes: the bridge hangs up once it is heard
                self._events.put_nowait(EndCall())
            self._events.put_nowait(TurnComplete())
            self.stats.turns += 1

    def _llm_usage(self, brain: object) -> None:
        """A chat model's tokens for the turn just written (self-hosted models cost 0: the
        pricing table's `llm/*` entry; add one for a paid endpoint)."""
        model = getattr(brain, "model", None)
        turns = getattr(brain, "turns", None)
        if not model or not turns:
            return
        turn = turns[-1]
        if turn.reason:  # the model's words were not (all) used: say why on the call's record
            self._events.put_nowait(EngineNote("llm_fallback", f"{turn.source}: {turn.reason}"))
        self._events.put_nowait(
            TokenUsage(
                model_name=f"llm/{model}",
                input_tokens=turn.prompt_tokens,
                output_tokens=turn.completion_tokens,
                total_tokens=turn.prompt_tokens + turn.completion_tokens,
                input_text_tokens=turn.prompt_tokens,
                output_text_tokens=turn.completion_tokens,
            )
        )

    def _emit_usage(self) -> None:
        for model in (self.speech.stt_name, self.speech.tts_name, f"local/{self._brain_name}"):
            self._events.put_nowait(TokenUsage(model_name=model))


def _retrieve(task: asyncio.Task[Transcription]) -> None:
    if not task.cancelled():
        task.exception()  # marks it retrieved: no "never retrieved" warning for a dropped one


def vocabulary_hint(tenant: Tenant, max_chars: int = 400) -> str:
    """The business's name and what it sells, as a prompt that steers Whisper to its words."""
    from receptionist.engines.local.knowledge import knowledge_for

    names = [tenant.name]
    for item in knowledge_for(tenant.input_files).items:
        if item.display not in names:
            names.append(item.display)
    hint = ""
    for name in names:
        if len(hint) + len(name) + 2 > max_chars:
            break
        hint = f"{hint}, {name}" if hint else name
    return hint + "."
