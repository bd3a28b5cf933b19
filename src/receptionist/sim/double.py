"""The lifecycle every double shares: ``start()`` / ``stop()``, or ``async with double:``.

:class:`HttpDouble` is the one of the HTTP doubles (Exotel REST, Gemini ``generateContent``,
MSG91, OpenAI chat): their Starlette ``app`` served in process on 127.0.0.1 by uvicorn, on a
free port, over real sockets, so the real clients talk to them unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, ClassVar, Self

from receptionist.bridge.server import serve_in_process


class Double:
    """``async with`` over a subclass's ``start`` (returning the double) and ``stop``."""

    async def start(self) -> Self:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class HttpDouble(Double):
    """An ASGI ``app`` served in process; ``port``/``base_url`` while it runs.

    ``closing`` is set when the double stops: handlers that wait (scripted delays, held
    answers) wait on it too, so a stop never waits out a delay. Subclasses add resources that
    live as long as the server in :meth:`_open` and wake their own waiters in
    :meth:`_closing_down`."""

    #: uvicorn.Config options for this double's server
    serve_options: ClassVar[dict[str, Any]] = {}

    app: Any

    def __init__(self) -> None:
        self.port: int | None = None
        self.closing = asyncio.Event()
        self._stack: contextlib.AsyncExitStack | None = None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Self:
        if self._stack is not None:
            return self
        self.closing = asyncio.Event()
        stack = contextlib.AsyncExitStack()
        await self._open(stack)
        self.port = await stack.enter_async_context(
            serve_in_process(self.app, **self.serve_options)
        )
        self._stack = stack
        return self

    async def stop(self) -> None:
        self.closing.set()  # wake waiting handlers so the server can stop at once
        await self._closing_down()
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()
        self.port = None

    async def _open(self, stack: contextlib.AsyncExitStack) -> None:
        """Enter what must live as long as the server (before it starts)."""

    async def _closing_down(self) -> None:
        """Let go of what the double holds (held answers, its own tasks) before the server
        stops."""
