"""The ``llm`` brain with a scripted in-memory chat model: the guard, the prompt, the fallbacks.

The model here is a plain object (:class:`Scripted`) that yields the pieces it is given, so these
tests check the brain's own logic; the HTTP client and the OpenAI-compatible double are tested in
tests/integration/test_llm_chat.py. "Now" is Wednesday 25 November 2026, 10:00 in Kolkata.

No outcome here depends on the machine's speed: the scripted model stops where a test tells it to
until the test releases it, and the brain's deadlines run on a :class:`ManualClock` that only
moves when a test advances it (one test uses the event loop's clock, against a model that never
answers, so only the timeout can end the turn).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from receptionist.engines.local.brain import Brain, BrainReply, StreamingBrain
from receptionist.engines.local.chat import (
    ChatClient,
    ChatError,
    ChatMessage,
    ChatStats,
    EmbeddedLlamaClient,
    OpenAIChatClient,
    chat_completions_url,
    make_chat_client,
)
from receptionist.engines.local.grounded import GroundedBrain
from receptionist.engines.local.llm_brain import (
    DRAFT_LABEL,
    Clock,
    Guard,
    LlmBrain,
    LoopClock,
    build_messages,
    fact_tokens,
    llm_brain_factory,
    persona,
)
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
CALLER = "+919845012345"
HELLO = [ChatMessage("user", "hello")]
BAKERY_ORDER = (
    "Hi, I want to order one kg Black Forest cake for tomorrow.",
    "Pickup, around 5 pm.",
    "My name is Priya Nair",
    "Yes, that's right.",
)
#: Only a broken brain waits this long (e.g. for the whole reply before its first sentence); a
#: working one never comes near it, so passing never depends on it.
HANG_GUARD_S = 30.0


@pytest.fixture(scope="module")
def tenants() -> dict[str, Tenant]:
    out = {}
    for tenant_id in ("bakery", "saloon", "clinic"):
        tenant, problems = load_tenant(EXAMPLES, tenant_id)
        assert tenant is not None, problems
        out[tenant_id] = tenant
    return out


# ----------------------------------------------------------------------------- a scripted model


def draft_of(messages: Sequence[ChatMessage]) -> str:
    last = messages[-1].content.splitlines()[-1]
    assert last.startswith(DRAFT_LABEL)
    return last[len(DRAFT_LABEL) :].strip()


class ManualClock:
    """A :class:`Clock` whose time moves only when the test calls :meth:`advance`.

    Its timeouts are the event loop's own, made with no deadline: :meth:`advance` makes those
    whose (manual) deadline has come fire at the next turn of the loop, and one asked for when
    its deadline has already come fires at once. (The brain makes each timeout and enters it in
    the same step, so a test cannot advance the clock between the two.)
    """

    def __init__(self) -> None:
        self.now = 0.0
        self._waiting: list[tuple[float, asyncio.Timeout]] = []

    def time(self) -> float:
        return self.now

    def timeout_at(self, when: float) -> asyncio.Timeout:
        if self.now >= when:
            return asyncio.timeout(0)
        timeout = asyncio.timeout(None)
        self._waiting.append((when, timeout))
        return timeout

    def advance(self, seconds: float) -> None:
        self.now += seconds
        loop_now = asyncio.get_running_loop().time()
        due = [timeout for when, timeout in self._waiting if when <= self.now]
        self._waiting = [(when, t) for when, t in self._waiting if when > self.now]
        for timeout in due:
            with contextlib.suppress(RuntimeError):  # already left: that wait is over
                timeout.reschedule(loop_now)


@dataclass
class Say:
    """One scripted answer: pieces to yield (None: "Sure. " + the draft, word by word).

    ``hold_at``: stop before piece number ``hold_at`` (0: before the first) until the test calls
    :meth:`Scripted.release`; never released, the model simply never goes on.
    """

    pieces: list[str] | None = None
    hold_at: int | None = None
    error: ChatError | None = None  # raised after the pieces
    usage: tuple[int, int] | None = (100, 10)
    finish: str = "stop"


@dataclass
class Scripted:
    """An in-memory ChatClient: each stream takes the next Say (default: echo the draft)."""

    answers: list[Say] = field(default_factory=list)
    model: str = "scripted-model"
    requests: list[list[ChatMessage]] = field(default_factory=list)
    closed_streams: int = 0
    finished_streams: int = 0  # streams that yielded every piece
    holding: int = 0  # streams stopped at a hold right now
    released: asyncio.Event = field(default_factory=asyncio.Event)

    def release(self) -> None:
        self.released.set()

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stats: ChatStats | None = None,
    ) -> AsyncIterator[str]:
        self.requests.append(list(messages))
        say = self.answers.pop(0) if self.answers else Say()
        pieces = say.pieces
        if pieces is None:
            pieces = [w + " " for w in ("Sure. " + draft_of(messages)).split()]
        try:
            for i, piece in enumerate(pieces):
                if i == say.hold_at:
                    self.holding += 1
                    try:
                        await self.released.wait()
                    finally:
                        self.holding -= 1
                yield piece
            self.finished_streams += 1
            if say.error is not None:
                raise say.error
            if stats is not None:
                stats.finish_reason = say.finish
                if say.usage is not None:
                    stats.prompt_tokens, stats.completion_tokens = say.usage
        finally:
            self.closed_streams += 1

    async def aclose(self) -> None:
        pass


def llm(
    tenants: dict[str, Tenant],
    tenant_id: str,
    *answers: Say,
    clock: Clock | None = None,
    **options: float,
) -> tuple[LlmBrain, Scripted]:
    """A brain on a scripted model; its deadlines on a ManualClock unless ``clock`` is given."""
    client = Scripted(list(answers))
    brain = LlmBrain(
        tenants[tenant_id],
        CALLER,
        NOW,
        client=client,
        clock=clock or ManualClock(),
        **options,  # type: ignore[arg-type]
    )
    return brain, client


async def pieces_of(brain: LlmBrain, text: str) -> list[str]:
    return [piece async for piece in brain.stream(text)]


# ----------------------------------------------------------------------------- the guard


def test_fact_tokens_normalise_numbers_days_and_times() -> None:
    assert fact_tokens("₹1,200 or 1,00,000 rupees") == {"n:1200", "n:100000"}
    assert fact_tokens("from 9:00 am to 9:30 PM") == {"n:9", "n:9:30", "m:am", "m:pm"}
    assert fact_tokens("2.50 kg, items 10,20") == {"n:2.5", "n:10", "n:20"}
    assert fact_tokens("On Thursday 26th November, seven of them") == {
        "d:thursday",
        "d:november",
        "n:26",
        "w:seven",
    }
    assert fact_tokens("Which one? I am sure, no one may come.") == set()


def test_guard_rejects_invented_facts_and_stray_questions() -> None:
    draft = "Black Forest cake: 750 rupees per kg. For which date would you like it?"
    guard = Guard.for_draft(draft, context=["Sunday: 8:00 am to 9:00 pm"])
    assert guard.check("Our Black Forest cake is 750 rupees a kilo.") is None
    assert guard.check("It is 700 rupees a kilo.") == "invented number 700"
    assert guard.check("We are open Sunday from 8 am.") is None  # from the context
    assert guard.check("Come on Friday.") == "invented day friday"
    assert guard.check("That's seven hundred fifty rupees.") == "invented number in words fifty"
    assert guard.check("Here is the rewritten draft.") == "meta text"
    assert guard.check("नमस्ते, 750 rupees.") == "not English"
    no_question = Guard.for_draft("Alright. The owner will call you back.")
    assert no_question.check("Would you like a cake?") == "asked a question the draft does not"
    assert no_question.check("Okay.") is None


def test_guard_length_limits() -> None:
    guard = Guard.for_draft("Hello! How can I help you today?")
    for piece in ("Hi there.", "Nice to hear from you.", "Welcome."):
        assert guard.check(piece) is None
        guard.accept(piece)
    assert guard.check("How can I help?") == "too long"  # 4 pieces for a 2-sentence draft
    long = Guard.for_draft("Hello!")
    assert long.check("Hello " + "really " * 40 + "there.") == "too long"


def test_guard_tail_says_what_the_model_dropped() -> None:
    draft = (
        "So that's an order for 1 kg Black Forest cake, under the name Priya Nair, price 750 "
        "rupees. Is that right?"
    )
    details = {"items": ["1 kg Black Forest cake"], "name": "Priya Nair"}
    guard = Guard.for_draft(draft, details=details)
    assert {"n:1", "n:750", "k:priya", "k:nair", "k:black", "k:forest"} <= guard.required
    guard.accept("Lovely, one Black Forest cake for Priya Nair.")
    tail, why = guard.tail()
    assert tail == [
        "So that's an order for 1 kg Black Forest cake, under the name Priya Nair, price 750 "
        "rupees.",
        "Is that right?",
    ]
    assert why == "dropped 1, 750; dropped the question"
    ok = Guard.for_draft(draft, details=details)
    ok.accept("1 kg Black Forest cake for Priya Nair, 750 rupees.")
    assert ok.tail() == (["Is that right?"], "dropped the question")
    ok.accept("Is that correct?")
    assert ok.tail() == ([], "")
    assert Guard.for_draft(draft).tail()[0] == [draft.rsplit(" Is", 1)[0], "Is that right?"]


def test_guard_questions_come_after_the_facts_and_ask_for_the_same_details() -> None:
    draft = (
        "1 kg Black Forest cake, 750 rupees. Would you like pickup or delivery? "
        "May I have your name, please?"
    )
    details = {"items": ["1 kg Black Forest cake"]}
    guard = Guard.for_draft(draft, details=details, pending_fields=["pickup_or_delivery", "name"])
    assert {"q:pickup", "q:delivery", "q:name"} <= guard.required
    # asking before the price was said: the question waits for the draft
    assert guard.check("Pickup or delivery?") == "asked before saying black, cake, forest, 1, 750"
    guard.accept("1 kg Black Forest cake is 750 rupees.")
    # one question of the two: allowed, and the draft adds the other one at the end
    assert guard.check("May I have your name?") is None
    guard.accept("May I have your name?")
    assert guard.tail() == (
        ["Would you like pickup or delivery?"],
        "dropped delivery, pickup",
    )
    # the prompt's own words are never spoken
    assert guard.check("The caller just said: pickup at 5.") == "meta text"
    assert guard.check("Receptionist: okay.") == "meta text"


# ----------------------------------------------------------------------------- the prompt


async def test_prompt_carries_persona_state_facts_history_and_draft(
    tenants: dict[str, Tenant],
) -> None:
    brain, client = llm(tenants, "bakery")
    await brain.reply(BAKERY_ORDER[0])
    await brain.reply(BAKERY_ORDER[1])
    system, user = client.requests[-1]
    assert system.role == "system" and user.role == "user"
    assert system.content.startswith("You are Priya, the friendly receptionist of Sweet Crumbs")
    assert "Never add a price" in system.content and "digits as digits" in system.content
    text = user.content
    assert "Call type: order" in text
    assert "- items: 1 kg Black Forest cake" in text and "- date: Thursday 26 November" in text
    assert "- time: 5 pm" in text and "Still missing: name" in text
    assert "Order total: 750 rupees" in text
    # the history has the earlier turn as it was spoken, not this turn (that is the draft)
    assert f"Caller: {BAKERY_ORDER[0]}" in text and "Receptionist: Sure." in text
    assert f"Caller: {BAKERY_ORDER[1]}" not in text
    assert f"The caller just said: {BAKERY_ORDER[1]}" in text
    assert text.splitlines()[-1] == f"{DRAFT_LABEL} {brain.draft.text}"  # type: ignore[union-attr]
    # facts of the reply are listed for a question answered from the files
    brain, client = llm(tenants, "bakery")
    await brain.reply("How much is the black forest cake?")
    assert "Facts from the business's files for this reply:" in client.requests[-1][1].content
    assert "750 rupees per kg" in client.requests[-1][1].content


def test_persona_is_english(tenants: dict[str, Tenant]) -> None:
    assert persona(tenants["saloon"]).startswith("You are Meena, the receptionist of Glow")
    # the clinic's prompt is in Hindi; the local voice speaks English
    assert (
        persona(tenants["clinic"]) == "You are the friendly receptionist of Sharma Family Clinic."
    )
    state = GroundedBrain(tenants["clinic"], CALLER, NOW).state
    reply = BrainReply("Hello! How can I help you?")
    messages = build_messages(tenants["clinic"], state, reply, "hello", history_turns=0)
    assert "Recent conversation" not in messages[1].content


# ----------------------------------------------------------------------------- the brain


async def test_model_words_the_reply_and_code_decides_the_rest(
    tenants: dict[str, Tenant],
) -> None:
    brain, client = llm(tenants, "bakery")
    grounded = GroundedBrain(tenants["bakery"], CALLER, NOW)
    assert isinstance(brain, Brain) and isinstance(brain, StreamingBrain)
    assert brain.opening() == grounded.opening()
    for line in BAKERY_ORDER:
        mine, theirs = await brain.reply(line), await grounded.reply(line)
        assert mine.text == "Sure. " + theirs.text  # the (echoing) model's words
        assert (mine.end_call, mine.intent, mine.reason, mine.facts) == (
            theirs.end_call,
            theirs.intent,
            theirs.reason,
            theirs.facts,
        )
    assert brain.state.details == grounded.state.details and brain.state.total == 750
    assert brain.fallbacks == [] and [t.source for t in brain.turns] == ["model"] * 4
    assert (brain.model, brain.usage_prompt_tokens, brain.usage_completion_tokens) == (
        "scripted-model",
        400,
        40,
    )
    # the history holds what was spoken, for the next prompt
    assert brain.state.history[2] == ("agent", brain.turns[0].spoken)  # after the greeting
    assert len(client.requests) == 4


async def test_invented_price_falls_back_to_the_draft(tenants: dict[str, Tenant]) -> None:
    brain, _ = llm(tenants, "bakery", Say(["A 1 kg Black Forest cake is ", "700 rupees. "]))
    reply = await brain.reply(BAKERY_ORDER[0])
    assert "750 rupees" in reply.text and "700" not in reply.text
    assert reply.text == brain.draft.text  # type: ignore[union-attr]
    assert brain.fallbacks == [(1, "invented number 700")]
    assert brain.turns[0].source == "draft"
    again = await brain.reply(BAKERY_ORDER[1])  # the next turn asks the model again
    assert again.text.startswith("Sure. ") and brain.turns[1].source == "model"


async def test_bad_second_sentence_keeps_the_first_and_adds_the_draft(
    tenants: dict[str, Tenant],
) -> None:
    bad = Say(["Black Forest, 1 kg, 750 rupees. ", "Delivery is free on Friday. ", "Bye"])
    brain, client = llm(tenants, "bakery", bad)
    pieces = await pieces_of(brain, BAKERY_ORDER[0])
    draft = brain.draft.text  # type: ignore[union-attr]
    assert pieces[0] == "Black Forest, 1 kg, 750 rupees."
    assert "Friday" not in " ".join(pieces)
    # nothing the draft says is missing, but its question is: that is added
    assert " ".join(pieces[1:]) in draft and pieces[-1].endswith("?")
    assert brain.fallbacks == [(1, "invented day friday")]
    assert brain.turns[0].source == "model+draft" and client.closed_streams == 1


@pytest.mark.parametrize(
    ("say", "reason"),
    [
        (Say([], error=ChatError("HTTP 500: boom")), "chat error: HTTP 500: boom"),
        (Say([]), "empty reply"),
        (Say(["   "]), "empty reply"),
        (Say(["Hello there, what is the date? ", "Ok."]), "asked a question the draft does not"),
        (Say(["Sure, I will rephrase the draft: hi."]), "meta text"),
    ],
)
async def test_model_failures_use_the_draft(
    tenants: dict[str, Tenant], say: Say, reason: str
) -> None:
    brain, _ = llm(tenants, "bakery", Say(), say)
    await brain.reply("I want to place an order")
    reply = await brain.reply("Actually, thank you, bye")  # a draft with no question
    assert reply.end_call and reply.reason == "goodbye"
    assert reply.text == brain.draft.text  # type: ignore[union-attr]
    assert brain.fallbacks == [(2, reason)]


async def test_no_first_token_in_time_uses_the_draft(tenants: dict[str, Tenant]) -> None:
    # the event loop's own clock against a model that never answers: only the timeout can end
    # this turn, however fast or slow the machine is
    silent = Say(hold_at=0)
    brain, client = llm(
        tenants,
        "bakery",
        silent,
        clock=LoopClock(),
        first_token_timeout_s=0.1,
        total_timeout_s=10 * HANG_GUARD_S,  # so that only the first-token deadline can fire
    )
    async with asyncio.timeout(HANG_GUARD_S):
        reply = await brain.reply(BAKERY_ORDER[0])
    assert reply.text == brain.draft.text  # type: ignore[union-attr]
    assert brain.fallbacks == [(1, "no first token within 0.1 s")]
    assert client.closed_streams == 1  # the request was abandoned, not left running


async def test_a_reply_over_the_total_time_keeps_what_was_said_and_ends_from_the_draft(
    tenants: dict[str, Tenant],
) -> None:
    words = ["1 kg Black Forest cake, 750 rupees. ", "Would you like ", "pickup ", "or "]
    # the model writes its first sentence and the start of the next, then stalls
    stalls = Say([*words, "delivery? ", "May I ", "have your ", "name?"], hold_at=2)
    clock = ManualClock()
    brain, client = llm(tenants, "bakery", stalls, clock=clock, total_timeout_s=0.35)
    stream = brain.stream(BAKERY_ORDER[0])
    async with asyncio.timeout(HANG_GUARD_S):
        first = await anext(stream)
        assert first == "1 kg Black Forest cake, 750 rupees."  # released before the timeout
        assert brain.fallbacks == []
        clock.advance(0.35)  # the reply has now taken its whole time
        rest = [piece async for piece in stream]
    assert rest == ["Would you like pickup or delivery?", "May I have your name, please?"]
    assert brain.fallbacks == [(1, "reply took over 0.35 s")]
    assert brain.turns[0].source == "model+draft"
    assert client.closed_streams == 1 and client.finished_streams == 0  # the model was stopped


async def test_cut_off_at_max_tokens_drops_the_broken_sentence(
    tenants: dict[str, Tenant],
) -> None:
    cut = Say(["1 kg Black Forest cake, 750 rupees. ", "Would you like pick"], finish="length")
    brain, _ = llm(tenants, "bakery", cut)
    pieces = await pieces_of(brain, BAKERY_ORDER[0])
    assert pieces == [
        "1 kg Black Forest cake, 750 rupees.",
        "Would you like pickup or delivery?",  # the draft's question, not "Would you like pick"
        "May I have your name, please?",
    ]
    assert brain.fallbacks == [(1, "cut off at max_tokens (120)")]


async def test_labels_and_markup_are_removed(tenants: dict[str, Tenant]) -> None:
    say = Say(['Receptionist: "**Hello** and welcome!', ' How can I help you?"'])
    brain, _ = llm(tenants, "bakery", say)
    reply = await brain.reply("Hello, good morning")
    assert reply.text == "Hello and welcome! How can I help you?"
    assert brain.fallbacks == []


async def test_repeat_says_the_spoken_words_again_without_the_model(
    tenants: dict[str, Tenant],
) -> None:
    brain, client = llm(tenants, "bakery")
    first = await brain.reply("Hello, is this Sharma Medical Store?")
    again = await brain.reply("Sorry, can you repeat that?")
    assert again.text == first.text and again.reason == "repeat"
    assert len(client.requests) == 1 and brain.turns[1].source == "repeat"


async def test_usage_is_estimated_when_the_server_sends_none(tenants: dict[str, Tenant]) -> None:
    brain, _ = llm(tenants, "bakery", Say(["Hello! ", "How can ", "I help?"], usage=None))
    await brain.reply("Hello, good morning")
    turn = brain.turns[0]
    assert turn.usage_estimated and turn.completion_tokens == 3 and turn.prompt_tokens > 100
    assert brain.usage_prompt_tokens == turn.prompt_tokens


async def test_closing_the_stream_early_stops_the_model(tenants: dict[str, Tenant]) -> None:
    """Barge-in: the engine stops reading after the first piece."""
    words = ["1 kg Black Forest cake, 750 rupees. ", "Would you like pickup or delivery? "]
    # the model is still writing (held before its third piece) when the caller barges in
    brain, client = llm(tenants, "bakery", Say(words + ["More."] * 10, hold_at=2))
    stream = brain.stream(BAKERY_ORDER[0])
    async with asyncio.timeout(HANG_GUARD_S):
        first = await anext(stream)
        assert client.holding == 1
        await stream.aclose()  # type: ignore[attr-defined]
    assert first == "1 kg Black Forest cake, 750 rupees."
    # closing the brain's stream closed the model's: nothing left running to release
    assert client.closed_streams == 1 and client.holding == 0 and client.finished_streams == 0
    assert brain.last_reply is not None and brain.last_reply.text == first
    assert brain.state.history[-1] == ("agent", first)
    assert brain.turns[0].source == "interrupted" and brain.fallbacks == []
    assert brain.turns[0].completion_tokens >= 1 and brain.turns[0].usage_estimated


async def test_first_piece_is_released_before_the_model_finishes(
    tenants: dict[str, Tenant],
) -> None:
    # the model writes "Sure. Hello there." and then waits until the test has the first piece:
    # a brain that waited for the whole reply would never give it (and trips the hang guard)
    say = Say(["Sure. ", "Hello there. ", "How can I ", "help you ", "today?"], hold_at=2)
    clock = ManualClock()
    brain, client = llm(tenants, "bakery", say, clock=clock)
    stream = brain.stream("Hello")
    async with asyncio.timeout(HANG_GUARD_S):
        first = await anext(stream)
        assert first == "Sure." and client.holding == 1 and client.finished_streams == 0
        clock.advance(1.5)  # the model takes its time over the rest
        client.release()
        rest = [piece async for piece in stream]
    assert rest == ["Hello there.", "How can I help you today?"]
    assert client.finished_streams == 1 and brain.turns[0].source == "model"
    # the turn's figures: the first piece was ready at once, the whole reply 1.5 s later
    assert (brain.turns[0].first_piece_s, brain.turns[0].total_s) == (0.0, 1.5)


def test_factory_and_clients(tenants: dict[str, Tenant]) -> None:
    client = Scripted()
    make = llm_brain_factory(client, max_tokens=60)
    brain = make(tenants["saloon"], CALLER)
    assert isinstance(brain, LlmBrain) and brain.max_tokens == 60 and brain.client is client
    assert isinstance(client, ChatClient)
    assert chat_completions_url("http://h:11434") == "http://h:11434/v1/chat/completions"
    assert chat_completions_url("http://h:8000/v1/") == "http://h:8000/v1/chat/completions"
    full = "https://api.openai.com/v1/chat/completions"
    assert chat_completions_url(full) == full
    assert isinstance(make_chat_client(base_url="http://h", model="m"), OpenAIChatClient)
    assert isinstance(make_chat_client(gguf_path="/x.gguf"), EmbeddedLlamaClient)
    with pytest.raises(ValueError, match="model"):
        make_chat_client(base_url="http://h")
    with pytest.raises(ValueError, match="GGUF"):
        make_chat_client()
    with pytest.raises(ValueError, match="http"):
        OpenAIChatClient("localhost:11434", "m")
    assert "sk-secret" not in repr(OpenAIChatClient("http://h", "m", "sk-secret"))


def _mock_client(body: bytes, content_type: str, status: int = 200) -> OpenAIChatClient:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/v1/chat/completions"
        assert request.headers["authorization"] == "Bearer k"
        return httpx.Response(status, content=body, headers={"content-type": content_type})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    return OpenAIChatClient("http://llm.test", "m", "k", http=http)


async def test_event_stream_quirks_are_read() -> None:
    def chunk(content: str | None, **extra: object) -> bytes:
        data = {"choices": [{"index": 0, "delta": {"content": content}}], **extra}
        return orjson.dumps(data)

    body = (
        b": keep-alive\r\n\r\n"
        + b"data:" + chunk("Hel") + b"\r\n\r\n"  # no space after the colon, CRLF
        + b"event: message\nid: 7\ndata: " + chunk("lo") + b"\n\n"
        + b"data: " + chunk(None) + b"\n\n"
        + b'data: {"choices": null, "usage": {"prompt_tokens": 9, "completion_tokens": 2}}\n\n'
        + b"data: [DONE]\n\n"
    )  # fmt: skip
    client = _mock_client(body, "text/event-stream")
    stats = ChatStats()
    deltas = [d async for d in client.stream(HELLO, max_tokens=5, temperature=0, stats=stats)]
    assert deltas == ["Hel", "lo"] and (stats.prompt_tokens, stats.completion_tokens) == (9, 2)
    # a server that ignores "stream": the whole answer at once
    whole = {"choices": [{"message": {"content": "Hi!"}, "finish_reason": "stop"}]}
    client = _mock_client(orjson.dumps(whole), "application/json")
    assert [d async for d in client.stream(HELLO, max_tokens=5, temperature=0)] == ["Hi!"]


@pytest.mark.parametrize(
    ("body", "content_type", "status", "match"),
    [
        (b"<html>proxy login</html>", "text/html", 200, "unexpected content type 'text/html'"),
        (b'data: {"error": {"message": "out of memory"}}\n\n', "text/event-stream", 200,
         "error in stream: out of memory"),
        (b'data: {"choices": "nope"}\n\n', "text/event-stream", 200, "bad chunk"),
        (b'data: {"choices": [{"delta": {"content": "a"}}]}\n\n', "text/event-stream", 200,
         r"stream ended before \[DONE\]"),
        (b'{"error": "model \'x\' not found"}', "application/json", 404,
         "HTTP 404: model 'x' not found"),
        (b"Bad Gateway", "text/plain", 502, "HTTP 502: Bad Gateway"),
    ],
)  # fmt: skip
async def test_event_stream_errors(body: bytes, content_type: str, status: int, match: str) -> None:
    client = _mock_client(body, content_type, status)
    with pytest.raises(ChatError, match=match):
        async for _ in client.stream(HELLO, max_tokens=5, temperature=0):
            pass


async def test_embedded_client_names_a_missing_file(tmp_path: Path) -> None:
    client = EmbeddedLlamaClient(tmp_path / "nope.gguf")
    with pytest.raises(ChatError, match="GGUF model file not found"):
        await anext(client.stream([ChatMessage("user", "hi")], max_tokens=5, temperature=0))
    assert client.model == "nope"
