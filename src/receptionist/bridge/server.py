"""Running the ASGI app under uvicorn: in-process (demo, tests, bench) or as worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from receptionist.config import Settings

# Hard cap on a WebSocket message; frames above MAX_FRAME_BYTES are dropped by the session itself
# (counted, the call goes on), so this only guards memory against absurd frames.
WS_HARD_MAX_BYTES = 16 * 1024 * 1024


class _ClientFaultWithoutTraceback(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 text frame with a traceback (`logger.exception`),
    which reads like a server bug; it is the caller's fault, answered with close 1007 and
    recorded on the call. Keep the line, as a warning, without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith("Invalid UTF-8 sequence"):
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


_CLIENT_FAULTS = _ClientFaultWithoutTraceback()


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    uvicorn_log = logging.getLogger("uvicorn.error")
    if _CLIENT_FAULTS not in uvicorn_log.filters:
        uvicorn_log.addFilter(_CLIENT_FAULTS)
    return {
        "ws": "websockets-sansio",
        "http": "httptools",
        "loop": "uvloop",
        "ws_max_size": WS_HARD_MAX_BYTES,
        "ws_per_message_deflate": False,  # Exotel does not compress; deflate would cost CPU
        "ws_ping_interval": settings.keepalive_interval_s or None,
        "ws_ping_timeout": settings.keepalive_timeout_s,
        "timeout_graceful_shutdown": 5,
        "log_config": None,  # our own logging set-up
        "access_log": False,
        "lifespan": "on",
    }


@contextlib.asynccontextmanager
async def serve_in_process(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> AsyncIterator[int]:
    """Serve any ASGI `app` on this event loop (the bridge, the HTTP doubles); yields the bound
    port, stops on exit. `options` are uvicorn.Config arguments."""
    options.pop("loop", None)  # we are already inside a running loop
    options.setdefault("log_config", None)
    options.setdefault("access_log", False)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, **options))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the start-up error
            raise RuntimeError("server stopped during start-up")
        await asyncio.sleep(0.01)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield bound
    finally:
        server.should_exit = True
        await task
