"""An OpenAI-compatible chat completions double (plain HTTP on 127.0.0.1).

:class:`FakeOpenAIChat` answers ``POST /v1/chat/completions`` the way OpenAI, Ollama, vLLM and the
llama.cpp server do, so :class:`receptionist.engines.local.chat.OpenAIChatClient` (or any other
client, the ``openai`` SDK included) talks to it over a real socket::

    async with FakeOpenAIChat(api_key="sk-test") as fake:
        client = OpenAIChatClient(fake.base_url, "fake-model", "sk-test")

What the double does:

* ``POST /v1/chat/completions`` with ``"stream": true``: server-sent events, one
  ``chat.completion.chunk`` per token (``id``, ``object``, ``created``, ``model``,
  ``system_fingerprint``, ``choices[{index, delta, logprobs, finish_reason}]``): first the role
  (``delta: {"role": "assistant", "content": ""}``), then one chunk per token, then an empty
  delta with ``finish_reason`` ("stop", or "length" when ``max_tokens`` cut it), then -- when the
  request asked ``stream_options: {"include_usage": true}`` -- a chunk with ``choices: []`` and
  the ``usage``, every earlier chunk then carrying ``"usage": null``; last ``data: [DONE]``.
  Without ``stream``: one ``chat.completion`` object.
* ``GET /v1/models``: the model list (``{"object": "list", "data": [...]}``).
* Auth, when the double has an ``api_key``: ``Authorization: Bearer <key>``; a missing or wrong
  key is HTTP 401 with OpenAI's error body ``{"error": {"message", "type":
  "invalid_request_error", "param": null, "code": "invalid_api_key" | null}}``. A body that is not
  a JSON object with ``model`` and a ``messages`` list is HTTP 400 in the same shape.
* Answers come from the queue filled by :meth:`FakeOpenAIChat.script`: a ``str`` (the reply
  text) or a :class:`Fault` (an HTTP error, a delay before the first byte, slow tokens, a
  garbled chunk, a stream cut off before ``[DONE]``, a stream that stops at a token until the
  test calls :meth:`FakeOpenAIChat.release`). With nothing scripted the double **echoes
  the draft**: the last line of the last user message that starts with ``DRAFT:`` (the ``llm``
  brain's prompt ends with one), prefixed with :data:`ECHO_PREFIX` ("Sure. "), so a reply
  that passes the brain's guard is easy to recognise in tests. With no such line it answers
  :data:`DEFAULT_ANSWER`.
* Tokens are the answer's words with their leading space (``"Sure."``, ``" 1"``, ``" kg"`` ...);
  :attr:`FakeOpenAIChat.token_delay_s` (or a fault's ``token_delay_s``) waits between them.
  Usage: ``prompt_tokens`` = ceil(characters of all messages / 4), ``completion_tokens`` = the
  tokens sent.
* Every request is recorded as a :class:`ChatRequest` (headers' key, body, messages).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from receptionist.sim.double import HttpDouble

__all__ = [
    "DEFAULT_ANSWER",
    "ECHO_PREFIX",
    "ChatRequest",
    "FakeOpenAIChat",
    "Fault",
    "echo_answer",
]

ECHO_PREFIX = "Sure. "
DEFAULT_ANSWER = "Hello! This is the fake chat model."
_DRAFT_LINE = re.compile(r"^DRAFT:[ \t]*(.*\S)[ \t]*$", re.M)  # the llm brain's DRAFT_LABEL
_TOKEN = re.compile(r"\s*\S+")
_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}
_ERROR_MESSAGES = {
    429: "Rate limit reached for requests. Please try again in 1s.",
    500: "The server had an error while processing your request. Sorry about that!",
    503: "The engine is currently overloaded, please try again later.",
}
MISSING_KEY_MESSAGE = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)


@dataclass(frozen=True)
class Fault:
    """A scripted failure or slow answer.

    ``status`` set: an HTTP error with an OpenAI-shaped body after ``delay_s``. Otherwise the
    answer (``text``, or the echo) is streamed after ``delay_s`` with ``token_delay_s`` between
    tokens (None: the double's own); ``garble`` sends a chunk that is not JSON after the first
    token; ``cut_after`` closes the stream after that many tokens, with no finish and no
    ``[DONE]``; ``hold_at`` stops before token number ``hold_at`` (0: before the first, after
    the role chunk) until :meth:`FakeOpenAIChat.release` is called, or for good: a model exactly
    as slow as the test wants, whatever the machine's speed.
    """

    status: int | None = None
    delay_s: float = 0.0
    message: str | None = None
    text: str | None = None
    token_delay_s: float | None = None
    garble: bool = False
    cut_after: int | None = None
    hold_at: int | None = None


@dataclass
class ChatRequest:
    """One chat completions request as the double received it."""

    api_key: str | None
    body: dict[str, Any]

    @property
    def messages(self) -> list[tuple[str, str]]:
        """(role, content) of every message; list contents' text parts are joined."""
        out = []
        for m in self.body.get("messages") or []:
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
            out.append((str(m.get("role") or ""), str(content or "")))
        return out

    @property
    def system(self) -> str:
        return "\n".join(c for r, c in self.messages if r in ("system", "developer"))

    @property
    def last_user(self) -> str:
        return next((c for r, c in reversed(self.messages) if r == "user"), "")

    @property
    def model(self) -> str:
        return str(self.body.get("model") or "")

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_completion_tokens") or self.body.get("max_tokens")
        return int(value) if isinstance(value, int) else None

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and bool(options.get("include_usage"))

    @property
    def prompt_chars(self) -> int:
        return sum(len(c) for _, c in self.messages)


def echo_answer(request: ChatRequest) -> str:
    """The default answer: the request's ``DRAFT:`` line, prefixed with :data:`ECHO_PREFIX`."""
    found = _DRAFT_LINE.findall(request.last_user)
    if not found:
        return DEFAULT_ANSWER
    return ECHO_PREFIX + found[-1].strip().strip('"')


def _chat_body(raw: bytes) -> dict[str, Any] | Response:
    """The request's JSON body, or the error the real API answers a malformed one with."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _error(400, "We could not parse the JSON body of your request.")
    if not isinstance(body, dict):
        return _error(400, "The request body must be a JSON object.")
    if not body.get("model"):
        return _error(400, "you must provide a model parameter")
    messages = body.get("messages")
    if (
        not isinstance(messages, list)
        or not messages
        or not all(isinstance(m, dict) and "role" in m for m in messages)
    ):
        return _error(400, "'messages' must be a non-empty array of message objects.")
    return body


def _completion(
    ident: str, created: int, model: str, content: str, finish: str, usage: dict[str, int]
) -> dict[str, Any]:
    """A whole (not streamed) chat completion, shaped as the real API's."""
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish,
            }
        ],
        "usage": usage,
    }


