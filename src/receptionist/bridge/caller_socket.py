"""The Exotel stream's WebSocket as one call sees it: frames parsed (bad ones counted on the
call's figures, the first of each kind noted on its row), the wait for `start`, a close sent
once, and why the caller's side closed.

`parse` runs on every caller frame: it touches only this object's own fields, and the session's
receive loop binds it to a local once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketState

from receptionist.bridge.call_stats import NO_CODE, CallStats, close_reason
from receptionist.observe import metrics
from receptionist.telephony import exotel

log = logging.getLogger("receptionist.call")

START_TIMEOUT_S = 10.0


class CallerSocket:
    def __init__(
        self,
        ws: WebSocket,
        *,
        max_frame_bytes: int,
        stats: CallStats,
        note: Callable[[str, str], None],
    ) -> None:
        """`note(kind, detail)`: record something on the call's row."""
        self.ws = ws
        self._max_frame_bytes = max_frame_bytes
        self._stats = stats
        self._note = note
        self.closed = asyncio.Event()  # our close was sent (or the connection is over)

    async def send(self, text: str) -> None:
        await self.ws.send_text(text)

    def bad_frame(self, kind: str, detail: str) -> None:
        first = kind not in self._stats.bad_frames
        self._stats.bad_frames[kind] += 1
        metrics.BAD_FRAMES.labels(kind).inc()
        if first:  # later ones of the same kind are only counted: no log flood
            self._note(f"bad_frame:{kind}", detail)

    def parse(self, msg: Mapping[str, Any]) -> exotel.Event | None:
        """The frame's event; None for a bad frame (counted)."""
        text = msg.get("text")
        if text is None:
            data = msg.get("bytes")
            self.bad_frame("binary_frame", f"{len(data or b'')} bytes")
            return None
        if len(text) > self._max_frame_bytes:
            self.bad_frame("oversized_frame", f"{len(text)} bytes")
            return None
        try:
            return exotel.parse_frame(text)
        except exotel.ProtocolError as exc:
            self.bad_frame(exc.kind, exc.detail)
            return None

    async def await_start(self) -> exotel.Start | None:
        """Exotel's `start` frame; None: the caller left, or sent none in time (closed)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                metrics.CALLS_REJECTED.labels("no_start").inc()
                log.warning("connection closed: no start frame within %.0fs", START_TIMEOUT_S)
                await self.close(1008, "no start frame")
                return None
            try:
                msg = await asyncio.wait_for(self.ws.receive(), remaining)
            except TimeoutError:
                continue
            if msg["type"] == "websocket.disconnect":
                return None
            event = self.parse(msg)
            if isinstance(event, exotel.Start):
                return event
            if isinstance(event, exotel.Media):
                self.bad_frame("media_before_start", "media frame before start")
            elif event is not None and not isinstance(event, exotel.Connected):
                self.bad_frame("event_before_start", type(event).__name__.lower())

    async def close(self, code: int, reason: str) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        if self.ws.application_state == WebSocketState.CONNECTING:
            await self.ws.accept()
        with contextlib.suppress(Exception):
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.close(code=code, reason=reason[:120])

    def disconnect_reason(self, msg: Mapping[str, Any]) -> str:
        """The call row's end reason for the caller's close, noted when it says what went wrong."""
        code = int(msg.get("code") or NO_CODE)
        reason, wrong = close_reason(code)
        if wrong:
            self._note("closed", f"WebSocket close code {code}")
        return reason

    async def gone_reason(self) -> str:
        """Why a caller we could not send to is gone. A connection the server closed for a bad
        frame (over the cap: 1009, not UTF-8: 1007) has its close queued behind the frames that
        came before it: those are read (bad ones counted) for the close code, briefly."""
        with contextlib.suppress(Exception):  # (receive after the disconnect raises)
            async with asyncio.timeout(1.0):
                while True:
                    msg = await self.ws.receive()
                    if msg["type"] == "websocket.disconnect":
                        return self.disconnect_reason(msg)
                    self.parse(msg)
        return "caller_disconnected"
