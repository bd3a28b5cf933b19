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
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from receptionist.language.text import wordset
from receptionist.tenants.model import Tenant

from .brain import BrainReply, DialogueState
from .chat import ChatClient, ChatError, ChatMessage, ChatStats
from .grounded import CALLER_NUMBER_TEXT, GroundedBrain, say_date, say_time
from .knowledge import format_rupees
from .sentences import split_sentences

__all__ = [
    "DRAFT_LABEL",
    "Clock",
    "Guard",
    "LlmBrain",
    "LlmTurn",
    "LoopClock",
    "build_messages",
    "llm_brain_factory",
    "persona",
]

#: The user message ends with this label and the draft on one line (the chat double echoes it).
DRAFT_LABEL = "DRAFT:"

# --------------------------------------------------------------------------- the guard

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_GROUPED = re.compile(r"\d{1,3}(?:,\d{3})+|\d{1,2}(?:,\d{2})*,\d{3}")  # 1,200 / 1,00,000
_MERIDIEM = re.compile(r"(?<=\d)\s*([ap])\.?\s?m\b\.?", re.I)
_DAYS = wordset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april "
    "june july august september october november december"
)  # "may" is a verb far more often than a month
_NUMBER_WORDS = wordset(
    "zero two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand lakh lakhs crore crores dozen"
)  # not "one": "which one", "no one"
_WORD = re.compile(r"[a-z]+")
_KEEP_STOP = wordset("the and for with any from per not but you your our this that are was")
_META = re.compile(
    r"\b(?:draft|rewrit\w*|reword\w*|rephras\w*|paraphras\w*|as an ai|language model)\b", re.I
)
# the prompt's own labels (build_messages): a small model sometimes goes on writing the prompt
_PROMPT_ECHO = re.compile(
    r"\b(?:caller just said|call type:|details collected|still missing:|order total:|"
    r"facts from the business|recent conversation|receptionist:|caller:)",
    re.I,
)
_NOT_ENGLISH = re.compile(r"[^\x00-\x7f‘’“”–—…₹]")
_MARKUP = re.compile(r"[*#_`\"“”]")
_LABEL = re.compile(
    r"^\s*(?:(?:receptionist|assistant|reply|response|answer|agent|rewritten|spoken)"
    r"(?: reply| text)?|[A-Z][a-z]{1,15})\s*:\s+",
    re.I,
)


def _norm_number(raw: str) -> list[str]:
    """ "1,200" -> ["1200"], "9:00" -> ["9"], "2.50" -> ["2.5"], "10,20" -> ["10", "20"]."""
    if _GROUPED.fullmatch(raw):
        return [raw.replace(",", "")]
    out: list[str] = []
    for part in raw.split(","):
        if ":" in part:
            hours, _, minutes = part.partition(":")
            out.append(hours if minutes.strip("0") == "" else f"{hours}:{minutes}")
        elif "." in part:
            try:
                out.append(format(Decimal(part).normalize(), "f"))
            except InvalidOperation:
                out.append(part)
        elif part:
            out.append(part)
    return out


def fact_tokens(text: str) -> set[str]:
    """The checkable facts of ``text``: numbers ("n:750"), day and month names ("d:thursday"),
    am/pm after a number ("m:pm") and numbers in words ("w:seven")."""
    out: set[str] = set()
    for m in _NUMBER.finditer(text):
        out.update(f"n:{n}" for n in _norm_number(m.group()))
    for m in _MERIDIEM.finditer(text):
        out.add(f"m:{m.group(1).lower()}m")
    for w in _WORD.findall(text.lower()):
        if w in _DAYS:
            out.add(f"d:{w}")
        elif w in _NUMBER_WORDS:
            out.add(f"w:{w}")
    return out


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.lower()))


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def keep_words(draft: str, details: dict[str, Any]) -> set[str]:
    """Words of the collected details (names, items, services, choices) that ``draft`` says.

    Only short values count (a name, "1 kg Black Forest cake", "pickup"): free text such as a
    complaint may be put in other words.
    """
    said = _words(draft)
    out: set[str] = set()
    for value in details.values():
        values = value if isinstance(value, list) else [value]
        limit = 6 if isinstance(value, list) else 4
        for v in values:
            if not isinstance(v, str) or v == CALLER_NUMBER_TEXT or len(v.split()) > limit:
                continue
            out.update(w for w in _WORD.findall(v.lower()) if len(w) >= 3 and w not in _KEEP_STOP)
    return {w for w in out if w in said}


def asked_words(draft: str, pending_fields: Iterable[str]) -> set[str]:
    """Words of the details being asked for ("pickup_or_delivery", "name") that ``draft`` says:
    a reply that drops one has dropped a question."""
    said = _words(draft)
    words = {w for f in pending_fields for w in _WORD.findall(f.lower())}
    return {w for w in words if len(w) >= 3 and w not in _KEEP_STOP and w in said}


