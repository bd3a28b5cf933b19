"""Greetings first: what a starting call can put off waits until calls stop starting.

When many calls start together (a burst after an outage, a campaign, a load test), one event
loop handles their `start` frames in turn. A call's greeting goes out from the cache at once,
but each call also writes its row (~1 ms of the loop's CPU) and sets up its model session (SDK
config and a TLS handshake: a few ms). Run as soon as each call greets, that work sits between
the other calls' `start` frames, and the last of 100 calls waits for the rows and handshakes of
the 99 before it. So the deferred work waits until no call has started for `quiet_s` (the
starts of a burst come within a few ms of each other), and never longer than `max_wait_s`
after it asked, so a stream of starts that never pauses delays it by that much at most.
A call on its own waits `quiet_s`.

Measured with bench/greeting.py (100 calls starting together, warm cache): the first greeting
frame's p99 at the caller went from 45-82 ms with only the model session put off by a fixed
20 ms, to the figures in the README's Performance section.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class StartGate:
    def __init__(
        self,
        *,
        quiet_s: float = 0.02,
        max_wait_s: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.quiet_s = quiet_s
        self.max_wait_s = max_wait_s
        self._clock = clock
        self._last_start = float("-inf")

    def started(self) -> None:
        """A call read its `start` (it greets next)."""
        self._last_start = self._clock()

    def remaining(self, asked_at: float) -> float:
        """How much longer work asked for at `asked_at` waits (0: go now)."""
        now = self._clock()
        until = min(self._last_start + self.quiet_s, asked_at + self.max_wait_s)
        return max(0.0, until - now)

    async def wait(self) -> None:
        """Until no call has started for `quiet_s`, or `max_wait_s` from now."""
        asked_at = self._clock()
        while (left := self.remaining(asked_at)) > 0:  # noqa: ASYNC110 - a deadline that moves, not an event
            await asyncio.sleep(left)
