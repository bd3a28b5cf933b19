"""The ``llm`` brain: code decides what to say, a chat model only says it more naturally.

Small language models invent prices, timings and promises when they are asked to run a call, so
this brain never lets one decide anything. Every turn is first handled by a
:class:`~.grounded.GroundedBrain`: it updates the dialogue state (call type, details collected,
what is still missing, facts from the tenant's files, order total), decides ``end_call`` and
writes a *draft* reply with the exact facts. The chat model (:mod:`.chat`) is then asked to say
that draft again in natural, brief spoken words, given the tenant's persona, the state, the
recent conversation and strict rules (:func:`build_messages`).

What the model writes is checked by code before anyone hears it (:class:`Guard`):

- every number, day or month name, "am"/"pm" and collected detail (names, items, services) that
  the draft says must be said too, and the details it asks for must be asked for;
- no number, day/month, "am"/"pm" or number word that is not in the draft, the facts of this
  reply or the state;
- a question only when the draft asks one (the next turn is read as its answer), and only once
  the draft's facts have been said (a question ends the turn); no meta text ("here is the
  rewritten draft", the prompt's own labels), nothing but English, not too long, not empty.

Streaming: the model's text is released one speakable piece (a sentence, or part of a long one,
as :func:`~.sentences.split_sentences` cuts it) at a time, each checked as it completes, so the
engine can speak the first sentence while the model is still writing. On the first bad piece, a
timeout (no first token within ``first_token_timeout_s``, or more than ``total_timeout_s`` in
all) or any :class:`~.chat.ChatError`, the model is dropped for this turn and the rest comes from
the draft: the whole draft when nothing was released yet, else the draft's sentences that say
what is still unsaid, and its questions if none was asked. Each turn where the draft had to
step in is recorded in :attr:`LlmBrain.fallbacks` as ``(turn, reason)``; the next turn asks the
model again. ``end_call`` and the intent always come from the grounded brain.

Token usage (as the server reports it, estimated when it does not) adds up in
``usage_prompt_tokens`` / ``usage_completion_tokens`` with the model's name in ``model``, so the
engine can emit a ``Usage`` event.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from receptionist.tenants.model import Tenant

from .brain import BrainReply
from .chat import ChatClient, ChatError, ChatMessage, ChatStats
from .grounded import GroundedBrain
from .sentences import split_sentences

__all__ = [
    "DRAFT_LABEL",
    "Clock",
    "Guard",
    "LlmBrain",
    "LlmTurn",
    "LoopClock",
    "build_messages",
    "fact_tokens",
    "llm_brain_factory",
    "persona",
]


from .llm_guard import LABEL, MARKUP, Guard, fact_tokens
from .llm_prompt import DRAFT_LABEL, build_messages, persona, state_lines

# --------------------------------------------------------------------------- streaming pieces


class _Pieces:
    """Cuts the model's growing text into speakable pieces once each is final."""

    def __init__(self) -> None:
        self.pending = ""
        self.started = False

    def feed(self, delta: str) -> list[str]:
        self.pending += MARKUP.sub("", delta)
        if not self.started:
            stripped = LABEL.sub("", self.pending, count=1)
            if stripped != self.pending:
                self.pending = stripped
                self.started = True
        pieces = split_sentences(self.pending)
        if len(pieces) < 2:
            return []
        last = pieces[-1]
        m = re.search(r"\s+".join(map(re.escape, last.split())) + r"\s*$", self.pending)
        if m is None:
            return []
        self.pending = self.pending[m.start() :]
        self.started = True
        return pieces[:-1]

    def finish(self) -> list[str]:
        pieces = split_sentences(self.pending)
        self.pending = ""
        return pieces


_TERMINATED = re.compile(r"[.!?…]\W*$")


# --------------------------------------------------------------------------- the brain


class Clock(Protocol):
    """Where the brain's deadlines come from. Calls use :class:`LoopClock`; a test passes one
    whose time moves only when the test says, so no timeout depends on the machine's speed."""

    def time(self) -> float: ...

    def timeout_at(self, when: float) -> asyncio.Timeout: ...


class LoopClock:
    """The event loop's own clock and timeouts."""

    def time(self) -> float:
        return asyncio.get_running_loop().time()

    def timeout_at(self, when: float) -> asyncio.Timeout:
        return asyncio.timeout_at(when)