def _draft_tokens(text: str) -> set[str]:
    """What a draft sentence says, in the guard's token kinds (facts, detail and field words)."""
    words = _words(text)
    return fact_tokens(text) | {f"k:{w}" for w in words} | {f"q:{w}" for w in words}


@dataclass(slots=True)
class Guard:
    """Checks a model's wording of one draft, piece by piece (see the module docstring).

    Required tokens: the draft's facts (see :func:`fact_tokens`), "k:word" for the words of the
    collected details it says and "q:word" for the words of the details it asks for. Facts and
    details must all have been said before the model may ask its question (a question is the
    end of a turn); everything must have been said by the end, else :meth:`tail` adds the draft
    sentences that say what is missing.
    """

    draft: str
    required: set[str]
    allowed: set[str]  # fact tokens the reply may use
    asks: bool  # the draft asks a question
    max_chars: int
    max_pieces: int
    released: list[str] = field(default_factory=list)

    @classmethod
    def for_draft(
        cls,
        draft: str,
        *,
        context: Iterable[str] = (),
        details: dict[str, Any] | None = None,
        pending_fields: Iterable[str] = (),
    ) -> Guard:
        """``context``: other true texts whose numbers the reply may repeat (facts, state)."""
        allowed = fact_tokens(draft)
        for text in context:
            allowed |= fact_tokens(text)
        required = {t for t in fact_tokens(draft) if t[0] in "ndm"}
        required |= {f"k:{w}" for w in keep_words(draft, details or {})}
        required |= {f"q:{w}" for w in asked_words(draft, pending_fields)}
        pieces = split_sentences(draft)
        return cls(
            draft=draft,
            required=required,
            allowed=allowed,
            asks="?" in draft,
            max_chars=max(160, int(len(draft) * 1.6) + 40),
            max_pieces=max(3, len(pieces) + 1),
        )

    def check(self, piece: str) -> str | None:
        """Why ``piece`` (the next piece of the model's reply) may not be said, or None."""
        if (_META.search(piece) and not _META.search(self.draft)) or _PROMPT_ECHO.search(piece):
            return "meta text"
        if _NOT_ENGLISH.search(piece):
            return "not English"
        for token in sorted(fact_tokens(piece) - self.allowed):
            kind, value = token.split(":", 1)
            what = {"n": "number", "d": "day", "m": "time", "w": "number in words"}[kind]
            return f"invented {what} {value}"
        if "?" in piece:
            if not self.asks:
                return "asked a question the draft does not"
            unsaid = [t for t in self.missing([*self.released, piece]) if not t.startswith("q:")]
            if unsaid:
                return "asked before saying " + ", ".join(t.split(":", 1)[1] for t in unsaid)
        if len(self.released) >= self.max_pieces:
            return "too long"
        if sum(len(p) + 1 for p in self.released) + len(piece) > self.max_chars:
            return "too long"
        return None

    def accept(self, piece: str) -> None:
        self.released.append(piece)

    def missing(self, pieces: Sequence[str] | None = None) -> list[str]:
        """Required tokens that ``pieces`` (default: the released ones) have not said."""
        said = " ".join(self.released if pieces is None else pieces)
        have = fact_tokens(said)
        words = _words(said)
        squashed = _squash(said)
        out = []
        for token in sorted(self.required):
            if token[0] in "kq":
                word = token[2:]
                if word not in words and word not in squashed:
                    out.append(token)
            elif token not in have:
                out.append(token)
        return out

    def tail(self) -> tuple[list[str], str]:
        """Draft sentences still to say after the released pieces, and why ("" if none): those
        that say something still missing, and the draft's questions if none was asked."""
        sentences = split_sentences(self.draft, max_chars=100_000)
        if not self.released:
            return sentences, ""
        missing = set(self.missing())
        picked = {i for i, s in enumerate(sentences) if _draft_tokens(s) & missing}
        reasons = []
        if missing:
            reasons.append("dropped " + ", ".join(t.split(":", 1)[1] for t in sorted(missing)))
        if self.asks and not any("?" in p for p in self.released):
            picked |= {i for i, s in enumerate(sentences) if "?" in s}
            reasons.append("dropped the question")
        return [sentences[i] for i in sorted(picked)], "; ".join(reasons)


# --------------------------------------------------------------------------- the prompt


def persona(tenant: Tenant) -> str:
    """The first paragraph of the tenant's assistant prompt (who speaks, in what tone), when it
    is English; else a plain line naming the business (the local voice speaks English only)."""
    first = tenant.assistant_prompt.strip().split("\n\n")[0]
    first = " ".join(first.split())
    if not first or _NOT_ENGLISH.search(first) or len(first) > 600:
        return f"You are the friendly receptionist of {tenant.name}."
    return first


