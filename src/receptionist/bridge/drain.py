"""Graceful drain: stop taking calls, let calls in progress finish, then end them politely.

On SIGTERM (or SIGINT) a server process, in order:
1. refuses new calls in the handshake and answers /readyz with 503 (at once: `request()` only
   sets a flag, safe inside a signal handler);
2. lets calls in progress go on until they all end or DRAIN_TIMEOUT_S has passed;
3. has each call still open say the tenant's goodbye (the session's own hang-up path, as at
   the maximum call length) and waits up to DRAIN_GOODBYE_S for it to be heard;
4. closes any call still open, and returns once every call has been saved; only then does the
   server (bridge/server.py) let uvicorn shut down, which would otherwise close every call at
   once with code 1012.
A second signal skips to step 3 (goodbye now); a third to step 4.

One object per app; the signal handler reaches the apps of its process through `registered()`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection
from typing import Protocol

log = logging.getLogger("receptionist.drain")

#: The end reason of a call ended by a server's drain (the calls row's `end_reason`).
END_REASON = "server_shutdown"
POLL_S = 0.1  # how often the drain looks at its calls: shutdown needs no finer grain
SAVE_BOUND_S = 30.0  # after the close, saving a call waits at most this (a hung database)


class Ending(Protocol):
    """What the drain needs of a call in progress (bridge/session.py's CallSession)."""

    async def drain_goodbye(self, reason: str) -> None: ...

    async def drain_close(self, reason: str) -> None: ...


class Drain:
    def __init__(
        self,
        *,
        timeout_s: float,
        goodbye_s: float,
        calls: Callable[[], Collection[Ending]],
        busy: Callable[[], int],
    ) -> None:
        """`calls`: the calls in progress; `busy`: call connections not yet finished and saved
        (a call leaves `calls` when it ends, and `busy` once its row is written)."""
        self.timeout_s, self.goodbye_s = timeout_s, goodbye_s
        self._calls, self._busy = calls, busy
        self.signals = 0  # 1: draining, 2: goodbye now, 3+: close now
        self.since: float | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def draining(self) -> bool:
        return self.signals > 0

    def request(self) -> None:
        """A stop was asked for (again). Signal-safe: plain assignments only."""
        if self.since is None:
            self.since = time.monotonic()
        self.signals += 1

    def start(self) -> asyncio.Task[None]:
        """Run the drain on the running loop (once); the task ends when every call is saved."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name="drain")
        return self._task

    async def run(self) -> None:
        if self.since is None:
            self.request()
        assert self.since is not None
        calls = len(self._calls())
        log.warning(
            "draining: refusing new calls; %d in progress get up to %.0f s to finish",
            calls,
            self.timeout_s,
        )
        await self._phase(self.since + self.timeout_s, signals=1)
        left = list(self._calls())
        if left:
            log.warning("drain: %d calls still in progress: saying goodbye", len(left))
            for call in left:
                await call.drain_goodbye(END_REASON)
            await self._phase(time.monotonic() + self.goodbye_s, signals=self.signals)
        left = list(self._calls())
        if left:
            log.warning("drain: closing %d calls now", len(left))
            for call in left:
                await call.drain_close(END_REASON)
        # Until every call is saved. A stream accepted before the signal may send its `start`
        # only now: it is closed as it appears rather than answered.
        deadline = time.monotonic() + SAVE_BOUND_S
        while self._busy() and time.monotonic() < deadline:
            for call in list(self._calls()):
                await call.drain_close(END_REASON)
            await asyncio.sleep(POLL_S)
        log.info("drain finished after %.1f s", time.monotonic() - self.since)

    async def _phase(self, deadline: float, *, signals: int) -> None:
        """Until every call has ended, `deadline`, or a signal beyond the first `signals`."""
        await self._until(lambda: not self._calls() or self.signals > signals, deadline)

    @staticmethod
    async def _until(done: Callable[[], bool], deadline: float) -> None:
        # Polled: the conditions (calls ended, a signal came, a deadline passed) have no single
        # event to wait on, and a tenth of a second is no cost while stopping.
        while True:
            if done() or time.monotonic() >= deadline:
                return
            await asyncio.sleep(POLL_S)


# The drains of this process's apps: a signal concerns the whole process, so the server's
# handler drains every app it serves (one in production; tests may run several).
_REGISTERED: list[Drain] = []


def register(drain: Drain) -> None:
    if drain not in _REGISTERED:
        _REGISTERED.append(drain)


def unregister(drain: Drain) -> None:
    if drain in _REGISTERED:
        _REGISTERED.remove(drain)


def registered() -> list[Drain]:
    return list(_REGISTERED)