@dataclass(slots=True)
class LlmTurn:
    """How one turn was worded (for logs, tests and latency figures)."""

    turn: int
    draft: str
    spoken: str = ""
    # "model", "draft", "model+draft" (the model's words, then the draft's), "repeat" (the last
    # words again), "interrupted" (the engine stopped reading: barge-in)
    source: str = "draft"
    reason: str = ""  # why the draft was used ("" when the model's words were all used)
    first_token_s: float | None = None
    first_piece_s: float | None = None  # when the first piece could be spoken
    total_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    usage_estimated: bool = False


class LlmBrain:
    """One call's receptionist: :class:`GroundedBrain` decides, a chat model words it.

    ``client`` is shared by all calls (the brain never closes it). ``now`` and
    ``caller_number`` are passed to the grounded brain. ``clock`` times the model (the
    first-token and total deadlines, the latency figures); the event loop's by default. See the
    module docstring.
    """

    def __init__(
        self,
        tenant: Tenant,
        caller_number: str | None = None,
        now: datetime | None = None,
        *,
        client: ChatClient,
        first_token_timeout_s: float = 3.0,
        total_timeout_s: float = 8.0,
        max_tokens: int = 120,
        temperature: float = 0.3,
        history_turns: int = 6,
        clock: Clock | None = None,
    ) -> None:
        self.tenant = tenant
        self.grounded = GroundedBrain(tenant, caller_number, now)
        self.state = self.grounded.state
        self.client = client
        self.model = client.model
        self.first_token_timeout_s = first_token_timeout_s
        self.total_timeout_s = total_timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.history_turns = history_turns
        self.clock: Clock = clock or LoopClock()
        self.fallbacks: list[tuple[int, str]] = []
        self.turns: list[LlmTurn] = []
        self.usage_prompt_tokens = 0
        self.usage_completion_tokens = 0
        self.draft: BrainReply | None = None  # this turn's grounded reply, known before speaking
        self.last_reply: BrainReply | None = None
        self._last_spoken = ""

    # ----------------------------------------------------------------- Brain

    def opening(self) -> BrainReply:
        """The tenant's own greeting, as it is (no model: nothing to wait for)."""
        reply = self.grounded.opening()
        self._last_spoken = reply.text
        return reply

    async def reply(self, caller_text: str) -> BrainReply:
        async for _ in self.stream(caller_text):
            pass
        assert self.last_reply is not None
        return self.last_reply

    async def stream(self, caller_text: str) -> AsyncIterator[str]:
        """The reply in speakable pieces as they are ready (see :class:`StreamingBrain`)."""
        self.last_reply = None
        draft = self.grounded.respond(caller_text)
        self.draft = draft
        rec = LlmTurn(turn=self.state.turns, draft=draft.text)
        released: list[str] = []
        if draft.reason == "repeat" and self._last_spoken:
            rec.source = "repeat"  # say again what the caller heard, word for word
            try:
                for again in split_sentences(self._last_spoken):
                    released.append(again)
                    yield again
            finally:
                self._finish(draft, released, rec)
            return
        messages = build_messages(
            self.tenant, self.state, draft, caller_text, history_turns=self.history_turns
        )
        context = [*draft.facts, *state_lines(self.state), self.tenant.name]
        guard = Guard.for_draft(
            draft.text,
            context=context,
            details=self.state.details,
            pending_fields=self.state.pending_fields,
        )
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        task = asyncio.create_task(self._produce(messages, guard, queue, rec))
        try:
            while (piece := await queue.get()) is not None:
                released.append(piece)
                yield piece
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._finish(draft, released, rec)

    # ----------------------------------------------------------------- the model's turn

    async def _produce(
        self,
        messages: list[ChatMessage],
        guard: Guard,
        out: asyncio.Queue[str | None],
        rec: LlmTurn,
    ) -> None:
        """Read the model, release checked pieces, then whatever the draft must add; None last."""
        clock = self.clock
        started = clock.time()
        stats = ChatStats()
        received: list[str] = []
        problem: str | None = None

        def release(piece: str) -> None:
            if rec.first_piece_s is None:
                rec.first_piece_s = clock.time() - started
            out.put_nowait(piece)

        try:
            problem = await self._read_model(messages, guard, stats, received, release, rec)
        except Exception as exc:  # a client bug must not cost the caller their answer
            problem = f"chat failed: {type(exc).__name__}: {exc}"[:200]
        except asyncio.CancelledError:  # the caller spoke over us: no more pieces wanted
            rec.source = "interrupted"
            rec.total_s = clock.time() - started
            self._count_usage(messages, stats, received, rec)
            raise
        tail, dropped = guard.tail()
        if not guard.released and problem is None:
            problem = "empty reply"
        for sentence in tail:
            for piece in split_sentences(sentence):
                release(piece)
        rec.reason = problem or dropped
        rec.source = "draft" if not guard.released else ("model+draft" if tail else "model")
        rec.total_s = clock.time() - started
        self._count_usage(messages, stats, received, rec)
        out.put_nowait(None)

    async def _read_model(
        self,
        messages: list[ChatMessage],
        guard: Guard,
        stats: ChatStats,
        received: list[str],
        release: Callable[[str], None],
        rec: LlmTurn,
    ) -> str | None:
        """Stream the model's reply through the guard; the reason it was cut short, or None."""
        clock = self.clock
        started = clock.time()
        first_deadline = started + self.first_token_timeout_s
        total_deadline = started + self.total_timeout_s
        pieces = _Pieces()
        chunks = self.client.stream(
            messages, max_tokens=self.max_tokens, temperature=self.temperature, stats=stats
        )
        got_token = False
        try:
            while True:
                deadline = total_deadline if got_token else min(first_deadline, total_deadline)
                limit = clock.timeout_at(deadline)
                try:
                    async with limit:
                        delta = await anext(chunks)
                except StopAsyncIteration:
                    break
                except TimeoutError:
                    if not limit.expired():
                        return "chat failed: timeout"
                    if got_token:
                        return f"reply took over {self.total_timeout_s:g} s"
                    return f"no first token within {self.first_token_timeout_s:g} s"
                except ChatError as exc:
                    return f"chat error: {exc.reason}"
                received.append(delta)
                if not got_token and delta.strip():
                    got_token = True
                    rec.first_token_s = clock.time() - started
                problem = _release_checked(pieces.feed(delta), guard, release)
                if problem:
                    return problem
            rest = pieces.finish()
            if stats.finish_reason == "length" and rest and not _TERMINATED.search(rest[-1]):
                problem = _release_checked(rest[:-1], guard, release)
                return problem or f"cut off at max_tokens ({self.max_tokens})"
            return _release_checked(rest, guard, release)
        finally:
            close = getattr(chunks, "aclose", None)  # async generators: stop the request now
            if close is not None:
                with contextlib.suppress(Exception):
                    await close()

    def _count_usage(
        self, messages: Sequence[ChatMessage], stats: ChatStats, received: list[str], rec: LlmTurn
    ) -> None:
        prompt = stats.prompt_tokens
        completion = stats.completion_tokens
        if prompt is None or completion is None:
            rec.usage_estimated = True  # no usage chunk: about 4 characters a token
            if prompt is None:
                prompt = math.ceil(sum(len(m.content) for m in messages) / 4) if received else 0
            if completion is None:
                completion = len([d for d in received if d])
        rec.prompt_tokens, rec.completion_tokens = prompt, completion
        self.usage_prompt_tokens += prompt
        self.usage_completion_tokens += completion

    # ----------------------------------------------------------------- bookkeeping

    def _finish(self, draft: BrainReply, released: list[str], rec: LlmTurn) -> None:
        spoken = " ".join(released) or draft.text
        rec.spoken = spoken
        history = self.state.history
        if history and history[-1] == ("agent", draft.text):
            history[-1] = ("agent", spoken)  # what the caller heard, for the next prompt
        self._last_spoken = spoken
        self.turns.append(rec)
        if rec.reason:
            self.fallbacks.append((rec.turn, rec.reason))
        self.last_reply = BrainReply(
            text=spoken,
            end_call=draft.end_call,
            intent=draft.intent,
            facts=draft.facts,
            reason=draft.reason,
        )


def _release_checked(
    pieces: Sequence[str], guard: Guard, release: Callable[[str], None]
) -> str | None:
    """Release each piece the guard accepts, in order; the first problem stops it."""
    for piece in pieces:
        problem = guard.check(piece)
        if problem:
            return problem
        guard.accept(piece)
        release(piece)
    return None


def llm_brain_factory(
    client: ChatClient, **options: Any
) -> Callable[[Tenant, str | None], LlmBrain]:
    """A per-call brain factory (the engine's ``BrainFactory`` shape) sharing one ``client``;
    ``options`` are :class:`LlmBrain`'s keyword arguments (timeouts, max_tokens ...)."""

    def make(tenant: Tenant, caller_number: str | None) -> LlmBrain:
        return LlmBrain(tenant, caller_number, client=client, **options)

    return make
