"""The one Gemini REST (``generateContent``) client: post-call analysis and the message writer.

It knows the SDK and the wire, nothing of calls or messages, so ``postcall`` and ``notify`` can
both use it without importing each other.

Errors, for the callers' retry decisions:

- :class:`AnalyzerUnavailable` (``retryable`` True): 5xx, 408, 429, connection errors,
  timeouts, unparseable HTTP responses.
- :class:`AnalyzerRejected` (``retryable`` False): other 4xx, e.g. a wrong API key (HTTP 400
  ``INVALID_ARGUMENT`` "API key not valid"), a missing key (403), an unknown model (404).

SDK facts (google-genai 3.6.1): without ``HttpOptions.retry_options`` the SDK does not retry
HTTP errors (tenacity stops after one attempt), but with aiohttp installed it silently retries
connection errors once after sleeping 1-10 s; :func:`make_client` therefore sets
``HttpRetryOptions(attempts=1)`` so the pipeline owns all retries. The SDK's async transport is
aiohttp when importable, else its httpx2 (or httpx) client; both work over plain ``http://``.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from receptionist.usage import TokenUsage

__all__ = [
    "AnalyzerError",
    "AnalyzerRejected",
    "AnalyzerUnavailable",
    "generate_json",
    "make_client",
]


class AnalyzerError(Exception):
    """The model request failed; ``retryable`` says whether trying again later may help."""

    retryable = False


class AnalyzerUnavailable(AnalyzerError):
    """The model could not be reached or was overloaded (5xx, 429, network, timeout)."""

    retryable = True


class AnalyzerRejected(AnalyzerError):
    """The API refused the request (bad key, unknown model, bad request): do not retry."""

    retryable = False


def make_client(
    api_key: str,
    *,
    base_url: str | None = None,
    timeout_s: float | None = None,
    async_client_args: dict[str, Any] | None = None,
) -> genai.Client:
    """A ``genai.Client`` for ``generateContent``: SDK retries off (the pipeline retries),
    optional ``base_url`` (e.g. the REST double's ``http://127.0.0.1:PORT``)."""
    opts = types.HttpOptions(
        base_url=base_url,
        timeout=None if timeout_s is None else math.ceil(timeout_s * 1000),
        retry_options=types.HttpRetryOptions(attempts=1),
        async_client_args=async_client_args,
    )
    return genai.Client(api_key=api_key, http_options=opts)


def _transport_errors() -> tuple[type[BaseException], ...]:
    out: list[type[BaseException]] = [TimeoutError, ConnectionError, OSError]
    for mod_name, cls_name in (
        ("httpx", "HTTPError"),
        ("httpx2", "HTTPError"),
        ("aiohttp", "ClientError"),
    ):
        try:
            mod = __import__(mod_name)
        except ImportError:
            continue
        cls = getattr(mod, cls_name, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            out.append(cls)
    return tuple(out)


_TRANSPORT_ERRORS = _transport_errors()
_RETRYABLE_4XX = frozenset({408, 429})


async def generate_json(
    client: genai.Client,
    model: str,
    *,
    system: str,
    contents: list[types.Content],
    schema: dict[str, Any],
    temperature: float,
    timeout_s: float | None,
    purpose: str,
) -> tuple[str | None, TokenUsage]:
    """One ``generateContent`` request for a JSON answer: (its text, the tokens it cost).

    ``schema`` goes out as ``responseSchema`` (Gemini's OpenAPI subset). Failures are sorted
    for the pipeline: AnalyzerUnavailable (try later) or AnalyzerRejected (trying again cannot
    help)."""
    config = types.GenerateContentConfig(
        system_instruction=system,
        response_mime_type="application/json",
        response_schema=schema,
        temperature=temperature,
    )
    try:
        async with asyncio.timeout(timeout_s):
            response = await client.aio.models.generate_content(
                model=model, contents=list(contents), config=config
            )
    except genai_errors.ClientError as exc:
        if exc.code in _RETRYABLE_4XX:
            raise AnalyzerUnavailable(f"Gemini {exc.code} {exc.status}: {exc.message}") from exc
        raise AnalyzerRejected(f"Gemini {exc.code} {exc.status}: {exc.message}") from exc
    except genai_errors.APIError as exc:
        raise AnalyzerUnavailable(f"Gemini {exc.code} {exc.status}: {exc.message}") from exc
    except genai_errors.UnknownApiResponseError as exc:
        raise AnalyzerUnavailable(f"Gemini sent an unreadable response: {exc}") from exc
    except _TRANSPORT_ERRORS as exc:
        kind = "timed out" if isinstance(exc, TimeoutError) else "unreachable"
        raise AnalyzerUnavailable(f"Gemini {kind}: {type(exc).__name__}: {exc}") from exc
    return _answer_text(response), _usage(response, model, purpose)


def _usage(response: types.GenerateContentResponse, model: str, purpose: str) -> TokenUsage:
    meta = response.usage_metadata
    if meta is None:
        return TokenUsage(model_name=model, purpose=purpose)
    prompt = meta.prompt_token_count or 0
    candidates = meta.candidates_token_count or 0
    thoughts = meta.thoughts_token_count or 0
    text_in = sum(
        d.token_count or 0
        for d in meta.prompt_tokens_details or []
        if d.modality == types.MediaModality.TEXT
    )
    details: dict[str, Any] = {}
    if thoughts:
        details["thoughts_tokens"] = thoughts
    if meta.cached_content_token_count:
        details["cached_tokens"] = meta.cached_content_token_count
    if response.model_version:
        details["model_version"] = response.model_version
    return TokenUsage(
        model_name=model,
        purpose=purpose,
        input_tokens=prompt,
        output_tokens=candidates + thoughts,  # thinking tokens are billed as output
        input_text_tokens=text_in or prompt,
        output_text_tokens=candidates + thoughts,
        total_tokens=meta.total_token_count,
        details=details or None,
    )


def _answer_text(response: types.GenerateContentResponse) -> str | None:
    """The text of the first candidate (thought parts skipped), or None if there is none."""
    if not response.candidates:
        return None
    content = response.candidates[0].content
    if content is None or not content.parts:
        return None
    texts = [p.text for p in content.parts if p.text and not p.thought]
    return "".join(texts) if texts else None
