"""A Gemini REST ``generateContent`` double (plain HTTP on 127.0.0.1).

The *unmodified* ``google-genai`` SDK talks to :class:`FakeGeminiRest` over plain ``http://``
(verified with google-genai 3.6.1; it sends ``POST {base}/{api_version}/models/{model}:
generateContent`` through its httpx/httpx2 client, or aiohttp when that is installed)::

    client = genai.Client(
        api_key="test-key",
        http_options=types.HttpOptions(
            base_url=fake.base_url,                                   # "http://127.0.0.1:PORT"
            retry_options=types.HttpRetryOptions(attempts=1),         # we own retries
        ),
    )

What the double does (see /work/shared/PROTOCOLS.md, "generateContent"):

* Path: ``/{version}/models/{model}:generateContent`` for any version (extra leading slashes
  tolerated); anything else is 404 with a Google-shaped error body.
* Auth: ``x-goog-api-key`` header or ``key`` query parameter. Like the real service, a *wrong*
  key is HTTP 400 ``INVALID_ARGUMENT`` "API key not valid. Please pass a valid API key." (reason
  ``API_KEY_INVALID``), a *missing* key is HTTP 403 ``PERMISSION_DENIED``. The SDK raises
  ``google.genai.errors.ClientError`` (``code`` 400 / 403) for both.
* Every request is recorded as a :class:`RestRequest` (model, version, the raw body and its
  parts; camelCase and snake_case keys are both accepted).
* Answers come from the scripted queue :attr:`FakeGeminiRest.answers` (``str`` -- the text put
  in ``candidates[0].content.parts[0].text`` -- or :class:`Fault`). When the queue is empty the
  answer is built from the request's ``responseSchema`` (required properties only: first enum
  value, "" / 0 / false / [] / {}), so an analysis request gets the first call type and empty
  details.
* Usage is deterministic: ``promptTokenCount`` = ceil(chars of system instruction + all
  contents' texts / 4), ``candidatesTokenCount`` = ceil(chars of the answer / 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from receptionist.sim.double import HttpDouble

__all__ = [
    "INVALID_KEY_MESSAGE",
    "FakeGeminiRest",
    "Fault",
    "RestRequest",
    "default_answer",
]

INVALID_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_STATUS_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report the problem.",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline exceeded.",
}
_PATH_RE = re.compile(r"^/*(?P<version>[^/]+)/models/(?P<model>[^/:]+):generateContent$")


@dataclass(frozen=True)
class Fault:
    """A scripted failure or slow answer.

    ``status`` None means "answer normally" (with ``text``, or the schema default) after
    ``delay_s``; otherwise an HTTP error with a Google-shaped body is sent after ``delay_s``.
    """

    status: int | None = 500
    delay_s: float = 0.0
    message: str | None = None
    text: str | None = None


@dataclass
class RestRequest:
    """One ``generateContent`` request as the double received it."""

    version: str
    model: str
    api_key: str | None
    body: dict[str, Any]

    def _get(self, container: dict[str, Any] | None, camel: str) -> Any:
        if not isinstance(container, dict):
            return None
        if camel in container:
            return container[camel]
        snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), camel)
        return container.get(snake)

    @property
    def contents(self) -> list[dict[str, Any]]:
        return list(self._get(self.body, "contents") or [])

    @property
    def system_instruction(self) -> dict[str, Any] | None:
        return self._get(self.body, "systemInstruction")

    @property
    def system_text(self) -> str:
        return _parts_text(self.system_instruction)

    @property
    def generation_config(self) -> dict[str, Any]:
        return dict(self._get(self.body, "generationConfig") or {})

    @property
    def response_mime_type(self) -> str | None:
        return self._get(self.generation_config, "responseMimeType")

    @property
    def response_schema(self) -> dict[str, Any] | None:
        return self._get(self.generation_config, "responseSchema")

    @property
    def temperature(self) -> float | None:
        return self._get(self.generation_config, "temperature")

    @property
    def texts(self) -> list[tuple[str, str]]:
        """(role, text) of every content, in order."""
        return [(str(c.get("role") or "user"), _parts_text(c)) for c in self.contents]

    @property
    def prompt_chars(self) -> int:
        return len(self.system_text) + sum(len(t) for _, t in self.texts)


def _parts_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts") or []
    return "".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))


def _schema_get(schema: dict[str, Any], key: str) -> Any:
    if key in schema:
        return schema[key]
    snake = re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)
    return schema.get(snake)


def _default_value(schema: dict[str, Any] | None) -> Any:
    if not isinstance(schema, dict):
        return None
    enum = schema.get("enum")
    if enum:
        return enum[0]
    kind = str(schema.get("type") or "").upper()
    if kind == "OBJECT":
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        return {k: _default_value(props.get(k)) for k in required if k in props}
    if kind == "ARRAY":
        return []
    if kind in ("INTEGER", "NUMBER"):
        return 0
    if kind == "BOOLEAN":
        return False
    if kind == "STRING":
        return ""
    return None


def default_answer(response_schema: dict[str, Any] | None) -> str:
    """The JSON text the double answers with when nothing is scripted."""
    if not response_schema:
        return "OK"
    value = _default_value(response_schema)
    if isinstance(value, dict) and "summary" in value and not value["summary"]:
        value["summary"] = "Default answer of the Gemini REST double."
    return orjson.dumps(value).decode()


def _tokens(chars: int) -> int:
    return math.ceil(chars / 4)


# what the real service details an invalid key with
_INVALID_KEY_INFO = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "API_KEY_INVALID",
    "domain": "googleapis.com",
    "metadata": {"service": "generativelanguage.googleapis.com"},
}


def _error(status: int, message: str, *, details: list[dict[str, Any]] | None = None) -> Response:
    err: dict[str, Any] = {
        "code": status,
        "message": message,
        "status": _STATUS_NAMES.get(status, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return Response(orjson.dumps({"error": err}), status_code=status, media_type="application/json")


class FakeGeminiRest(HttpDouble):
    """Starlette app answering ``generateContent`` like the Gemini API (see module doc)."""

    def __init__(self, api_key: str = "test-key", *, model_version: str | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.model_version = model_version
        self.answers: list[str | Fault] = []
        self.requests: list[RestRequest] = []
        self.app = Starlette(
            routes=[Route("/{path:path}", self._handle, methods=["GET", "POST", "PUT"])]
        )

    # ------------------------------------------------------------------ lifecycle

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeGeminiRest]:
        async with self:
            yield self

    # ------------------------------------------------------------------ scripting

    def script(self, *answers: str | Fault) -> None:
        """Append answers to the queue."""
        self.answers.extend(answers)

    # ------------------------------------------------------------------ HTTP

    async def _handle(self, request: Request) -> Response:
        m = _PATH_RE.match(request.url.path)
        if m is None or request.method != "POST":
            return _error(404, f"Method not found: {request.method} {request.url.path}")
        key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
        if not key:
            return _error(403, MISSING_KEY_MESSAGE)
        if key != self.api_key:
            return _error(400, INVALID_KEY_MESSAGE, details=[_INVALID_KEY_INFO])
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return _error(400, "Invalid JSON payload received.")
        if not isinstance(body, dict):
            return _error(400, "Invalid JSON payload received. Expected an object.")
        rec = RestRequest(m["version"], m["model"], key, body)
        self.requests.append(rec)

        answer: str | Fault | None = self.answers.pop(0) if self.answers else None
        text: str | None
        if isinstance(answer, Fault):
            if answer.delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.closing.wait(), answer.delay_s)
            if answer.status is not None:
                msg = answer.message or _STATUS_MESSAGES.get(answer.status, "Error.")
                return _error(answer.status, msg)
            text = answer.text
        else:
            text = answer
        if text is None:
            text = default_answer(rec.response_schema)
        reply = self._reply(rec, text)
        return Response(orjson.dumps(reply), media_type="application/json")

    def _reply(self, rec: RestRequest, text: str) -> dict[str, Any]:
        """generateContent's answer: `text` as the one candidate, tokens counted as chars / 4."""
        prompt_tokens = _tokens(rec.prompt_chars)
        out_tokens = _tokens(len(text))
        return {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": prompt_tokens,
                "candidatesTokenCount": out_tokens,
                "totalTokenCount": prompt_tokens + out_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
            },
            "modelVersion": self.model_version or rec.model,
            "responseId": f"fake-{len(self.requests)}",
        }