_RULES = """\
You are on a phone call and you speak English only.
The receptionist software has already decided what to say next: the DRAFT at the end of the \
user message. Your only job is to say the DRAFT again in warm, natural, brief spoken words.
Rules:
1. Use only the facts in the DRAFT and in the lists given. Never add a price, number, date, \
time, name, item, offer or promise.
2. Keep every number, price, date, time and name of the DRAFT exactly as written, digits as digits.
3. Ask exactly the question the DRAFT asks and no other. If the DRAFT asks nothing, ask nothing.
4. One to three short sentences. Plain text only: no lists, no quotes, no markdown, no emojis.
5. Answer with the words to say and nothing else."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_HHMM = re.compile(r"^\d{1,2}:\d{2}$")


def _say_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ", ".join(_say_value(v) for v in value)
    text = str(value)
    if _ISO_DATE.match(text):
        return say_date(text)
    if _HHMM.match(text):
        return say_time(text)
    if "T" in text and _ISO_DATE.match(text.partition("T")[0]):
        d, _, t = text.partition("T")
        return f"{say_date(d)} at {say_time(t)}"
    return text


def state_lines(state: DialogueState) -> list[str]:
    """What the call has established, in words (for the prompt and the guard's context)."""
    lines: list[str] = []
    if state.intent:
        lines.append(f"Call type: {state.intent.replace('_', ' ')}")
    details = [
        f"- {name.replace('_', ' ')}: {_say_value(value)}"
        for name, value in state.details.items()
        if value not in (None, "", [])
    ]
    if details:
        lines += ["Details collected so far:", *details]
    if state.pending_fields:
        lines.append(
            "Still missing: " + ", ".join(f.replace("_", " ") for f in state.pending_fields)
        )
    if state.total is not None:
        lines.append(f"Order total: {format_rupees(state.total)}")
    return lines


def build_messages(
    tenant: Tenant,
    state: DialogueState,
    draft: BrainReply,
    caller_text: str,
    *,
    history_turns: int = 6,
) -> list[ChatMessage]:
    """The chat request that asks for ``draft`` in natural words: the system message (persona
    and rules), then one user message with the recent conversation, the state, the facts of this
    reply, the caller's words and, on its last line, the draft.

    ``state.history`` already holds this turn (the caller's words, then the draft): those two
    entries are left out of "recent conversation". What changes least comes first, so a local
    server can reuse its prompt cache from one turn to the next.
    """
    system = f"{persona(tenant)}\n{_RULES}"
    lines: list[str] = []
    earlier = state.history[:-2][-history_turns:] if history_turns > 0 else []
    if earlier:
        lines.append("Recent conversation:")
        lines += [
            f"{'Caller' if who == 'caller' else 'Receptionist'}: {text}" for who, text in earlier
        ]
    lines += state_lines(state)
    if draft.facts:
        lines.append("Facts from the business's files for this reply:")
        lines += [f"- {f}" for f in draft.facts]
    lines.append(f"The caller just said: {' '.join(caller_text.split()) or '(nothing clear)'}")
    lines.append("Say the DRAFT for the phone, in one to three short sentences.")
    lines.append(f"{DRAFT_LABEL} {draft.text}")
    return [ChatMessage("system", system), ChatMessage("user", "\n".join(lines))]


# --------------------------------------------------------------------------- streaming pieces


class _Pieces:
    """Cuts the model's growing text into speakable pieces once each is final."""

    def __init__(self) -> None:
        self.pending = ""
        self.started = False

    def feed(self, delta: str) -> list[str]:
        self.pending += _MARKUP.sub("", delta)
        if not self.started:
            stripped = _LABEL.sub("", self.pending, count=1)
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
                for piece in pieces.feed(delta):
                    problem = guard.check(piece)
                    if problem:
                        return problem
                    guard.accept(piece)
                    release(piece)
            rest = pieces.finish()
            if stats.finish_reason == "length" and rest and not _TERMINATED.search(rest[-1]):
                for piece in rest[:-1]:
                    problem = guard.check(piece)
                    if problem:
                        return problem
                    guard.accept(piece)
                    release(piece)
                return f"cut off at max_tokens ({self.max_tokens})"
            for piece in rest:
                problem = guard.check(piece)
                if problem:
                    return problem
                guard.accept(piece)
                release(piece)
            return None
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


def llm_brain_factory(
    client: ChatClient, **options: Any
) -> Callable[[Tenant, str | None], LlmBrain]:
    """A per-call brain factory (the engine's ``BrainFactory`` shape) sharing one ``client``;
    ``options`` are :class:`LlmBrain`'s keyword arguments (timeouts, max_tokens ...)."""

    def make(tenant: Tenant, caller_number: str | None) -> LlmBrain:
        return LlmBrain(tenant, caller_number, client=client, **options)

    return make
