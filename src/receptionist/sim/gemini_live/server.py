"""The double's TLS WebSocket server (`FakeGeminiLive`) and `serve_forever`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from receptionist.sim.double import Double
from receptionist.sim.gemini_live.model import (
    INTERNAL_ERROR_CODE,
    INTERNAL_ERROR_REASON,
    INVALID_HANDLE_REASON,
    PATH_SUFFIX,
    CallScript,
    Failure,
    LiveSessionRecord,
)
from receptionist.sim.gemini_live.session import Session
from receptionist.sim.tls import TestCA

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------- the server

ScriptArg = CallScript | Callable[[dict[str, Any]], CallScript] | None


class FakeGeminiLive(Double):
    """In-process Gemini Live double over TLS WebSocket (see the module docstring)."""

    def __init__(
        self,
        *,
        api_key: str | None = "test-key",
        script: ScriptArg = None,
        realtime: bool = False,
        chunk_ms: int = 40,
        end_of_turn_silence_ms: int = 500,
        failure: Failure | None = None,
        tls: TestCA | None = None,
        clock: Callable[[], float] = time.monotonic,
        record_audio: bool = False,
    ) -> None:
        self.api_key = api_key  # None: any non-empty key is accepted
        self.script: ScriptArg = script
        self.realtime = realtime
        self.chunk_ms = chunk_ms
        self.end_of_turn_silence_ms = end_of_turn_silence_ms
        self.failure = failure or Failure()
        #: Now, for the playback window (barge-in) and the records' timestamps; realtime pacing
        #: stays on real time.
        self.clock = clock
        self.tls = tls or TestCA()
        self._server_ssl = self.tls.server_ssl_context()
        self._client_ssl = self.tls.client_ssl_context()
        self.sessions: list[LiveSessionRecord] = []
        #: keep every session's received caller audio (``LiveSessionRecord.audio_pcm``)
        self.record_audio = record_audio
        #: handle -> (the session that issued it, the context it restores)
        self._handles: dict[str, tuple[int, dict[str, Any]]] = {}
        self._live: dict[int, Session] = {}
        self.rejected_paths: list[str] = []
        self._session_added = asyncio.Event()
        self._session_closed = asyncio.Event()
        self._server: Server | None = None
        self._port: int | None = None
        self._host = "127.0.0.1"

    # ---- properties

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("FakeGeminiLive is not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"https://{host}:{self.port}"

    @property
    def client_ssl_context(self) -> ssl.SSLContext:
        return self._client_ssl

    @property
    def ca_file(self) -> str:
        return self.tls.ca_file

    # ---- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> FakeGeminiLive:
        self._host = host
        self._server = await serve(
            self._handler,
            host,
            port,
            ssl=self._server_ssl,
            process_request=self._process_request,
            compression=None,
            max_size=2**24,
        )
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    def answer_delay_ms(self, script: CallScript | None = None) -> float:
        """How long the double itself waits, after the caller's speech ends in the audio it
        receives, before it sends the first audio of its reply: the end-of-turn silence plus the
        script's think time (``script``, else this double's script if it is a plain
        :class:`CallScript`, else the defaults). A bench subtracts this from the caller-perceived
        response time to get what the bridge adds."""
        if script is None:
            script = self.script if isinstance(self.script, CallScript) else CallScript()
        return float(self.end_of_turn_silence_ms) + float(script.reply_delay_ms)

    async def drop(self, index: int = -1, code: int | None = None) -> None:
        """Cut session ``index`` (default: the newest) now, as a fault: no close frame, or a close
        with ``code``."""
        session = self._live.get(self.sessions[index].index)
        if session is not None:
            await session.drop(code)

    async def go_away(self, index: int = -1, time_left: str = "10s") -> None:
        """Send goAway on session ``index`` now; it is closed when ``time_left`` is up."""
        session = self._live.get(self.sessions[index].index)
        if session is not None:
            await session.go_away(time_left)

    async def cancel_tool_calls(self, ids: list[str], index: int = -1) -> None:
        """Withdraw function calls of session ``index`` now (`toolCallCancellation`), as the
        model does when the caller moves on; an answer that still comes is a stray one."""
        session = self._live.get(self.sessions[index].index)
        if session is not None:
            await session.cancel_tool_calls(ids)

    def _resume_refusal(self, handle: str) -> tuple[int, str] | None:
        """Why a setup resuming from ``handle`` is refused, as (close code, reason); None: OK."""
        found = self._handles.get(handle)
        if self.failure.refuse_resumption or found is None:
            return (1007, INVALID_HANDLE_REASON)
        source = self.sessions[found[0]]
        if source.closed_at is None:
            if self.failure.refuse_concurrent_resume:
                return (INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
        elif self.clock() - source.closed_at > self.failure.handle_ttl_s:
            return (1007, INVALID_HANDLE_REASON)
        return None

    async def wait_closed(self, index: int, within_s: float = 5.0) -> None:
        """Wait until session ``index`` has closed (TimeoutError after ``within_s``)."""
        async with asyncio.timeout(within_s):
            while len(self.sessions) <= index or self.sessions[index].closed_at is None:
                self._session_closed.clear()
                await self._session_closed.wait()

    async def wait_for_sessions(self, n: int, within_s: float = 5.0) -> None:
        """Wait until at least ``n`` sessions have connected (TimeoutError after ``within_s``)."""
        async with asyncio.timeout(within_s):
            while len(self.sessions) < n:
                self._session_added.clear()
                await self._session_added.wait()

    # ---- websockets callbacks

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        if self.failure.accept_delay_s > 0:
            await asyncio.sleep(self.failure.accept_delay_s)
        if self.failure.hold_handshake is not None:
            await self.failure.hold_handshake.stop_here()
        path = urlsplit(request.path).path
        if not path.endswith(PATH_SUFFIX):
            self.rejected_paths.append(request.path)
            return connection.respond(404, "Not Found\n")
        return None

    def _key_of(self, request: Request) -> str | None:
        key = request.headers.get("x-goog-api-key")
        if key:
            return key
        keys = parse_qs(urlsplit(request.path).query).get("key")
        return keys[0] if keys else None

    def _key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        return self.api_key is None or key == self.api_key

    async def _handler(self, ws: ServerConnection) -> None:
        request = ws.request
        assert request is not None
        key = self._key_of(request)
        rec = LiveSessionRecord(
            index=len(self.sessions),
            path=request.path,
            api_key=key,
            headers={k.lower(): v for k, v in request.headers.raw_items()},
            key_ok=self._key_ok(key),
            connected_at=self.clock(),
            connected_wall=time.time(),
        )
        self.sessions.append(rec)
        self._session_added.set()
        session = Session(self, ws, rec)
        self._live[rec.index] = session
        try:
            await session.run()
        except ConnectionClosed:
            pass
        except Exception as exc:  # a bug in the double: record it and fail the session
            log.exception("FakeGeminiLive session %d failed", rec.index)
            rec.error = repr(exc)
            with contextlib.suppress(Exception):
                await ws.close(INTERNAL_ERROR_CODE, INTERNAL_ERROR_REASON)
        finally:
            self._live.pop(rec.index, None)
            await session.shutdown()
            rec.closed_at = self.clock()
            if ws.close_code is None:
                with contextlib.suppress(Exception):
                    await ws.close()
            rec.close_code = ws.close_code
            rec.close_reason = ws.close_reason
            self._session_closed.set()


async def serve_forever(host: str = "127.0.0.1", port: int = 0, **kw: Any) -> None:
    """Run a :class:`FakeGeminiLive` until cancelled (prints its base URL and CA file)."""
    fake = FakeGeminiLive(**kw)
    await fake.start(host, port)
    print(f"FakeGeminiLive on {fake.base_url} (CA file: {fake.ca_file})", flush=True)
    try:
        await asyncio.Future()
    finally:
        await fake.stop()
