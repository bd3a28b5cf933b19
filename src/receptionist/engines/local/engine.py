"""The `local` voice engine: the caller is heard (VAD + Whisper), answered by a brain that knows
only the tenant's files, and spoken to (Piper), all on this machine's CPU.

Per call: caller audio at 8 kHz goes through the turn detector on the event loop (a few
microseconds per 20 ms frame); each finished utterance is transcribed, answered and spoken by one
task, in order. Speech is synthesized sentence by sentence and handed to the bridge as soon as
each sentence is ready, so the caller hears the first words while the rest is made. The models
run on bounded thread lanes shared by all calls (models.ModelLane), so a busy call never stalls
the event loop or another call's audio.

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
    Interrupted,
    TurnComplete,
)
from receptionist.engines.local.brain import Brain, BrainReply, StreamingBrain
from receptionist.engines.local.sentences import split_sentences
from receptionist.engines.local.stt import SpeechToText
from receptionist.engines.local.tts import TextToSpeech
from receptionist.engines.local.vad import SpeechStarted, TurnDetector, Utterance, VadSettings
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
    ) -> None:
        self.speech = speech
        self.request = request
        self.model = f"{speech.stt_name}+{speech.tts_name}+local/{brain_name}"
        self._make_brain = make_brain
        self._brain_name = brain_name
        self._vad_settings = vad or VadSettings()
        self._brain: Brain | None = None
        self._detector: TurnDetector | None = None
        self._events: asyncio.Queue[EngineEvent] = asyncio.Queue()
        self._utterances: asyncio.Queue[tuple[Utterance, float]] = asyncio.Queue()
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
            else:
                # when the caller stopped speaking, on our clock: the detector returns the
                # utterance only after its end silence, which has just gone by
                lag_s = (self._detector.position_ms - ev.ended_ms) / 1000.0
                self._utterances.put_nowait((ev, time.monotonic() - lag_s))

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

    async def _answer_turns(self) -> None:
        while True:
            utterance, self._utterance_end = await self._utterances.get()
            try:
                heard = await self.speech.stt.transcribe(utterance.pcm, self._hint)
            except Exception as exc:  # a failed transcription is one lost turn, not the call
                log.error("call %s: speech-to-text failed: %s", self.request.call_sid, exc)
                continue
            self.stats.stt_s += heard.compute_s
            text = heard.text.strip()
            if not text:
                self.stats.empty_turns += 1  # noise or silence: no turn
                continue
            self._events.put_nowait(CallerTranscript(text))
            await self._answer(text)

    async def _answer(self, text: str) -> None:
        """The brain's reply, queued for speech: piece by piece as a streaming brain writes it
        (the first sentence is spoken while the rest is written), else whole."""
        brain, generation = self._brain, self._generation
        assert brain is not None
        if not isinstance(brain, StreamingBrain):
            reply = await self._reply(text)
            await self._speech.put(_Say(reply.text, last=True, end_call=reply.end_call))
            return
        pieces = brain.stream(text)
        try:
            async for piece in pieces:
                if generation != self._generation:
                    return  # the caller spoke over this reply
                await self._speech.put(_Say(piece, last=False))
        except Exception:  # a brain bug must not leave the caller in silence
            log.exception("call %s: brain failed", self.request.call_sid)
            await self._speech.put(_Say(_SORRY, last=True))
            return
        finally:
            await pieces.aclose()  # type: ignore[attr-defined]
        end_call = brain.last_reply.end_call if brain.last_reply is not None else False
        self._llm_usage(brain)
        if generation == self._generation:
            await self._speech.put(_Say("", last=True, end_call=end_call))

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
        said."""
        for piece in split_sentences(say.text):
            started = time.perf_counter()
            pcm = await self.speech.tts.synthesize(piece, RATE)
            self.stats.tts_s += time.perf_counter() - started
            if not pcm:
                continue
            if self._utterance_end is not None:
                self.stats.response_ms.append((time.monotonic() - self._utterance_end) * 1000)
                self._utterance_end = None
            now = time.monotonic()
            self._heard_until = max(self._heard_until, now) + duration_ms(len(pcm), RATE) / 1000
            self._events.put_nowait(AgentAudio(pcm))
            self._events.put_nowait(AgentTranscript(piece + " "))
        if say.last:
            if say.end_call:  # before the turn completes: the bridge hangs up once it is heard
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