def _error(status: int, message: str, *, code: str | bool | None = False) -> Response:
    kind, default_code = _ERROR_TYPES.get(status, ("server_error", None))
    body = {
        "error": {
            "message": message,
            "type": kind,
            "param": None,
            "code": default_code if code is False else code,
        }
    }
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _sse(data: dict[str, Any]) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


class FakeOpenAIChat(HttpDouble):
    """Starlette app answering chat completions like an OpenAI-compatible server (module doc)."""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model: str | None = None,
        token_delay_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.api_key = api_key
        self.model = model  # None: answer with the model the request names
        self.token_delay_s = token_delay_s
        self.answers: list[str | Fault] = []
        self.requests: list[ChatRequest] = []
        self.finished = 0  # streams sent to the end ([DONE] or a cut)
        self.holding = 0  # streams stopped at a Fault's hold_at right now
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/v1/models", self._models, methods=["GET"]),
            ]
        )
        self._ids = itertools.count(1)
        self._released = asyncio.Event()

    # ------------------------------------------------------------------ lifecycle

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        self._released = asyncio.Event()

    async def _closing_down(self) -> None:
        self._released.set()  # let held streams go

    # ------------------------------------------------------------------ scripting

    def script(self, *answers: str | Fault) -> None:
        """Append answers (reply texts or faults) to the queue; each request takes one."""
        self.answers.extend(answers)

    def release(self) -> None:
        """Let every stream held at a ``hold_at`` go on (and any later one pass its hold)."""
        self._released.set()

    async def _hold(self) -> None:
        self.holding += 1
        try:
            await self._released.wait()
        finally:
            self.holding -= 1

    async def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), seconds)

    # ------------------------------------------------------------------ HTTP

    def _check_key(self, request: Request) -> tuple[str | None, Response | None]:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        key = given.strip() if scheme.lower() == "bearer" and given.strip() else None
        if self.api_key is None:
            return key, None
        if key is None:
            return None, _error(401, MISSING_KEY_MESSAGE, code=None)
        if key != self.api_key:
            shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "****"
            message = (
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys."
            )
            return key, _error(401, message)
        return key, None

    async def _models(self, request: Request) -> Response:
        _, denied = self._check_key(request)
        if denied is not None:
            return denied
        model = self.model or "fake-model"
        data = {
            "object": "list",
            "data": [{"id": model, "object": "model", "created": 0, "owned_by": "fake"}],
        }
        return Response(orjson.dumps(data), media_type="application/json")

    async def _completions(self, request: Request) -> Response:
        key, denied = self._check_key(request)
        if denied is not None:
            return denied
        body = _chat_body(await request.body())
        if isinstance(body, Response):
            return body
        rec = ChatRequest(key, body)
        self.requests.append(rec)

        answer: str | Fault | None = self.answers.pop(0) if self.answers else None
        fault = answer if isinstance(answer, Fault) else Fault()
        text = answer if isinstance(answer, str) else (fault.text or echo_answer(rec))
        await self._sleep(fault.delay_s)
        if fault.status is not None:
            message = fault.message or _ERROR_MESSAGES.get(fault.status, "Error.")
            return _error(fault.status, message)
        tokens = _TOKEN.findall(text)
        limit = rec.max_tokens
        finish = "stop"
        if limit is not None and len(tokens) > limit:
            tokens, finish = tokens[:limit], "length"
        created = int(time.time())
        ident = f"chatcmpl-fake{next(self._ids)}"
        model = self.model or rec.model
        usage = {
            "prompt_tokens": math.ceil(rec.prompt_chars / 4),
            "completion_tokens": len(tokens),
            "total_tokens": math.ceil(rec.prompt_chars / 4) + len(tokens),
        }
        if not rec.stream:
            whole = _completion(ident, created, model, "".join(tokens), finish, usage)
            return Response(orjson.dumps(whole), media_type="application/json")
        delay = self.token_delay_s if fault.token_delay_s is None else fault.token_delay_s
        return StreamingResponse(
            self._events(rec, fault, tokens, finish, ident, created, model, usage, delay),
            media_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-cache"},
        )

    async def _events(
        self,
        rec: ChatRequest,
        fault: Fault,
        tokens: list[str],
        finish: str,
        ident: str,
        created: int,
        model: str,
        usage: dict[str, int],
        delay: float,
    ) -> AsyncIterator[bytes]:
        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            data: dict[str, Any] = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {
                        "index": 0,
                        "delta": delta,
                        "logprobs": None,
                        "finish_reason": finish_reason,
                    }
                ],
            }
            if rec.include_usage:
                data["usage"] = None
            return data

        yield _sse(chunk({"role": "assistant", "content": "", "refusal": None}))
        for i, token in enumerate(tokens):
            if fault.cut_after is not None and i >= fault.cut_after:
                self.finished += 1
                return
            if i == fault.hold_at:
                await self._hold()
            if i:
                await self._sleep(delay)
            yield _sse(chunk({"content": token}))
            if fault.garble and i == 0:
                yield b'data: {"id": "' + ident.encode() + b'", "choices": [{"delta": {"con\n\n'
        yield _sse(chunk({}, finish))
        if rec.include_usage:
            final = chunk({})
            final["choices"] = []
            final["usage"] = usage
            yield _sse(final)
        yield b"data: [DONE]\n\n"
        self.finished += 1
